"""Issue -> MJML (Jinja2) -> HTML (mjml-python) -> inlined CSS (premailer) + plain text.

Composition runs once per issue. What differs per recipient (name, unsubscribe link, view
in browser link, extra subscriber fields) is left as `%%field%%` placeholders, chosen
because MJML, premailer and HTML escaping all pass them through untouched; the message
step later fills them by cheap substitution. Jinja2, Markdown, MJML and premailer are
imported only when an issue is really composed, not when the result comes from the cache.
"""

from __future__ import annotations

import gettext
import hashlib
import logging
import os
import re
import traceback
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from ..config import Settings, bundled_templates
from ..errors import IssueFileError, Problem
from ..grammar import FIELD, PLACEHOLDER, placeholder
from . import i18n
from .cache import Entry
from .editions import load_editions
from .issue import Image, Issue, Item

if TYPE_CHECKING:
    import jinja2

ASSET_BASE = "%%asset_base%%"  # replaced once per output, never per recipient
HTML_TEMPLATE = "newsletter.mjml.j2"
TEXT_TEMPLATE = "newsletter.txt.j2"
INLINE_CSS = "inline.css"
_STYLE_TAG = re.compile(r"<style(?![^>]*data-premailer)")


class SubscriberFields:
    """What templates see as `subscriber`: any attribute becomes a placeholder."""

    def __getattr__(self, name: str) -> str:
        if name.startswith("_") or not FIELD.fullmatch(name):
            raise AttributeError(name)
        return placeholder(name)


@dataclass(frozen=True)
class Alternate:
    """One edition of an issue, as the others link to it."""

    language: str
    name: str  # in its own language: `Français`
    url: str  # its web version


@dataclass(frozen=True)
class ComposedEmail:
    """One issue, rendered; per-recipient values are still `%%placeholders%%`."""

    issue: Issue
    subject: str
    preheader: str
    html: str  # image URLs relative to `%%asset_base%%`
    text: str
    template_dir: Path
    test: bool = False
    fields: frozenset[str] = field(default_factory=frozenset)
    language: str = "en"  # a BCP 47 tag: `<html lang>`, the theme's words, the dates
    name_fallback: str = ""  # %%name%% of a subscriber without one, in this language
    web_path: str = ""  # below the issue's web address: "" for the main edition, "fr/"
    alternates: tuple[Alternate, ...] = ()  # every edition, this one too, when there are more
    editions: tuple[ComposedEmail, ...] = ()  # the main edition's: the others
    notes: tuple[Problem, ...] = ()  # what `check` warns about this edition's translation

    @property
    def every_edition(self) -> tuple[ComposedEmail, ...]:
        return (self, *self.editions)

    @property
    def content_hash(self) -> str:
        """Identifies this version of the email, for approvals and the ledger."""
        digest = hashlib.sha256()
        for part in (self.subject, self.preheader, self.html, self.text):
            digest.update(part.encode("utf-8"))
            digest.update(b"\0")
        for image in self.issue.images:
            digest.update(image.path.read_bytes())
        for edition in self.editions:  # an approval covers every translation
            digest.update(edition.content_hash.encode("ascii"))
        return digest.hexdigest()

    def html_with_assets(self, asset_base: str) -> str:
        return self.html.replace(ASSET_BASE, asset_base)

    @property
    def images(self) -> list[Image]:
        return self.issue.images


def issue_url(settings: Settings, issue: Issue) -> str:
    """Where the web version of the issue is published: `<base_url>/<slug>/`."""
    return f"{settings.base_url.rstrip('/')}/{quote(issue.slug)}/"


def web_url(settings: Settings, composed: ComposedEmail) -> str:
    """Where this edition's web version is: `<base_url>/<slug>/`, `<base_url>/<slug>/fr/`."""
    return issue_url(settings, composed.issue) + composed.web_path


def mjml_source(issue: Issue, settings: Settings, *, test: bool = False) -> str:
    """The MJML the theme renders for `issue` in the main language, as compose hands it to
    mjml-python."""
    template_dir = settings.template_dir(issue.template)
    context = _context(issue, settings, test, settings.language,
                       _words(template_dir, settings.language))
    return _environment(template_dir).get_template(HTML_TEMPLATE).render(context)


