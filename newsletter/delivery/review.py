"""Test sends: the real message, marked as a test, to reviewers; recorded in no ledger."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import getaddresses

from ..audience.tokens import TEST_SUBSCRIBER_ID, signer_for
from ..compose.render import ComposedEmail
from ..config import Settings
from ..envelope import Recipient
from ..errors import ConfigError
from ..transports import Result, Status, Transport
from .message import TEST_LIST, MessageFactory, address_header, check_header_value
from .signing import DkimSigner


@dataclass(frozen=True)
class Delivery:
    recipient: Recipient
    result: Result
    edition: str = ""  # the language of the copy, when the issue has several editions


def reviewers(settings: Settings, addresses: Sequence[str]) -> list[Recipient]:
    """Recipients from --to (or the configured reviewers), `Name <address>` or bare.

    Each entry must be one address on one line, checked before anything is sent: a line
    break would otherwise let one entry smuggle in another recipient (`Eve\\r\\nBcc: ...`).
    """
    source = "--to" if addresses else "newsletter.toml reviewers"
    chosen = list(addresses) or list(settings.reviewers)
    if not chosen:
        raise ConfigError("no reviewers: give --to ADDRESS or set reviewers = [...] in the "
                          "[send] section of newsletter.toml")
    recipients = []
    for entry in chosen:
        check_header_value(entry, source)
        parsed = getaddresses([entry])
        if len(parsed) != 1 or "@" not in parsed[0][1]:
            raise ConfigError(f"{source} {entry!r}: expected one email address, as in "
                              "'Name <name@example.org>' or name@example.org")
        name, address = parsed[0]
        address_header(name, address, f"{source} {entry!r}")  # non-ASCII address, etc.
        recipients.append(Recipient(TEST_SUBSCRIBER_ID, address, name, TEST_LIST))
    return recipients


def send_test(composed: ComposedEmail, settings: Settings, transport: Transport,
              recipients: Sequence[Recipient],
              report: Callable[[Delivery], None] = lambda d: None) -> list[Delivery]:
    """Send one test message per reviewer and edition over `transport`; nothing is recorded
    as sent. Reviewers get every edition: a translation is reviewed like the rest."""
    if not composed.test:
        raise ValueError("send_test needs an issue composed with test=True")
    signer = signer_for(settings)
    dkim = DkimSigner.from_settings(settings, unsigned=transport.rewritten_headers)
    deliveries = []
    with transport:
        for edition in composed.every_edition:
            factory = MessageFactory(edition, settings, signer, send_key="test", dkim=dkim)
            for recipient in recipients:
                result = transport.send([factory.personalise(recipient)])[0]
                delivery = Delivery(recipient, result, edition.language if composed.editions
                                    else "")
                report(delivery)
                deliveries.append(delivery)
    return deliveries


def all_sent(deliveries: Sequence[Delivery]) -> bool:
    return all(d.result.status is Status.SENT for d in deliveries)
