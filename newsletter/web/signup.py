"""Sign-up with double opt-in: GET/POST /subscribe and GET/POST /confirm/TOKEN.

The answer to a valid POST /subscribe is the same page whatever the address is (new,
pending, subscribed, unsubscribed, bounced, erased), so the form tells a stranger nothing;
the mail it may send goes to the address's owner only. The confirmation link opens a page
with a button: mail scanners fetch links, so only the button's POST confirms. Tokens are
signed: the form's (so that a page of ours was filled in, recently, or the snippet of
`newsletter form` on a site listed in embed_origins) and the link's (it expires).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from ..audience import consent, signup
from ..audience.store import SubscriberStore, address_key
from ..audience.tokens import Signer
from ..compose.i18n import N_
from ..config import Settings
from ..delivery.message import FORBIDDEN_IN_HEADERS
from ..delivery.notice import Notices
from ..envelope import Recipient
from ..errors import ConfigError, NewsletterError, StoreError
from ..grammar import LIST_NAME
from ..transports import Status, Transport, open_transport
from .abuse import HONEYPOT, ClientLimit, ProofOfWork
from .archive import pages
from .http import PAGE_POLICY, Response, html_page, message_page, page_words, read_form, refuse
from .signupform import EMBED, Form, consent_wording, form_context, script

log = logging.getLogger(__name__)
FORM_LIFETIME = 86400.0  # a form page left open longer is shown again, filled in
PURGE_EVERY = 3600.0  # seconds between clean-ups of sign-ups never confirmed
OWN = "own"  # a form posted from a page of ours
SCRIPT_POLICY = PAGE_POLICY.replace("default-src 'none';", "default-src 'none'; "
                                    "script-src 'self';")


class SignupPages:
    """The sign-up routes of the app; `store` gives this thread's store."""

    def __init__(self, settings: Settings, signer: Signer, store: Callable[[], SubscriberStore],
                 write_lock: threading.Lock) -> None:
        bad = [name for name in settings.signup_lists if not LIST_NAME.match(name)]
        if bad:
            raise ConfigError(f"signup.lists: {', '.join(map(repr, bad))} is not a list name "
                              "(lower-case letters, digits, - and _)")
        self.settings, self.signer, self.store, self.write_lock = (settings, signer, store,
                                                                   write_lock)
        self.base_url = settings.base_url.rstrip("/")
        self.limit = ClientLimit(settings.signup_per_client_per_hour)
        self.work = (ProofOfWork(signer.subkey("altcha"), settings.signup_proof_of_work_max,
                                 FORM_LIFETIME) if settings.signup_proof_of_work else None)
        self._notices: Notices | None = None  # the theme and DKIM key, read on first mail
        self._local = threading.local()  # one transport (an SMTP connection) per thread
        self._last_purge = 0.0

    def route(self, method: str, path: str, environ: dict[str, object]) -> Response | None:
        """The answer for a sign-up path, or None for any other path."""
        if path == "/subscribe":
            if not self.settings.signup_lists:
                return message_page(self.settings, 404, N_("Not found"), N_(
                    "This newsletter has no sign-up form; write to us to subscribe."))
            if method == "POST":
                return self.submit(environ)
            return refuse(method, "GET", "HEAD", "POST") or self.form_page(200, Form())
        if path == "/subscribe/altcha.js" and self.work is not None:
            return refuse(method, "GET", "HEAD") or Response(200, script(), [
                ("Content-Type", "text/javascript; charset=utf-8"),
                ("Cache-Control", "public, max-age=3600")], PAGE_POLICY)
        if path.startswith("/confirm/"):
            token = path[len("/confirm/"):]
            if method == "POST":
                return self.confirm(token)
            return refuse(method, "GET", "HEAD", "POST") or self.confirm_page(token)
        return None

    # -- the form ----------------------------------------------------------------------

    def form_page(self, status: int, form: Form, note: str = "") -> Response:
        """The form, in the language the visitor chose on it (else the newsletter's); `note`
        is marked N_()."""
        challenge = self.work.challenge() if self.work else ""
        context = form_context(self.settings, "", self.signer.sign("form", int(time.time())),
                               form, challenge)
        words = context["translations"]
        page = pages().get_template("subscribe.html").render(
            note=words.gettext(note) if note else "", **context)  # type: ignore[attr-defined]
        return html_page(status, page, policy=SCRIPT_POLICY if challenge else PAGE_POLICY)

    def submit(self, environ: dict[str, object]) -> Response:
        fields = read_form(environ)
        if fields is None:
            return message_page(self.settings, 413, N_("Nothing was sent"), N_(
                "The request is too large."))
        form, problem = self.parse(fields)
        origin = self.origin(environ)
        if origin is None:
            log.info("sign-up refused: a form posted from %s",
                     str(environ.get("HTTP_ORIGIN"))[:100])
            return message_page(self.settings, 403, N_("This form cannot be sent from there"),
                                N_("Please subscribe on our own sign-up page."), form.language)
        if not self.limit.allow(self.client(environ)):
            return message_page(self.settings, 429, N_("Please try again later"), N_(
                "Too many sign-ups came from your network in the last hour."), form.language)
        if problem:
            return self.form_page(400, form, problem)
        if fields.get(HONEYPOT):
            log.info("sign-up ignored: the hidden field was filled in")
            return self.sent_page(form.language)
        if not origin or not self.fresh(fields.get("form_token", "")) or (
                self.work and not self.work.verify(fields.get("altcha", ""))):
            return self.form_page(400, form, N_("Please press Subscribe once more to finish."))
        # The wording as the form showed it; a form printed before it said (an old snippet)
        # showed the setting as written.
        shown = fields.get("consent_language")
        wording = consent_wording(self.settings, shown) if shown else (
            self.settings.signup_consent_text)
        return self.request(form, origin, wording, environ)

    def parse(self, fields: dict[str, str]) -> tuple[Form, str]:
        s = self.settings
        email, name = fields.get("email", "").strip(), " ".join(fields.get("name", "").split())
        lists = tuple(n for n in s.signup_lists if fields.get(f"list:{n}"))
        language = fields.get("language", "")
        form = Form(email, name, lists, language if language in s.signup_languages else "")
        try:
            if len(email) > 254 or FORBIDDEN_IN_HEADERS.search(email):
                raise ValueError("too long")
            address_key(email)
        except ValueError:
            return form, N_("Please check the email address: it does not look complete.")
        if len(name) > 200 or FORBIDDEN_IN_HEADERS.search(name):
            return form, N_("Please shorten the name, or leave it out.")
        if not lists:
            return form, N_("Please choose at least one list.")
        return form, ""

    def fresh(self, token: str) -> bool:
        values = self.signer.verify("form", token, 1)
        if values is None:
            return False
        if values[0] == EMBED:
            return True
        return values[0].isdigit() and time.time() - int(values[0]) < FORM_LIFETIME

    def origin(self, environ: dict[str, object]) -> str | None:
        """Where the form was filled in: `own` (a page of ours, or no browser said), a site
        of embed_origins, "" (unknown: show our form again), or None (another site)."""
        origin = str(environ.get("HTTP_ORIGIN") or "")
        if environ.get("HTTP_SEC_FETCH_SITE") == "same-origin" or not origin:
            return OWN  # our pages send no Referer, so a browser says `Origin: null`
        if origin == "null":
            return ""
        if origin in (o.rstrip("/") for o in self.settings.signup_embed_origins):
            return origin
        own = urlsplit(self.base_url)
        scheme = str(environ.get("wsgi.url_scheme") or "http")
        if origin in (f"{own.scheme}://{own.netloc}", f"{scheme}://{environ.get('HTTP_HOST')}"):
            return OWN
        return None

    def client(self, environ: dict[str, object]) -> str:
        header = self.settings.signup_client_ip_header
        if header:
            value = str(environ.get("HTTP_" + header.upper().replace("-", "_")) or "")
            if value:  # X-Forwarded-For: the last entry is the one our proxy added
                return value.rsplit(",", 1)[-1].strip()
        return str(environ.get("REMOTE_ADDR") or "")

    def request(self, form: Form, origin: str, wording: str,
                environ: dict[str, object]) -> Response:
        s = self.settings
        source = (f"sign-up form at {self.base_url}/subscribe" if origin == OWN
                  else f"sign-up form on {origin}")
        ask = signup.SignupRequest(form.email, form.name, form.lists, form.language, source,
                                   wording,
                                   self.client(environ) if s.signup_record_client_ip else None)
        try:
            with self.write_lock:
                self.purge()
                claimed = signup.request(self.store(), ask, interval=s.signup_mail_interval,
                                         now=time.time())
        except StoreError:
            return busy(s, form.language)
        if claimed is None:  # one went out within the interval: same answer, no mail
            return self.sent_page(form.language)
        expires = int(time.time() + s.signup_token_lifetime)
        token = self.signer.sign("confirm", claimed.consent_id, claimed.subscriber_id, expires)
        values = {"confirm_url": f"{self.base_url}/confirm/{token}",
                  "lists": ", ".join(form.lists)}
        if not self.mail("confirm", claimed.language, claimed.subscriber_id, claimed.email,
                         claimed.name, values):
            with self.write_lock:
                signup.release(self.store(), claimed)
            return message_page(s, 503, N_("Please try again in a few minutes"), N_(
                "The confirmation email could not be sent just now."), form.language)
        log.info("sign-up: confirmation sent to subscriber %d", claimed.subscriber_id)
        return self.sent_page(form.language)

    def sent_page(self, language: str) -> Response:
        return message_page(self.settings, 200, N_("Please check your inbox"), N_(
            "If the address can receive our mail, a message with a confirmation link is on "
            "its way to it (one a day at most). Open it and press the button; until then, "
            "nothing is sent to this address."), language)

    def purge(self) -> None:
        if time.monotonic() - self._last_purge > PURGE_EVERY:
            self._last_purge = time.monotonic()
            forgotten = signup.purge_pending(self.store(), self.settings.signup_token_lifetime
                                             + 86400)
            if forgotten:
                log.info("forgot %d sign-up(s) never confirmed", forgotten)

    # -- the confirmation link --------------------------------------------------------

    def checked(self, token: str) -> tuple[int, int] | Response:
        values = self.signer.verify("confirm", token, 3)
        if values is None or not all(v.isdigit() for v in values):
            return message_page(self.settings, 400, N_("This link does not work"), N_(
                "It may have been cut short or changed on its way here. Copy the whole link "
                "from the email."))
        if int(values[2]) < time.time():
            return message_page(self.settings, 410, N_("This link has expired"), N_(
                "Nothing was changed. To subscribe, fill in the sign-up form again."))
        return int(values[0]), int(values[1])

    def confirm_page(self, token: str) -> Response:
        """GET: the page with the button; changes nothing."""
        found = self.checked(token)
        if isinstance(found, Response):
            return found
        record = consent.find(self.store().connection, found[0])
        subscriber = self.store().get_by_id(found[1])
        if record is None or subscriber is None or record[0] != found[1]:
            return gone(self.settings)
        return html_page(200, pages().get_template("confirm-signup.html").render(
            address=subscriber.email, lists=record[1].lists,
            **page_words(self.settings, subscriber.fields.get("language"))),
            policy=PAGE_POLICY)

    def confirm(self, token: str) -> Response:
        """POST: the button. Subscribes, once; an old link never undoes a later change."""
        found = self.checked(token)
        if isinstance(found, Response):
            return found
        try:
            with self.write_lock:
                done = signup.confirm(self.store(), found[1], found[0])
        except StoreError:
            return busy(self.settings)
        if done is None:
            return gone(self.settings)
        preferences = self.signer.preferences_token(done.subscriber_id)
        if done.first:
            log.info("sign-up: subscriber %d confirmed %s", done.subscriber_id,
                     ", ".join(done.lists))
            if self.settings.signup_welcome:
                self.mail("welcome", done.language, done.subscriber_id, done.email, done.name,
                          {"lists": ", ".join(done.lists),
                           "preferences_url": f"{self.base_url}/preferences/{preferences}"})
        return html_page(200, pages().get_template("subscribed.html").render(
            address=done.email, lists=done.lists, first=done.first,
            preferences_token=preferences, **page_words(self.settings, done.language)),
            policy=PAGE_POLICY)

    # -- mail ---------------------------------------------------------------------------

    def mail(self, kind: str, language: str, subscriber_id: int, email: str, name: str,
             values: dict[str, str]) -> bool:
        """Send one notice; False if it did not leave (the transport failed or deferred)."""
        transport = getattr(self._local, "transport", None)
        try:
            if self._notices is None:
                self._notices = Notices(self.settings)
            message = self._notices.get(kind, language).personalise(
                Recipient(subscriber_id, email, name), values)
            if transport is None:
                transport = self._local.transport = self.transport()
            result = transport.send([message])[0]
        except NewsletterError as exc:
            log.error("the %s email to subscriber %d could not be sent: %s", kind,
                      subscriber_id, exc)
            if transport is not None:
                transport.close()
            return False
        if result.status is Status.DEFERRED:
            log.warning("the %s email to subscriber %d was deferred: %s", kind, subscriber_id,
                        result.reply[:200])
            return False
        if result.status is not Status.SENT:
            log.warning("the %s email to subscriber %d: %s (%s)", kind, subscriber_id,
                        result.status, result.reply[:200])
        return True

    def transport(self) -> Transport:
        return open_transport(self.settings.transport, self.settings)


def gone(settings: Settings) -> Response:
    return message_page(settings, 404, N_("This sign-up is no longer known"), N_(
        "Nothing was changed. To subscribe, fill in the sign-up form again."))


def busy(settings: Settings, language: str | None = None) -> Response:
    response = message_page(settings, 503, N_("Please try again in a minute"), N_(
        "The subscriber database is busy. Nothing was changed yet."), language)
    response.headers.append(("Retry-After", "60"))
    return response
