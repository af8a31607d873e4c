"""Which edition each recipient gets, and the message factory of each edition.

Every edition is composed and prepared once; per recipient, choosing costs one dictionary
lookup of the subscriber's `language` field (the fallback order is worked out once per
distinct value): `fr-BE` reads the `fr-BE` edition, else `fr`, else the languages
`language_fallbacks` names for them, else the main edition.
"""

from __future__ import annotations

from collections.abc import Callable

from ..compose.i18n import candidates
from ..compose.render import ComposedEmail
from ..config import Settings
from ..envelope import Personalised, Recipient
from .message import MessageFactory

LANGUAGE_FIELD = "language"  # the subscriber's field: a CSV column, Mailchimp's "Language"


class Editions:
    """The message factories of one issue's editions, by language."""

    def __init__(self, composed: ComposedEmail, settings: Settings,
                 factory: Callable[[ComposedEmail], MessageFactory]) -> None:
        self.main = composed.language
        self.factories = {edition.language: factory(edition)
                          for edition in composed.every_edition}
        self._by_lower = {language.lower(): language for language in self.factories}
        self._fallbacks = settings.fallback_map
        self._chosen: dict[str, str] = {}

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.factories)

    def choose(self, recipient: Recipient) -> str:
        """The language of the edition `recipient` reads best."""
        wanted = recipient.fields.get(LANGUAGE_FIELD, "")
        chosen = self._chosen.get(wanted)
        if chosen is None:
            chosen = next((self._by_lower[tag.lower()]
                           for tag in candidates(wanted, self._fallbacks)
                           if tag.lower() in self._by_lower), self.main)
            self._chosen[wanted] = chosen
        return chosen

    def personalise(self, recipient: Recipient, edition: str | None = None) -> Personalised:
        """`recipient`'s message in `edition` (as claimed), or in the one they read best."""
        factory = self.factories.get(edition or "") or self.factories[self.choose(recipient)]
        return factory.personalise(recipient)
