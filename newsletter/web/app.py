"""The public side of the newsletter as a WSGI app: one-click unsubscribe, the archive, and
the mail services' bounce and complaint webhooks (webhooks.py).

Every message links here: `<base_url>/unsubscribe/<token>` (the footer link and the
List-Unsubscribe header) and `<base_url>/<slug>/` (view in browser). Link scanners fetch
every URL in a message, so a GET never changes anything: only a POST whose body says
`List-Unsubscribe=One-Click` (RFC 8058) unsubscribes, whether a mailbox provider sends it
or the page's button does. No cookie, no login, no redirect: the token in the URL is the
only credential, so these pages are never cached and never send a Referer.
"""

from __future__ import annotations

import logging
import mimetypes
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus

from ..audience.store import Membership, Subscriber, SubscriberStore
from ..audience.tokens import Signer, UnsubscribeToken
from ..compose.i18n import N_
from ..compose.ics import CONTENT_TYPE as CALENDAR
from ..config import Settings
from ..errors import StoreError
from .archive import Archive, pages, render_index
from .http import (
    MAX_BODY,
    PAGE_POLICY,
    Response,
    html_page,
    message_page,
    page_language,
    page_words,
    read_form,
    refuse,
    security_headers,
)
from .preferences import PreferencePages
from .signup import SignupPages
from .webhooks import WebhookRoutes, answer

__all__ = ["MAX_BODY", "WebApp"]
log = logging.getLogger(__name__)
RETRY_AFTER = "60"  # seconds, when the database stays locked (a large import, say)
# The archive shows the theme's HTML, which may load a logo or a font from the web.
ARCHIVE_POLICY = ("default-src 'none'; img-src 'self' https: data:; style-src 'unsafe-inline' "
                  "https:; font-src https: data:; form-action 'none'; frame-ancestors 'none'; "
                  "base-uri 'none'")
_ACTION = re.compile(r"/(unsubscribe|resubscribe)/([^/]*)")
_WEBHOOK = re.compile(r"/webhooks/([a-z]+)")
_ISSUE = re.compile(r"/([a-z0-9][a-z0-9._-]{0,63})(?:/(.*))?")  # a slug, as issue.SLUG
StartResponse = Callable[[str, list[tuple[str, str]]], object]


@dataclass(frozen=True)
class Found:
    """A valid token and, unless it is a test token, whom and which list it is for."""

    text: str  # as in the URL, for the page's forms
    token: UnsubscribeToken
    subscriber: Subscriber | None = None
    membership: Membership | None = None


