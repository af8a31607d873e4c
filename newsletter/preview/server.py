"""The local preview: the latest build of one issue, rebuilt on save, served on 127.0.0.1.

A watcher thread rebuilds once per burst of saves and bumps a version number; the page
listens on `/events` (server-sent events, each carrying the new state) and puts the new
email into its frames in place, without reloading them, so the reader's scroll position
stays and the images, under URLs that change only when an image does, come from the
browser's cache. A build that fails is a build too: its problems replace the email. An
issue with editions is shown one edition at a time: `?edition=fr` on `state` and
`email.html` (the events carry the main edition's state).
"""

from __future__ import annotations

import errno
import hashlib
import json
import mimetypes
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import parseaddr
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import watchfiles

from ..compose.cache import file_stamps
from ..compose.editions import edition_language
from ..compose.i18n import native_name
from ..compose.issue import load_issue
from ..compose.lint import check
from ..compose.publish import fill, web_html, web_values
from ..compose.render import ComposedEmail, compose
from ..config import Settings
from ..errors import ConfigError, IssueFileError, NewsletterError, Problem
from .schemes import SCHEMES, as_seen, has_dark_rules

HOST = "127.0.0.1"
PAGE = Path(__file__).with_name("page.html")
# The watcher looks every STEP_MS and rebuilds once a look finds no change newer than the
# last one: a save shows 20-40 ms after it, and a burst of saves is one rebuild...
STEP_MS = 20
DEBOUNCE_MS = 1000  # ...unless it lasts longer than this, so a steady stream shows up
KEEPALIVE_SECONDS = 15.0
# The email may load its own images and inline styles, nothing from the internet.
EMAIL_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"
HTML, TEXT = "text/html; charset=utf-8", "text/plain; charset=utf-8"
_IGNORED = watchfiles.DefaultFilter()


@dataclass(frozen=True)
class View:
    """One edition as the page shows it."""

    language: str
    subject: str
    preheader: str
    html: str  # images under `assets/<images_version>/`
    text: str

    @classmethod
    def of(cls, composed: ComposedEmail, settings: Settings, assets: str) -> View:
        return cls(composed.language, composed.subject, composed.preheader,
                   web_html(composed, settings, asset_base=assets),
                   fill(composed.text, web_values(settings, composed), escape=False))


@dataclass(frozen=True)
class Snapshot:
    """One build of the issue, as the preview page shows it."""

    version: int
    source: str = ""  # the issue file, as the user calls it
    problems: tuple[str, ...] = ()  # why there is no email to show; empty when there is one
    findings: tuple[Problem, ...] = ()
    subject: str = ""
    preheader: str = ""
    sender: str = ""
    date: str = ""
    html: str = ""  # images under `assets/<images_version>/`
    text: str = ""
    images: dict[str, Path] = field(default_factory=dict)  # by src, the only files served
    images_version: str = ""  # changes when an image does, so browsers may cache the rest
    template_dir: Path | None = None
    language: str = ""  # the main edition's
    editions: tuple[View, ...] = ()  # the others, when the issue has several

    def view(self, language: str | None = None) -> View:
        """The edition in `language`, else the main one."""
        main = View(self.language, self.subject, self.preheader, self.html, self.text)
        return next((v for v in self.editions if v.language == language), main)

    def state(self, language: str | None = None) -> dict[str, object]:
        """What the page needs besides the email itself, for the edition in `language`."""
        view = self.view(language)
        every = [self.language, *(v.language for v in self.editions)] if self.editions else []
        return {
            "version": self.version, "source": self.source, "problems": list(self.problems),
            "findings": [{"severity": f.severity, "text": str(f)} for f in self.findings],
            "subject": view.subject, "preheader": view.preheader, "sender": self.sender,
            "date": self.date, "text": view.text,
            "dark_rules": has_dark_rules(view.html),
            "edition": view.language,
            "editions": [{"language": tag, "name": native_name(tag)} for tag in every],
        }