def compose(issue: Issue, settings: Settings, *, test: bool = False,
            cache: bool = True) -> ComposedEmail:
    """Render the issue, and each of its editions, once into HTML and text with
    placeholders for personal values; the editions come back in `editions`.

    `cache`: look in, and add to, the composed-email cache (see cache.py), one entry per
    edition.
    """
    found = load_editions(issue, settings.language)
    if not found:
        return _compose(issue, settings, test, cache, settings.language)
    base = issue_url(settings, issue)
    alternates = tuple(Alternate(language, i18n.native_name(language), base + path)
                       for language, path in ((settings.language, ""),
                                              *((e.language, e.web_path) for e in found)))
    main = _compose(issue, settings, test, cache, settings.language, "", alternates)
    return replace(main, editions=tuple(
        replace(_compose(e.issue, settings, test, cache, e.language, e.web_path, alternates),
                notes=e.notes) for e in found))


def _compose(issue: Issue, settings: Settings, test: bool, cache: bool, language: str,
             web_path: str = "", alternates: tuple[Alternate, ...] = ()) -> ComposedEmail:
    template_dir = settings.template_dir(issue.template)
    words = _words(template_dir, language)
    entry = (Entry.find(issue, settings, template_dir, test, language, web_path, alternates)
             if cache else None)
    stored = entry.load() if entry else None
    if stored:
        html, text, used = stored
    else:
        context = _context(issue, settings, test, language, words, web_path)
        context["other_editions"] = [a for a in alternates if a.language != language]
        html, text = _render(issue, template_dir, context)
        used = frozenset(PLACEHOLDER.findall(html) + PLACEHOLDER.findall(text)) - {"asset_base"}
        if entry:
            entry.store(html, text, used)
    subject = f"[TEST] {issue.subject}" if test else issue.subject
    return ComposedEmail(issue, subject, issue.preheader, html, text, template_dir, test, used,
                         language, words.gettext(settings.name_fallback), web_path,
                         alternates)


def _words(template_dir: Path, language: str) -> gettext.NullTranslations:
    return i18n.translations([template_dir, bundled_templates()], language)


def _render(issue: Issue, template_dir: Path, context: dict[str, object]) -> tuple[str, str]:
    import jinja2

    env = _environment(template_dir)
    try:
        source = env.get_template(HTML_TEMPLATE).render(context)
        text = _normalise_text(env.get_template(TEXT_TEMPLATE).render(context))
    except jinja2.TemplateError as exc:
        raise _template_problem(exc, template_dir) from None
    try:
        rendered = _render_mjml(source)
    except ValueError as exc:  # mjml-python's parse errors
        where = str(template_dir / HTML_TEMPLATE)
        raise IssueFileError([Problem(where, None, "", f"the MJML it renders is not valid: "
                                                       f"{exc}")]) from None
    return _whole_pixel_images(_inline_css(rendered, template_dir / INLINE_CSS),
                               issue.images), text


def _template_problem(exc: jinja2.TemplateError, template_dir: Path) -> IssueFileError:
    """A theme's mistake, located at `file:line` like the issue file's."""
    name, line = getattr(exc, "filename", None), getattr(exc, "lineno", None)
    if not name:  # errors while rendering: the innermost template frame says where
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if f.filename.endswith(".j2")]
        name, line = (frames[-1].filename, frames[-1].lineno) if frames else (None, None)
    where = name or str(template_dir)
    relative = os.path.relpath(where)
    where = where if relative.startswith("..") else relative
    return IssueFileError([Problem(where, line, "", f"template error: {exc.message or exc}")])


@lru_cache(maxsize=8)
def _environment(template_dir: Path) -> jinja2.Environment:
    """One environment per theme; Jinja reloads a template when its file changes."""
    import jinja2
    from markupsafe import Markup

    from . import markdown
    from .agendatime import time_range

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        autoescape=lambda name: not (name or "").endswith(".txt.j2"),  # text is not HTML
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True,
        bytecode_cache=jinja2.FileSystemBytecodeCache(),  # skips recompiling in new processes
    )
    env.filters.update({
        "markdown": lambda s: Markup(markdown.to_html(s)),
        "markdown_inline": lambda s: Markup(markdown.to_inline_html(s)),
        "markdown_text": markdown.to_text,
        "wrap": markdown.wrap,
        "link_line": lambda link, indent="": markdown.link_line(link.label, link.url,
                                                                indent=indent),
        "time_range": jinja2.pass_context(lambda ctx, entry: time_range(
            entry.times, entry.timezone, i18n.words_of(ctx).gettext)),
        "asset": lambda src: ASSET_BASE + quote(src),
    })
    i18n.install(env)
    return env