class WebApp:
    """The WSGI application; `newsletter serve` runs it with waitress."""

    def __init__(self, settings: Settings, archive: Archive, signer: Signer) -> None:
        self.settings, self.archive, self.signer = settings, archive, signer
        self._local = threading.local()  # one store (SQLite connection) per server thread
        # Writers of this process queue here rather than in SQLite's busy handler, which
        # sleeps in steps of up to 100 ms; other processes still meet the busy timeout.
        self._write_lock = threading.Lock()
        self.signup = SignupPages(settings, signer, self._store, self._write_lock)
        self.preferences = PreferencePages(settings, signer, self._store, self._write_lock)
        self.webhooks = WebhookRoutes(settings, self._write_lock)

    def __call__(self, environ: dict[str, object], start_response: StartResponse
                 ) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET"))
        path = str(environ.get("PATH_INFO") or "").encode("latin-1").decode("utf-8", "replace")
        if path:
            response = self.route(method, path, environ)
        else:  # /newsletter behind --url-prefix /newsletter: on to /newsletter/
            prefix = str(environ.get("SCRIPT_NAME") or "")
            response = Response(301, headers=[("Location", prefix.rpartition("/")[2] + "/")])
        policy = response.policy or (PAGE_POLICY if _ACTION.fullmatch(path) else ARCHIVE_POLICY)
        headers = [*security_headers(policy), *response.headers,
                   ("Content-Length", str(len(response.body)))]
        start_response(f"{response.status} {HTTPStatus(response.status).phrase}", headers)
        return [b"" if method == "HEAD" else response.body]

    def route(self, method: str, path: str, environ: dict[str, object]) -> Response:
        if match := _WEBHOOK.fullmatch(path):
            if refused := refuse(method, "POST"):
                return refused
            status, data, headers = self.webhooks.handle(match[1], environ)
            return Response(status, answer(data), [
                ("Content-Type", "application/json"), ("Cache-Control", "no-store"), *headers])
        for pages_ in (self.signup, self.preferences):  # sign-up, confirmation, preferences
            if (response := pages_.route(method, path, environ)) is not None:
                return response
        if match := _ACTION.fullmatch(path):
            action, token = match.groups()
            if action == "resubscribe":
                return refuse(method, "POST") or self._resubscribe(token, environ)
            if method == "POST":
                return self._unsubscribe(token, environ)
            return refuse(method, "GET", "HEAD", "POST") or self._confirm(token)
        if refused := refuse(method, "GET", "HEAD"):
            return refused
        if path == "/":
            return html_page(200, render_index(self.settings, self.archive.entries()), public=True)
        if (match := _ISSUE.fullmatch(path)) and (entry := self.archive.find(match[1])):
            if match[2] is None:  # /2020-01 -> 2020-01/, where the page's relative links work
                return Response(301, headers=[("Location", f"{match[1]}/")])
            if match[2] in entry.pages:  # "" for the main edition, "fr/" for another
                return html_page(200, entry.pages[match[2]], public=True)
            if match[2] + "/" in entry.pages:  # 2020-01/fr -> fr/, as above
                return Response(301, headers=[("Location", f"{match[2]}/")])
            if (calendar := entry.files.get(match[2])) is not None:
                return Response(200, calendar, [
                    ("Content-Type", CALENDAR), ("Cache-Control", "public, max-age=3600")])
            if image := entry.image(match[2]):
                kind = mimetypes.guess_type(image.name)[0] or "application/octet-stream"
                return Response(200, image.read_bytes(), [
                    ("Content-Type", kind), ("Cache-Control", "public, max-age=86400")])
        return self._message(404, N_("Not found"), N_("There is no page at this address. "
                             "The archive of past issues is on the home page."))

    # -- unsubscribe -----------------------------------------------------------------

    def _confirm(self, token: str) -> Response:
        """GET: the page with the button; changes nothing, whatever fetched it."""
        if not token:  # the link in the web version and in `build`: it belongs to nobody
            return self._message(200, N_("Unsubscribe"), N_(
                "To unsubscribe, use the Unsubscribe link at the bottom of an email you "
                "received: it is made for your address. This copy belongs to nobody."))
        found = self._lookup(token)
        if isinstance(found, Response):
            return found
        if found.membership and found.membership.status == "unsubscribed":
            return self._page(200, "unsubscribed.html", found, already=True)
        return self._page(200, "confirm.html", found)

    def _unsubscribe(self, token: str, environ: dict[str, object]) -> Response:
        """POST: RFC 8058 one-click, or the page's button (the same body, plus from=page)."""
        form = self._read_form(environ)
        if isinstance(form, Response):
            return form
        if form.get("List-Unsubscribe", "").strip() != "One-Click":
            return self._message(400, N_("Nothing was changed"), N_(
                "An unsubscribe request must carry List-Unsubscribe=One-Click (RFC 8058)."))
        found = self._lookup(token)
        if isinstance(found, Response):
            return found
        if found.subscriber is None:
            return self._test_page()
        via = "unsubscribe page" if form.get("from") == "page" else "one-click (RFC 8058)"
        try:
            with self._write_lock:
                self._store().unsubscribe(found.subscriber.email, found.token.list_name,
                                          reason=via)
        except StoreError:  # locked too long, or taken off the list meanwhile: a retry tells
            return self._busy(found)
        log.info("unsubscribed subscriber %d from %s via %s", found.subscriber.id,
                 found.token.list_name, via)
        return self._page(200, "unsubscribed.html", found, already=False)

    def _resubscribe(self, token: str, environ: dict[str, object]) -> Response:
        """POST from the "unsubscribed" page: undo that list's unsubscribe, nothing more."""
        form = self._read_form(environ)
        if isinstance(form, Response):
            return form
        found = self._lookup(token)
        if isinstance(found, Response):
            return found
        if found.subscriber is None or found.membership is None:
            return self._test_page()
        if found.subscriber.status == "active":
            try:
                with self._write_lock:
                    changed = self._store().resubscribe_list(
                        found.subscriber.id, found.token.list_name,
                        "subscribed again on the unsubscribe page")
            except StoreError:
                return self._busy(found)
            if changed or found.membership.status == "active":
                if changed:
                    log.info("resubscribed subscriber %d to %s", found.subscriber.id,
                             found.token.list_name)
                return self._page(200, "resubscribed.html", found)
        contact = self.settings.reply_to or self.settings.sender_address
        return self._message(409, N_("We cannot subscribe you again here"), N_(
            "This address no longer receives any mail from us. To receive the newsletter "
            "again, please write to %(contact)s."), self._language(found), contact=contact)

    def _lookup(self, token: str) -> Found | Response:
        """The token's subscriber and list membership, or the page that says why not."""
        checked = self.signer.verify_unsubscribe(token)
        if checked is None:
            return self._message(400, N_("This link does not work"), N_(
                "It may have been cut short or changed on its way here. Copy the whole link "
                "from the email, or click the Unsubscribe link at its bottom."))
        if checked.is_test:
            return Found(token, checked)
        store = self._store()
        subscriber = store.get_by_id(checked.subscriber_id)
        membership = next((m for m in store.memberships(checked.subscriber_id)
                           if m.list_name == checked.list_name), None)
        if subscriber is None or membership is None:
            return self._message(404, N_("Nothing to unsubscribe"), N_(
                "The address of this link is not on the list “%(list)s”."),
                list=checked.list_name)
        return Found(token, checked, subscriber, membership)

    def _store(self) -> SubscriberStore:
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = SubscriberStore(
                self.settings.database_path, self.signer.address_hash,
                busy_timeout=self.settings.busy_timeout)
        return store

    def _read_form(self, environ: dict[str, object]) -> dict[str, str] | Response:
        form = read_form(environ)
        if form is None:
            return self._message(413, N_("Nothing was changed"), N_("The request is too large."))
        return form

    # -- pages -----------------------------------------------------------------------

    def _language(self, found: Found | None) -> str:
        """The subscriber's language if the pages speak it, else the newsletter's."""
        subscriber = found.subscriber if found else None
        return page_language(self.settings, subscriber.fields.get("language")
                             if subscriber else None)

    def _page(self, status: int, template: str, found: Found, **context: object) -> Response:
        subscriber = found.subscriber
        return html_page(status, pages().get_template(template).render(
            list_name=found.token.list_name, token=found.text,
            test=subscriber is None, address=subscriber.email if subscriber else "",
            **page_words(self.settings, self._language(found)), **context))

    def _message(self, status: int, title: str, text: str, language: str | None = None,
                 **values: str) -> Response:
        """A page of one title and one paragraph, both marked N_() and translated."""
        return message_page(self.settings, status, title, text, language, **values)

    def _test_page(self) -> Response:
        return self._message(200, N_("Nothing was changed: this was a test"), N_(
            "This link comes from a test message. In a message to subscribers, the same "
            "link unsubscribes its reader from the list at once."))

    def _busy(self, found: Found | None = None) -> Response:
        response = self._message(503, N_("Please try again in a minute"), N_(
            "The subscriber database is busy. Nothing was changed yet."), self._language(found))
        response.headers.append(("Retry-After", RETRY_AFTER))
        return response