class Preview:
    """The latest snapshot of one issue; `watch` keeps it current, `wait` reports changes."""

    def __init__(self, issue_path: Path, load_settings: Callable[[], Settings],
                 display: Callable[[Path], str],
                 on_build: Callable[[Snapshot], None] | None = None) -> None:
        self.issue_path = issue_path.resolve()
        self._settings = load_settings
        self._display = display
        self._on_build = on_build or (lambda snapshot: None)
        self._changed = threading.Condition()
        self.closed = False
        self.snapshot = Snapshot(0)
        self.rebuild()

    def rebuild(self) -> None:
        """Build the issue again; whatever goes wrong becomes the snapshot's problems."""
        source = self._display(self.issue_path)
        version = self.snapshot.version + 1
        template_dir = self.snapshot.template_dir
        try:
            settings = self._settings()
            issue = load_issue(self.issue_path, source)
            template_dir = settings.template_dir(issue.template)
            composed = compose(issue, settings, cache=False)  # new on every save
            images = {image.src: image.path for edition in composed.every_edition
                      for image in edition.images}
            images_version = _version(images.values())
            assets = f"assets/{images_version}/"
            main = View.of(composed, settings, assets)
            snapshot = Snapshot(
                version, source, findings=tuple(check(composed, settings, source)),
                subject=main.subject, preheader=main.preheader,
                sender=parseaddr(settings.sender)[0] or settings.sender_address,
                date=f"{issue.date.day} {issue.date:%b}", html=main.html, text=main.text,
                images=images, images_version=images_version, template_dir=template_dir,
                language=composed.language, editions=tuple(
                    View.of(edition, settings, assets) for edition in composed.editions))
        except Exception as exc:  # a half-edited file or theme can fail anywhere; stay up
            snapshot = Snapshot(version, source, self._problems(exc), template_dir=template_dir)
        with self._changed:
            self.snapshot = snapshot
            self._changed.notify_all()
        self._on_build(snapshot)

    def _problems(self, exc: Exception) -> tuple[str, ...]:
        """What the page lists instead of the email, located at `file:line` when possible."""
        if isinstance(exc, IssueFileError):
            return tuple(str(problem) for problem in exc.problems)
        if isinstance(exc, NewsletterError):
            return tuple(filter(None, (str(exc), exc.hint)))
        return (f"{type(exc).__name__}: {exc}",)

    def wait(self, known: int | None, timeout: float) -> int:
        """The current version, as soon as it differs from `known` or after `timeout`."""
        with self._changed:
            self._changed.wait_for(lambda: self.closed or self.snapshot.version != known,
                                   timeout)
            return self.snapshot.version

    def close(self) -> None:
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    def watch(self, stop: threading.Event) -> None:
        """Rebuild once per burst of changes to the issue, its images or its theme."""
        while not stop.is_set():
            roots = self._roots()
            for _ in watchfiles.watch(*roots, watch_filter=self._relevant, step=STEP_MS,
                                      debounce=DEBOUNCE_MS, stop_event=stop,
                                      raise_interrupt=False):
                self.rebuild()
                if self._roots() != roots:  # the issue switched to another theme
                    break

    def _roots(self) -> tuple[Path, ...]:
        template_dir = self.snapshot.template_dir
        folders = [self.issue_path.parent]
        if template_dir is not None and template_dir.is_dir():
            folders.append(template_dir.resolve())
        return tuple(folders)

    def _relevant(self, change: watchfiles.Change, path: str) -> bool:
        if not _IGNORED(change, path):
            return False
        changed = Path(path)
        template_dir = self.snapshot.template_dir
        if template_dir is not None and changed.is_relative_to(template_dir.resolve()):
            return True
        # Another issue's file in the same folder is not ours (its editions are); its
        # images may be.
        return changed == self.issue_path or changed.suffix not in (".yaml", ".yml") or (
            changed.name.startswith(self.issue_path.stem + ".")
            and edition_language(changed) is not None)

    def email(self, scheme: str = "light", language: str | None = None) -> str:
        """The email as the frames show it: links open outside, as a `scheme` client shows it."""
        html = self.snapshot.view(language).html.replace("<head>",
                                                         '<head><base target="_blank">', 1)
        return as_seen(html, scheme)


