"""The composed email kept on disk by content hash, for processes that build it again.

Most of a `newsletter build` of an unchanged issue is importing and running Jinja2, MJML
and premailer. The key covers everything composing reads: the validated issue, the
settings, every file of the theme and the message catalogs of the edition's language, the
issue's images, the issue (or edition) file itself, the edition's language and the other
editions it links to, the program's own files and the libraries it calls (by file size and
time: an upgrade rewrites them); so an entry is only ever found for a result that composing
again would write byte for byte. One entry per issue or edition file and kind (test or not)
in `$XDG_CACHE_HOME/newsletter/composed/` (else `~/.cache/...`); a new version of the issue
replaces it. A damaged or unreadable entry is a miss, and a cache that cannot be written is
no cache: building never fails because of it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from ..config import Settings, bundled_templates
from .i18n import catalog_paths
from .issue import Issue

LOG = logging.getLogger("newsletter")
FORMAT = b"newsletter composed 1\n"
LIBRARIES = ("mjml", "premailer", "cssutils", "cssselect", "lxml", "jinja2", "markupsafe",
             "markdown_it", "mdurl", "babel")
KEEP = 256  # entries; past that the oldest half goes
_PROGRAM = Path(__file__).resolve().parent.parent  # the newsletter package


def folder(env: Mapping[str, str]) -> Path | None:
    """Where entries live, from the environment; None without XDG_CACHE_HOME or HOME."""
    base = env.get("XDG_CACHE_HOME") or (env.get("HOME") and os.path.join(env["HOME"],
                                                                          ".cache"))
    return Path(base) / "newsletter" / "composed" if base else None


class Entry:
    """The cached composition of one issue file, valid for one key."""

    def __init__(self, issue: Issue, settings: Settings, template_dir: Path, test: bool,
                 root: Path, edition: Edition) -> None:
        name = hashlib.sha256(f"{issue.source.resolve()}\0{test}\0{edition.language}"
                              .encode()).hexdigest()[:32]
        self.path = root / f"{name}.composed"
        self.key = _key(issue, settings, template_dir, test, edition)

    @classmethod
    def find(cls, issue: Issue, settings: Settings, template_dir: Path, test: bool,
             language: str | None = None, web_path: str = "",
             alternates: Sequence[object] = ()) -> Entry | None:
        """The entry of the issue's main edition, or of the edition in `language` published
        at `web_path` and linking to `alternates` (every edition); None without a folder."""
        root = folder(settings.env)
        edition = Edition(language or settings.language, web_path, repr(tuple(alternates)))
        return cls(issue, settings, template_dir, test, root, edition) if root else None

    def load(self) -> tuple[str, str, frozenset[str]] | None:
        """The HTML, text and placeholder names stored for this key, or None."""
        try:
            data = self.path.read_bytes()
            magic, key, sizes, payload = data.split(b"\n", 3)
            if magic + b"\n" != FORMAT or key != self.key:
                return None
            html_size, text_size = (int(n) for n in sizes.split())
            if len(payload) < html_size + text_size:
                return None
            html = payload[:html_size].decode("utf-8")
            text = payload[html_size:html_size + text_size].decode("utf-8")
            fields = payload[html_size + text_size:].decode("utf-8").split()
        except (OSError, ValueError):  # absent, cut short, not ours: compose again
            return None
        return html, text, frozenset(fields)

    def store(self, html: str, text: str, fields: Iterable[str]) -> None:
        html_bytes, text_bytes = html.encode("utf-8"), text.encode("utf-8")
        data = b"".join((FORMAT, self.key, b"\n", b"%d %d\n" % (len(html_bytes),
                         len(text_bytes)), html_bytes, text_bytes,
                         " ".join(sorted(fields)).encode("utf-8")))
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _prune(self.path.parent)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, suffix=".part")
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temporary, self.path)  # readers see the old entry or the new, whole
        except OSError as exc:
            LOG.debug("composed email not cached in %s: %s", self.path.parent, exc)


class Edition(NamedTuple):
    """What tells one edition's composition from another's of the same issue."""

    language: str
    web_path: str
    alternates: str  # repr of the editions it links to


def _key(issue: Issue, settings: Settings, template_dir: Path, test: bool,
         edition: Edition) -> bytes:
    digest = hashlib.sha256(FORMAT)
    for part in (repr(issue), repr(settings), repr(test), sys.version, str(template_dir),
                 *edition):
        digest.update(part.encode("utf-8") + b"\0")
    for path in sorted(p for p in template_dir.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(template_dir)}\0".encode() + path.read_bytes())
    code = [Path(folder, name) for folder, _, names in os.walk(_PROGRAM)
            if "__pycache__" not in folder for name in names]  # all of it: 1 ms, never stale
    for library in LIBRARIES:
        spec = importlib.util.find_spec(library)
        code.append(Path(spec.origin) if spec and spec.origin else Path(library))
    catalogs = catalog_paths([template_dir, bundled_templates()], edition.language)
    digest.update(file_stamps([issue.source, *catalogs,
                               *(image.path for image in issue.images), *code]))
    return digest.hexdigest().encode("ascii")


def file_stamps(paths: Iterable[Path]) -> bytes:
    """Each file's path, size and modification time: what changes when it is written."""
    stamps = []
    for path in paths:
        try:
            stat = path.stat()
            stamps.append(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0")
        except OSError:  # a missing image is the issue's problem, found elsewhere
            stamps.append(f"{path}\0missing\0")
    return "".join(stamps).encode("utf-8")


def _prune(root: Path) -> None:
    entries = list(root.glob("*.composed"))
    if len(entries) < KEEP:
        return
    entries.sort(key=lambda p: p.stat().st_mtime)
    for stale in entries[:len(entries) // 2]:
        stale.unlink(missing_ok=True)
