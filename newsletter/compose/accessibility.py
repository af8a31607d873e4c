"""`check`'s accessibility rules, run on the final HTML: what screen readers and low vision meet.

Contrast (light and dark), heading levels, layout tables, alt text, link text, text size,
and the page's language and direction. A finding names the line of the issue file when the
text came from it (an item's title, an image's alt, a link's label); otherwise it is the
theme's, and says so.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

import lxml.html

from ..errors import Problem
from . import markdown
from .contrast import Low, hex_colour, low_contrast, text_runs
from .issue import Issue
from .locate import Locator
from .render import ComposedEmail

BODY_TEXT_PX = 14
IMAGE_NAME = re.compile(r"^(?:[\w\s.-]*\.(?:png|jpe?g|gif|webp|svg|bmp|tiff?|heic)|"
                        r"(?:img|dsc|dscn|pxl|screenshot)[\s_-]*\d[\w-]*)$", re.IGNORECASE)
_HEADING = re.compile(r"^h([1-6])$")
Add = Callable[..., None]


def check_accessibility(composed: ComposedEmail, shown: str) -> list[Problem]:
    """Every accessibility finding about the composed email, as warnings."""
    findings: list[Problem] = []
    locator = Locator(composed.issue)

    def add(message: str, where: tuple[str, int | None] = ("", None)) -> None:
        findings.append(Problem(shown, where[1], where[0], message, "warning"))

    root = lxml.html.document_fromstring(composed.html)
    body = root.find("body")
    visible = [e for e in (body.iter() if body is not None else ()) if _shown(e)]
    _language(root, add)
    _contrast(composed.html, add)
    _headings(visible, composed.issue, locator, add)
    _tables(visible, add)
    _alts(visible, composed.issue, locator, add)
    _links(visible, composed.issue, locator, add)
    _text_size(composed.html, composed.issue, add)
    return findings


def _shown(element) -> bool:  # type: ignore[no-untyped-def]
    """Not hidden by `display:none` on itself or an ancestor (the preheader)."""
    if not isinstance(element.tag, str):
        return False
    return not any("display:none" in (e.get("style") or "").replace(" ", "")
                   for e in (element, *element.iterancestors()))


def _text(element) -> str:  # type: ignore[no-untyped-def]
    return " ".join(element.text_content().split())


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def _language(root, add: Add) -> None:  # type: ignore[no-untyped-def]
    if (root.get("lang") or "").strip().lower() in ("", "und"):  # MJML's "undetermined"
        add("the email has no language (<html lang>): screen readers guess how to pronounce "
            "it; set language in newsletter.toml, and keep lang= in the theme's <mjml>",
            ("newsletter.toml: language", None))
    if not (root.get("dir") or "").strip():
        add("the email has no text direction (<html dir>): set dir=\"ltr\" (or \"rtl\") on "
            "the theme's <mjml>", ("theme", None))


def _contrast(html: str, add: Add) -> None:
    for low in low_contrast(html):
        add(_contrast_message(low), ("theme", None))


def _contrast_message(low: Low) -> str:
    more = f" and {len(low.samples) - 1} more" if len(low.samples) > 1 else ""
    large = " for large text" if low.needed < 4.5 else ""
    return (f"text in {hex_colour(low.colour)} on {hex_colour(low.background)} has a contrast "
            f"of {low.ratio:.2f}:1 in the {low.scheme} rendering, below the {low.needed:g}:1 "
            f"readers need{large} (WCAG AA): {low.samples[0][:50]!r}{more}; change the "
            "theme's colours")


def _headings(visible: list, issue: Issue, locator: Locator, add: Add) -> None:  # type: ignore[type-arg]
    previous = None
    for element in visible:
        match = _HEADING.match(element.tag)
        if not match:
            continue
        level = int(match[1])
        if previous is not None and level > previous + 1:
            text = _text(element)
            add(f"heading {text[:50]!r} is h{level} right after an h{previous}: screen "
                f"reader users move through an email by its heading levels; make it an "
                f"h{previous + 1}", _find_text(issue, locator, text))
        previous = level


def _tables(visible: list, add: Add) -> None:  # type: ignore[type-arg]
    layout = [t for t in visible if t.tag == "table"
              and (t.get("role") or "").strip().lower() not in ("presentation", "none")
              and t.find(".//th") is None and t.find("caption") is None]
    if layout:
        add(f"{len(layout)} layout table(s) without role=\"presentation\": screen readers "
            "announce their rows and columns; add role=\"presentation\" in the theme",
            ("theme", None))


def _alts(visible: list, issue: Issue, locator: Locator, add: Add) -> None:  # type: ignore[type-arg]
    captions = {_normal(_text(e)) for e in visible
                if _HEADING.match(e.tag) or e.tag == "figcaption"}
    for image in (e for e in visible if e.tag == "img"):
        alt = (image.get("alt") or "").strip()
        if not alt:
            continue  # lint's own rule: an image without alt text is an error
        where = _find_image(issue, locator, alt)
        if IMAGE_NAME.match(alt) or alt == (image.get("src") or "").rsplit("/", 1)[-1]:
            add(f"alt text {alt!r} is a file name: say what the image shows", where)
        elif _normal(alt) in captions:
            add(f"alt text {alt!r} repeats the heading beside the image: screen readers say "
                "it twice; describe what the image shows instead", where)


def _links(visible: list, issue: Issue, locator: Locator, add: Add) -> None:  # type: ignore[type-arg]
    targets: dict[str, dict[str, str]] = {}
    for link in (e for e in visible if e.tag == "a" and e.get("href")):
        name = (link.get("aria-label") or "").strip() or _text(link) or " ".join(
            (img.get("alt") or "") for img in link.iter("img"))
        if _normal(name):
            targets.setdefault(_normal(name), {}).setdefault(link.get("href"), name)
    for hrefs in targets.values():
        if len(hrefs) > 1:
            name = next(iter(hrefs.values()))
            add(f"link text {name.strip(' →')!r} leads to {len(hrefs)} different places: "
                "screen readers list links by their text; say where each one goes",
                _find_label(issue, locator, name))


def _text_size(html: str, issue: Issue, add: Add) -> None:
    """The size most of the issue's own prose (intro, bodies, boxes) is set in; not the footer."""
    prose = [_normal(lxml.html.fragment_fromstring(markdown.to_html(body), create_parent=True)
                     .text_content()) for body in _bodies(issue)]
    sizes: Counter[float] = Counter()
    for run in text_runs(html, "light"):
        text = _normal(run.text)
        if len(text) > 2 and any(text in body for body in prose):
            sizes[round(run.size, 1)] += len(text)
    if sizes:
        body, _ = sizes.most_common(1)[0]
        if body < BODY_TEXT_PX:
            add(f"the body text is {body:g} px; below {BODY_TEXT_PX} px it is hard to read on "
                "a phone; set a larger font-size on the theme's mj-text", ("theme", None))