def _version(images: Iterable[Path]) -> str:
    """A short name for the images as they are now on disk."""
    return "v" + hashlib.sha256(file_stamps(images)).hexdigest()[:12]


def open_server(port: int) -> ThreadingHTTPServer:
    """Listen on 127.0.0.1:`port` (0 picks a free port); a taken port is a ConfigError."""
    try:
        server = ThreadingHTTPServer((HOST, port), _Handler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} is in use; try --port {port + 1}") from None
        raise ConfigError(f"cannot listen on {HOST}:{port}: {exc.strerror}") from None
    server.daemon_threads = True  # open event streams must not hold up the exit
    return server


def serve(server: ThreadingHTTPServer, preview: Preview) -> None:
    """Serve `preview` and keep it current until interrupted; KeyboardInterrupt propagates."""
    server.preview = preview  # type: ignore[attr-defined]
    stop = threading.Event()
    watcher = threading.Thread(target=preview.watch, args=(stop,), name="watch", daemon=True)
    watcher.start()
    try:
        server.serve_forever()
    finally:
        stop.set()
        preview.close()
        watcher.join(timeout=2)


class _Handler(BaseHTTPRequestHandler):
    server_version = "newsletter-preview"

    @property
    def preview(self) -> Preview:
        return self.server.preview  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        if host not in (HOST, "localhost"):  # a foreign site's page, via DNS rebinding
            return self._send(403, TEXT, b"preview is served to 127.0.0.1 only\n")
        if url.path == "/":
            self._send(200, HTML, PAGE.read_bytes())
        elif url.path == "/state":
            edition = parse_qs(url.query).get("edition", [None])[0]
            state = json.dumps(self.preview.snapshot.state(edition)).encode("utf-8")
            self._send(200, "application/json", state)
        elif url.path == "/email.html" and not self.preview.snapshot.problems:
            query = parse_qs(url.query)
            scheme, edition = query.get("scheme", ["light"])[0], query.get("edition", [None])[0]
            scheme = scheme if scheme in SCHEMES else "light"
            self._send(200, HTML, self.preview.email(scheme, edition).encode("utf-8"),
                       {"Content-Security-Policy": EMAIL_CSP})
        elif url.path == "/events":
            self._events()
        elif url.path.startswith("/assets/"):
            self._image(unquote(url.path.removeprefix("/assets/")))
        else:
            self._send(404, TEXT, b"not found\n")

    def _image(self, path: str) -> None:
        """An image of the issue, by its `src`, under the build's images version or not."""
        snapshot = self.preview.snapshot
        version, _, src = path.partition("/")
        cached = version == snapshot.images_version and src in snapshot.images
        image = snapshot.images.get(src if cached else path)
        try:
            body = image.read_bytes() if image else None
        except OSError:  # removed since the build; the next build will say so
            body = None
        if body is None:
            return self._send(404, TEXT, b"not an image of this issue\n")
        kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
        # A changed image gets a new version, hence a new URL: this one may be kept.
        self._send(200, kind, body, {"Cache-Control": "private, max-age=3600"} if cached
                   else None)

    def _send(self, status: int, kind: str, body: bytes,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        headers = {"Cache-Control": "no-store", **(headers or {})}  # a save must show at once
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _events(self) -> None:
        """Server-sent events: the build version now, then at every rebuild."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        known = None
        try:
            self.wfile.write(b"retry: 500\n\n")  # reconnect fast when the server restarts
            while not self.preview.closed:
                version = self.preview.wait(known, KEEPALIVE_SECONDS)
                if version == known:
                    self.wfile.write(b": still here\n\n")  # finds clients that went away
                else:  # the state of that build, so that the page need not ask for it
                    state = self.preview.snapshot.state()
                    self.wfile.write(b"event: build\ndata: " + json.dumps(state).encode() +
                                     b"\n\n")
                    known = state["version"]
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the terminal shows builds, not requests."""
