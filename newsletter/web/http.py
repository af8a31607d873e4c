"""What every page of `newsletter serve` shares: the answer, form bodies, the headers.

No cookie, no login, no redirect but to add a slash: a token in the URL or a signed form
field is the only credential, so private pages are never cached and never send a Referer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qsl

from ..compose import i18n
from ..config import Settings, bundled_templates
from .archive import pages

MAX_BODY = 8192  # a one-click body is 26 bytes; a form of ours, a few hundred
# The pages of people's own links and forms: nothing from elsewhere, no script.
PAGE_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
               "frame-ancestors 'none'; base-uri 'none'")

# waitress's own answers (a body over the limit, a malformed request): a line of text.
ERROR_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"


def security_headers(policy: str) -> list[tuple[str, str]]:
    """The headers every answer of `newsletter serve` carries."""
    return [("Content-Security-Policy", policy), ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer")]


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    policy: str | None = None  # Content-Security-Policy; None: the app's choice by path


def refuse(method: str, *allowed: str) -> Response | None:
    """A 405 answer unless `method` is allowed."""
    if method in allowed:
        return None
    return Response(405, b"method not allowed\n", [("Allow", ", ".join(allowed)),
                                                   ("Content-Type", "text/plain")])


def html_page(status: int, page: str, *, public: bool = False,
              policy: str | None = None) -> Response:
    cache = "public, max-age=300" if public else "no-store"
    return Response(status, page.encode("utf-8"), [
        ("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", cache)], policy)


def page_language(settings: Settings, wanted: str | None = None) -> str:
    """The language a page is written in: `wanted` (a reader's) if the pages speak it, or
    a language it narrows or falls back to, else the newsletter's, else English; so that
    `<html lang>` always names the language of the words."""
    return i18n.written_in([bundled_templates()], (wanted, settings.language),
                           settings.fallback_map)


def page_words(settings: Settings, language: str | None = None) -> dict[str, object]:
    """What a page's templates need to speak `language` (the newsletter's by default)."""
    language = page_language(settings, language)
    return {"newsletter": settings, "lang": language, "dir": i18n.direction(language),
            "translations": i18n.translations([bundled_templates()], language)}


def message_page(settings: Settings, status: int, title: str, text: str,
                 language: str | None = None, **values: str) -> Response:
    """A short page that says what happened, on people's own pages (PAGE_POLICY); a title
    and text marked N_() are shown in `language`, `values` filled into the text."""
    words = page_words(settings, language)
    translate = words["translations"].gettext  # type: ignore[attr-defined]
    return html_page(status, pages().get_template("message.html").render(
        title=translate(title), text=translate(text) % values if values else translate(text),
        **words), policy=PAGE_POLICY)


def read_form(environ: dict[str, object]) -> dict[str, str] | None:
    """The fields of a form POST (urlencoded or multipart); None if the body is too large."""
    try:
        length = int(str(environ.get("CONTENT_LENGTH") or 0))
    except ValueError:
        length = -1
    if not 0 <= length <= MAX_BODY:
        return None
    body = environ["wsgi.input"].read(length) if length else b""  # type: ignore[attr-defined]
    kind = str(environ.get("CONTENT_TYPE") or "")
    if kind.startswith("multipart/form-data"):
        return multipart(kind, body)
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def multipart(kind: str, body: bytes) -> dict[str, str]:
    """The text fields of a multipart/form-data body (RFC 8058 allows that encoding too)."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + kind.encode("latin-1") + b"\r\n\r\n" + body)
    form = {}
    for part in message.iter_parts() if message.is_multipart() else ():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str) and part.get_content_maintype() == "text":
            form[name] = str(part.get_content())
    return form
