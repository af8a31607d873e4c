"""The sign-up form as our pages and other sites show it, in the visitor's language.

`newsletter form` prints the snippet another site pastes; `/subscribe` renders the same
template filled in; both show the consent wording that is then kept with the consent.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..audience.tokens import Signer
from ..compose.i18n import N_
from ..config import Settings
from .archive import pages
from .http import page_words

EMBED = "embed"  # the form token of `newsletter form`'s snippet
# The default consent_text of newsletter.toml (config.DEFAULT_CONSENT): shown, and kept with
# each consent, in the language of the page, as the person read it.
CONSENT = N_("I would like to receive this newsletter by email. I can unsubscribe at any time "
             "with the link at the bottom of every email.")


@dataclass
class Form:
    """What a person typed, to show it again."""

    email: str = ""
    name: str = ""
    lists: tuple[str, ...] = ()
    language: str = ""


def form_context(settings: Settings, action: str, token: str, form: Form,
                 challenge: str = "") -> dict[str, object]:
    """What signup-form.html shows, in the language chosen on it (else the newsletter's)."""
    return {"action": action, "form_token": token, "values": form, "challenge": challenge,
            "lists": settings.signup_lists, "languages": settings.signup_languages,
            "consent_text": consent_wording(settings, form.language),
            **page_words(settings, form.language or None)}


def consent_wording(settings: Settings, language: str | None) -> str:
    """The wording above the button, as the page in `language` shows it: the default one
    translated, one of newsletter.toml as written."""
    words = page_words(settings, language)["translations"]
    return words.gettext(settings.signup_consent_text)  # type: ignore[attr-defined]


def snippet(settings: Settings, signer: Signer) -> str:
    """The form to paste into another site's page (`newsletter form`): it posts to
    <base_url>/subscribe with a form token that does not expire."""
    return pages().get_template("signup-form.html").render(form_context(
        settings, f"{settings.base_url.rstrip('/')}/subscribe", signer.sign("form", EMBED),
        Form()))


def script() -> bytes:
    return (pages().loader.get_source(pages(), "altcha.js")[0]  # type: ignore[union-attr]
            .encode("utf-8"))