def _bodies(issue: Issue) -> list[str]:
    return ([issue.intro] if issue.intro else []) + [item.body for item in issue.items] + [
        box.body for box in issue.highlights]


def _find_text(issue: Issue, locator: Locator, text: str) -> tuple[str, int | None]:
    """The issue field a heading's text came from: a title, a section, a Markdown body."""
    wanted = _normal(text)
    for index, item in enumerate(issue.items):
        if _normal(item.title) == wanted:
            return f"items[{index}].title", locator.line("items", index, "title")
        if item.section and _normal(item.section) == wanted:
            return f"items[{index}].section", locator.line("items", index, "section")
        if wanted and wanted in _normal(item.body):
            return f"items[{index}].body", locator.line("items", index, "body")
    for index, box in enumerate(issue.highlights):
        if wanted and wanted in _normal(box.body):
            return f"highlights[{index}].body", locator.line("highlights", index, "body")
    return "", None


def _find_image(issue: Issue, locator: Locator, alt: str) -> tuple[str, int | None]:
    for index, item in enumerate(issue.items):
        if item.image and item.image.alt == alt:
            return f"items[{index}].image.alt", locator.line("items", index, "image", "alt")
    return "", None


def _find_label(issue: Issue, locator: Locator, name: str) -> tuple[str, int | None]:
    """The last link of the issue with this label: the one to rename, most likely."""
    wanted, found = _normal(name), ("", None)
    for kind, entries in (("items", issue.items), ("highlights", issue.highlights),
                          ("agenda", issue.agenda)):
        for index, entry in enumerate(entries):
            if entry.link and _normal(entry.link.label) == wanted:
                found = (f"{kind}[{index}].link.label",
                         locator.line(kind, index, "link", "label"))
            body = getattr(entry, "body", "")
            if body and re.search(r"\[" + re.escape(name.strip(" →")) + r"\]\(", body):
                found = (f"{kind}[{index}].body", locator.line(kind, index, "body"))
    return found
