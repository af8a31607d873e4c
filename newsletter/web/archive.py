"""The web archive: which issues are public, their web versions, and the index page.

An issue becomes public when its send starts (its row in the ledger's `sends`): mail that
says "view in browser" is on its way. The archive composes those issues from their files
in the issues folder, with the same code as `build` (publish.web_html: no personal data),
and lists them newest first by issue date. `export` writes the same pages as static files.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2

from ..compose import i18n
from ..compose.editions import edition_files, edition_language
from ..compose.issue import Issue, load_issue
from ..compose.publish import published_files, web_html, write_build
from ..compose.render import ComposedEmail, compose
from ..config import Settings, bundled_templates
from ..database import open_database
from ..delivery.sends import find_send
from ..errors import NewsletterError

log = logging.getLogger(__name__)
ISSUE_FILES = ("*.yaml", "*.yml")
Stamp = tuple[tuple[int, int], ...]  # modification time and size of an issue's files


@dataclass(frozen=True)
class Entry:
    """One issue of the archive: composed once, the page of each edition rendered once."""

    composed: ComposedEmail
    pages: dict[str, str]  # by path below the issue's: "" (the main edition), "fr/"
    files: dict[str, bytes]  # the agenda's `.ics`, by path under the issue's: "fr/calendar/…"

    @property
    def issue(self) -> Issue:
        return self.composed.issue

    @property
    def page(self) -> str:
        return self.pages[""]

    def image(self, src: str) -> Path | None:
        """The file behind an image path of a page; None for anything else."""
        return next((image.path for edition in self.composed.every_edition
                     for image in edition.images if image.src == src), None)


class Archive:
    """The sent issues of `folder`; each file is read again only when it changes."""

    def __init__(self, settings: Settings, folder: Path) -> None:
        self.settings, self.folder = settings, folder
        self._lock = threading.Lock()  # web requests come from several threads
        self._issues: dict[Path, tuple[Stamp, Issue | None]] = {}
        self._entries: dict[Path, tuple[Stamp, Entry | None]] = {}

    def entries(self) -> list[Entry]:
        """The public issues, newest first; files that fail to load are left out (logged)."""
        with self._lock:
            by_slug: dict[str, tuple[Path, Stamp, Issue]] = {}
            for path, stamp, issue in self._scan():
                by_slug.setdefault(issue.slug, (path, stamp, issue))  # first file by name wins
            public = _started(self.settings.database_path, by_slug)
            found = [self._entry(*by_slug[slug]) for slug in public]
        entries = [entry for entry in found if entry is not None]
        return sorted(entries, key=lambda e: (e.issue.date, e.issue.slug), reverse=True)

    def find(self, slug: str) -> Entry | None:
        return next((entry for entry in self.entries() if entry.issue.slug == slug), None)

    def _scan(self) -> list[tuple[Path, Stamp, Issue]]:
        paths = sorted({p for pattern in ISSUE_FILES for p in self.folder.glob(pattern)
                        if edition_language(p) is None})  # editions come with their issue
        loaded = []
        for path in paths:  # an issue changes with its editions
            stamp = (_stamp(path), *(_stamp(p) for p in edition_files(path).values()))
            cached = self._issues.get(path)
            if cached is None or cached[0] != stamp:
                cached = self._issues[path] = (stamp, _load(path))
            if cached[1] is not None:
                loaded.append((path, stamp, cached[1]))
        return loaded

    def _entry(self, path: Path, stamp: Stamp, issue: Issue) -> Entry | None:
        cached = self._entries.get(path)
        if cached is None or cached[0] != stamp:
            cached = self._entries[path] = (stamp, self._compose(issue, path))
        return cached[1]

    def _compose(self, issue: Issue, path: Path) -> Entry | None:
        try:
            composed = compose(issue, self.settings)
        except NewsletterError as exc:  # a theme that no longer renders, say
            log.warning("%s: left out of the archive: %s", path, exc)
            return None
        return Entry(composed, {edition.web_path: web_html(edition, self.settings)
                                for edition in composed.every_edition},
                     {edition.web_path + name: body for edition in composed.every_edition
                      for name, body in published_files(edition, self.settings).items()})


def _stamp(path: Path) -> tuple[int, int]:
    try:
        status = path.stat()
    except FileNotFoundError:
        return (0, -1)
    return (status.st_mtime_ns, status.st_size)


def _load(path: Path) -> Issue | None:
    try:
        return load_issue(path)
    except NewsletterError as exc:  # a draft being written is no reason to stop serving
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        log.warning("%s: not in the archive until it loads: %s", path, first)
        return None


def _started(database: Path, slugs: Iterable[str]) -> list[str]:
    """The slugs whose send has started: from then on the issue is public."""
    connection = open_database(database)
    try:
        return [slug for slug in slugs
                if (send := find_send(connection, slug)) and send.started_at]
    finally:
        connection.close()


@lru_cache(maxsize=1)
def pages() -> jinja2.Environment:
    """The templates of the public pages (templates/web/): archive and unsubscribe."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(bundled_templates() / "web")),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True)
    i18n.install(env)
    return env


def render_index(settings: Settings, entries: list[Entry]) -> str:
    """The archive's index page; its links are relative, so it works under any prefix.

    Its own words are in the newsletter's language if a catalog has it, else English; the
    issues' titles are in the newsletter's language, and say so when the two differ."""
    words = i18n.written_in([bundled_templates()], (settings.language,), settings.fallback_map)
    return pages().get_template("index.html").render(
        newsletter=settings, entries=entries, lang=words, dir=i18n.direction(words),
        content_lang=settings.language, content_dir=i18n.direction(settings.language),
        translations=i18n.translations(
            [bundled_templates()], words))


def export(archive: Archive, out_dir: Path) -> list[Entry]:
    """Write `out_dir/index.html` and `out_dir/<slug>/` for every public issue."""
    entries = archive.entries()
    out_dir.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        write_build(entry.composed, archive.settings, out_dir)
    (out_dir / "index.html").write_text(render_index(archive.settings, entries),
                                        encoding="utf-8")
    return entries
