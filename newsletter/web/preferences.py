"""The preferences page, `/preferences/TOKEN`, linked from the footer of every email.

The token names the subscriber (signed, never expires, like the unsubscribe links in old
mail). GET shows the lists (the public ones and those they are on), the language and an
"unsubscribe from everything" button; only a POST changes anything.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..audience import preferences
from ..audience.store import Subscriber, SubscriberStore
from ..audience.tokens import Signer
from ..compose.i18n import N_
from ..config import Settings
from ..errors import StoreError
from ..states import SubscriberStatus
from .archive import pages
from .http import PAGE_POLICY, Response, html_page, message_page, page_words, read_form, refuse
from .signup import busy
from .signupform import consent_wording

log = logging.getLogger(__name__)
PREFIX = "/preferences/"


class PreferencePages:
    def __init__(self, settings: Settings, signer: Signer, store: Callable[[], SubscriberStore],
                 write_lock: threading.Lock) -> None:
        self.settings, self.signer, self.store, self.write_lock = (settings, signer, store,
                                                                   write_lock)

    def route(self, method: str, path: str, environ: dict[str, object]) -> Response | None:
        if not path.startswith(PREFIX):
            return None
        if refused := refuse(method, "GET", "HEAD", "POST"):
            return refused
        token = path[len(PREFIX):]
        if not token:  # the link in the web version and in `build`: it belongs to nobody
            return message_page(self.settings, 200, N_("Your preferences"), N_(
                "To change what you receive, use the preferences link at the bottom of an "
                "email you received: it is made for your address."))
        subscriber_id = self.signer.verify_preferences(token)
        if subscriber_id is None:
            return message_page(self.settings, 400, N_("This link does not work"), N_(
                "It may have been cut short or changed on its way here. Copy the whole link "
                "from the email."))
        if subscriber_id == 0:  # a test send's link
            return self.page(None, {}, test=True)
        found = self.store().get_by_id(subscriber_id)
        if found is None:
            return message_page(self.settings, 404, N_("Nothing held about this address"), N_(
                "We hold nothing about the address of this link any more."))
        if method != "POST":
            return self.page(found, self.memberships(found))
        form = read_form(environ)
        if form is None:
            return message_page(self.settings, 413, N_("Nothing was changed"), N_(
                "The request is too large."), language_of(found))
        return self.change(found, form)

    def memberships(self, found: Subscriber) -> dict[str, bool]:
        """Each list to show, and whether they receive it: public lists and their own."""
        current = {m.list_name: m.status == "active" for m in self.store().memberships(found.id)}
        return {name: current.get(name, False)
                for name in sorted(set(self.settings.signup_lists) | set(current))}

    def change(self, found: Subscriber, form: dict[str, str]) -> Response:
        try:
            with self.write_lock:
                if form.get("action") == "unsubscribe":
                    self.store().unsubscribe(found.email, reason="preferences page")
                    log.info("subscriber %d unsubscribed from everything on the preferences "
                             "page", found.id)
                    return message_page(self.settings, 200, N_("You are unsubscribed"), N_(
                        "This address will receive nothing more from %(name)s."),
                        language_of(found), name=self.settings.name)
                shown = self.memberships(found)
                wanted = {name for name in shown if form.get(f"list:{name}")}
                language = form.get("language")
                joined = preferences.save(
                    self.store(), found.id, list(shown), wanted,
                    language=language if language in self.settings.signup_languages else None,
                    consent_text=consent_wording(self.settings, language_of(found)))
                found = self.store().get_by_id(found.id) or found
        except StoreError:
            return busy(self.settings, language_of(found))
        log.info("subscriber %d saved their preferences%s", found.id,
                 f" (joined {', '.join(joined)})" if joined else "")
        return self.page(found, self.memberships(found), note=N_("Saved."))

    def page(self, found: Subscriber | None, lists: dict[str, bool], *, test: bool = False,
             note: str = "") -> Response:
        """The page in the subscriber's language if the pages speak it; `note` marked N_()."""
        s = self.settings
        words = page_words(s, language_of(found))
        translate = words["translations"].gettext  # type: ignore[attr-defined]
        return html_page(200, pages().get_template("preferences.html").render(
            test=test, note=translate(note) if note else "",
            address=found.email if found else translate(N_("(test)")),
            name=found.name if found else "",
            active=test or (found is not None and found.status == SubscriberStatus.ACTIVE),
            lists=sorted(lists.items()), languages=s.signup_languages,
            language=found.fields.get("language", "") if found else "",
            consent_text=consent_wording(s, language_of(found)), **words), policy=PAGE_POLICY)


def language_of(found: Subscriber | None) -> str | None:
    """The language a subscriber chose, if any (their `language` field)."""
    return found.fields.get("language") if found else None