def _context(issue: Issue, settings: Settings, test: bool, language: str,
             words: gettext.NullTranslations, web_path: str = "") -> dict[str, object]:
    from .ics import CalendarLinks  # icalendar: only when an issue is really rendered

    return {
        "lang": language,
        "dir": i18n.direction(language),
        "translations": words,
        "issue": issue,
        "newsletter": settings,
        "sections": group_sections(issue.items),
        "featured": [item for item in issue.items if item.featured],
        "subscriber": SubscriberFields(),
        "unsubscribe_url": placeholder("unsubscribe_url"),
        "preferences_url": placeholder("preferences_url"),
        "web_url": placeholder("web_url"),
        "calendar": CalendarLinks(issue_url(settings, issue) + web_path, words.gettext),
        "test": test,
    }


def group_sections(items: tuple[Item, ...]) -> list[tuple[str | None, list[Item]]]:
    """Consecutive non-featured items sharing a section heading, in file order."""
    groups: list[tuple[str | None, list[Item]]] = []
    for item in items:
        if item.featured:
            continue
        if groups and groups[-1][0] == item.section:
            groups[-1][1].append(item)
        else:
            groups.append((item.section, [item]))
    return groups


def _render_mjml(source: str) -> str:
    from mjml import mjml2html

    return mjml2html(source, disable_comments=True)


def _inline_css(html: str, css_file: Path) -> str:
    """Inline the theme's own CSS only; MJML's reset and media queries stay in <style>.

    Inlining MJML's reset would copy it onto every element and push an issue past Gmail's
    102 KB clipping, and mjml-python ignores `<mj-style inline>`, so the theme keeps the
    rules meant for inlining in `inline.css` and only those are applied.
    """
    if not css_file.is_file():
        return html
    premailer = _premailer()
    protected = _STYLE_TAG.sub('<style data-premailer="ignore"', html)
    inliner = premailer.Premailer(protected, css_text=css_file.read_text(encoding="utf-8"),
                        allow_network=False, allow_loading_external_files=False,
                        keep_style_tags=True, strip_important=False,
                        disable_link_rewrites=True, disable_validation=True,
                        cssutils_logging_level=logging.CRITICAL, remove_classes=False)
    return inliner.transform(pretty_print=False)


@lru_cache(maxsize=1)
def _premailer():  # type: ignore[no-untyped-def]
    import cssutils
    import premailer

    # cssutils validates every property against CSS profiles, compiling hundreds of regular
    # expressions first (60 ms a process); premailer only reads names and values back, so
    # the profiles are dropped. The inlined HTML is byte-for-byte the same.
    cssutils.profile.removeProfile(all=True)
    # cssutils fetches what an @import names, past premailer's allow_network=False (and
    # through HTTP_PROXY): composing must never touch the network. `check` reports @import.
    cssutils.util._defaultFetcher = _refuse_to_fetch
    return premailer


def _refuse_to_fetch(url: str) -> None:
    return None


_IMG = re.compile(r"<img\b[^>]*>")
_SIZE = re.compile(r'\b(width|height)="([^"]*)"')


def _whole_pixel_images(html: str, images: list[Image]) -> str:
    """Give every image of the issue a whole-pixel width and the height its file implies.

    MJML writes a column's share of the width (`width="185.6"`) and `height="auto"`;
    Outlook's Word engine mishandles both, so each becomes a whole number of pixels.
    """
    by_src = {ASSET_BASE + quote(image.src): image for image in images}

    def fix(match: re.Match[str]) -> str:
        tag = match.group()
        src = re.search(r'\bsrc="([^"]*)"', tag)
        image = by_src.get(src.group(1)) if src else None
        width = re.search(r'\bwidth="(\d+(?:\.\d+)?)"', tag)
        if image is None or not image.width or width is None:
            return tag
        pixels = int(float(width.group(1)))
        height = max(round(pixels * image.height / image.width), 1)
        sizes = {"width": str(pixels), "height": str(height)}
        tag = _SIZE.sub(lambda m: f'{m.group(1)}="{sizes[m.group(1)]}"', tag)
        return tag if 'height="' in tag else tag.replace("<img ", f'<img height="{height}" ', 1)

    return _IMG.sub(fix, html)


def _normalise_text(text: str) -> str:
    """At most one blank line in a row, no trailing spaces, one final newline."""
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n") + "\n"
