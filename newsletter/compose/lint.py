"""Checks on an issue and on the final bytes it composes to: what `newsletter check` reports."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from ..config import Settings, bundled_templates
from ..errors import Problem
from ..grammar import PLACEHOLDER
from . import i18n
from .accessibility import check_accessibility
from .agendacheck import check_agenda
from .context import RECIPIENT_FIELDS, IssueContext, check_context
from .editions import shown
from .imagecheck import check_images
from .links import markdown_link_findings
from .render import ComposedEmail
from .themecheck import theme_findings

GMAIL_CLIP_BYTES = 102_000  # Gmail hides the rest of a message whose HTML is larger
CLIP_WARNING_BYTES = 90_000
SUBJECT_WARNING_CHARS = 70  # what a phone's inbox row shows, roughly
PREHEADER_WARNING_CHARS = 150
IMAGE_WARNING_BYTES = 300_000
WHOLE_PIXELS = re.compile(r"\d+")
TEMPLATE_SYNTAX = re.compile(r"\{\{|\}\}|\{%|%\}")
STYLE_ELEMENT = re.compile(r"(?is)<style\b.*?</style>")  # compact CSS writes `}}` legitimately
# Sample values about as long as real ones, so the size check measures what is sent.
SAMPLE_VALUES = {
    "name": "Maximiliane Oberholzer-Lindqvist",
    "email": "maximiliane.oberholzer@municipality.example.org",
    "unsubscribe_url": "https://newsletter.example.org/unsubscribe/" + "x" * 86,
    "preferences_url": "https://newsletter.example.org/preferences/" + "x" * 30,
    "web_url": "https://newsletter.example.org/2020-01/",
}


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images: list[dict[str, str | None]] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs))
        elif tag == "a":
            href = dict(attrs).get("href")
            if href is not None:
                self.links.append(href)


def check(composed: ComposedEmail, settings: Settings, shown_path: str,
          around: IssueContext | None = None) -> list[Problem]:
    """Every finding about a composed issue and each of its editions, errors and warnings.

    With `around` (the subscriber store, the other issues, the ledger), the rules of
    context.py run too; without one, unknown placeholders are only a warning.
    """
    findings = _check(composed, settings, shown_path, around)
    for edition in composed.editions:
        findings += [*edition.notes, *_check(edition, settings, shown(edition.issue.source),
                                             around, edition=True)]
    return findings


def _check(composed: ComposedEmail, settings: Settings, shown_path: str,
           around: IssueContext | None, edition: bool = False) -> list[Problem]:
    findings: list[Problem] = []
    issue = composed.issue

    def add(message: str, field: str = "", line: int | None = None,
            severity: str = "error") -> None:
        findings.append(Problem(shown_path, line, field, message, severity))

    html = PLACEHOLDER.sub(lambda m: SAMPLE_VALUES.get(m.group(1), "x" * 12),
                           composed.html_with_assets(settings.base_url.rstrip("/") + "/"))
    size = len(html.encode("utf-8"))
    if size > GMAIL_CLIP_BYTES:
        add(f"the HTML is {size / 1000:.1f} KB; Gmail clips messages above "
            f"{GMAIL_CLIP_BYTES / 1000:.0f} KB (shorten the issue or move items to the web)")
    elif size > CLIP_WARNING_BYTES:
        add(f"the HTML is {size / 1000:.1f} KB, close to Gmail's "
            f"{GMAIL_CLIP_BYTES / 1000:.0f} KB clipping", severity="warning")

    collector = _Collector()
    collector.feed(composed.html)
    for image in collector.images:
        if not (image.get("alt") or "").strip():
            add(f"image {image.get('src')!r} has no alt text (screen readers and clients that "
                "block images show nothing)")
    for href in collector.links:
        _check_link(href, add)
    if not edition and not settings.base_url.startswith("https://"):
        add(f"base_url {settings.base_url!r} is not https: unsubscribe and web links would be "
            "sent unencrypted", field="newsletter.toml: base_url", severity="warning")

    for part, body in (("HTML part", STYLE_ELEMENT.sub("", composed.html)),
                       ("text part", composed.text)):
        leftover = TEMPLATE_SYNTAX.search(body)
        if leftover:
            context = body[max(0, leftover.start() - 30): leftover.end() + 30].replace("\n", " ")
            add(f"leftover template syntax {leftover.group()!r} in the {part}: ...{context}...")
    if around is not None:
        findings += check_context(composed, around, shown_path, edition)
    else:
        for name in sorted(composed.fields - RECIPIENT_FIELDS):
            add(f"placeholder %%{name}%% will be empty for subscribers without a '{name}' "
                "field", severity="warning")

    if len(issue.subject) > SUBJECT_WARNING_CHARS:
        add(f"subject is {len(issue.subject)} characters; inboxes show about "
            f"{SUBJECT_WARNING_CHARS}", "subject", issue.lines.get("subject"), "warning")
    if not issue.preheader:
        add("no preheader: inboxes will show the first words of the email instead",
            "preheader", None, "warning")
    elif len(issue.preheader) > PREHEADER_WARNING_CHARS:
        add(f"preheader is {len(issue.preheader)} characters; inboxes show about "
            f"{PREHEADER_WARNING_CHARS}", "preheader", issue.lines.get("preheader"), "warning")

    previous = None
    for index, entry in enumerate(issue.agenda):
        field = f"agenda[{index}].start"
        if previous and entry.start < previous.start:
            add(f"agenda out of order: {entry.start.isoformat()} comes after "
                f"{previous.start.isoformat()}", field, entry.line, "warning")
        previous = entry

    if not i18n.catalog_paths([composed.template_dir, bundled_templates()], composed.language):
        add(f"no message catalog for {composed.language!r}: the theme's own words (greeting, "
            "links, footer) stay in English; add locale/"
            f"{composed.language.replace('-', '_')}/LC_MESSAGES/messages.po to the theme",
            severity="warning")

    for image in issue.images:
        weight = image.path.stat().st_size
        if weight > IMAGE_WARNING_BYTES:
            add(f"image {image.src} weighs {weight / 1000:.0f} KB; phones on slow networks "
                "will show it late", severity="warning")
    findings += check_agenda(issue, shown_path)
    findings += check_images(issue, shown_path)
    findings += check_accessibility(composed, shown_path)
    check_image_sizes(collector.images, add)
    findings += markdown_link_findings(issue, composed.language, shown_path)
    if not edition:  # the settings and the theme are the same for every edition
        check_postal_address(settings, add)
        findings += theme_findings(composed.template_dir)
    return findings


def check_postal_address(settings: Settings, add) -> None:  # type: ignore[no-untyped-def]
    """Bulk mail must carry the sender's postal address (CAN-SPAM, EU e-commerce rules)."""
    if not settings.postal_address.strip():
        add("no postal address: bulk mail must carry the sender's postal address (CAN-SPAM, "
            "and the e-commerce rules of most EU members); set postal_address under "
            "[newsletter]", field="newsletter.toml: postal_address")


def check_image_sizes(images: list[dict[str, str | None]], add) -> None:  # type: ignore[no-untyped-def]
    """Outlook's Word engine mishandles an image width or height that is not whole pixels."""
    for image in images:
        for name in ("width", "height"):
            value = image.get(name)
            if value is not None and not WHOLE_PIXELS.fullmatch(value):
                add(f"image {image.get('src')!r} has {name}={value!r} in the HTML; Outlook needs "
                    "whole pixels (set it in the theme, or leave it to the image's file)")


def _check_link(href: str, add) -> None:  # type: ignore[no-untyped-def]
    if PLACEHOLDER.fullmatch(href) or href.startswith(("https://", "mailto:")):
        return
    if href.startswith("http://"):
        add(f"link {href!r} is not https", severity="warning")
    else:
        add(f"link {href!r} is neither https nor mailto")
