"""What a transport is handed: one recipient's message, and the issue's shared content.

A leaf module, like httpx's transport base: it imports nothing of the project, so that a
transport never loads the composer, the ledger or the subscriber store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

# The name under which mail APIs carry a delivery's token (Postmark Metadata, SendGrid
# custom_args, Mailgun v: variables) and give it back in their webhooks.
TOKEN_FIELD = "nl_delivery"
# The header that carries it where the message itself is all a service keeps (Amazon SES:
# its notifications return the original headers, not the envelope sender).
TOKEN_HEADER = "X-Newsletter-Delivery"


@dataclass(frozen=True)
class Recipient:
    """Who gets one message: the subscriber, and the list the message is sent for."""

    subscriber_id: int
    email: str
    name: str = ""
    list_name: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)


class MessageSource(Protocol):
    """The content every message of one issue shares, as the message step prepared it."""

    @property
    def subject(self) -> str: ...

    @property
    def html_template(self) -> str:
        """The HTML with `%%placeholders%%` for per-recipient values (HTML-escape them)."""

    @property
    def text_template(self) -> str: ...

    @property
    def common_headers(self) -> dict[str, str]:
        """The headers every message carries, by name, as they appear on the wire."""

    @property
    def sender(self) -> str:
        """The From setting, `Name <address>`."""

    @property
    def reply_to(self) -> str | None: ...

    def wire_bytes(self, message: Personalised) -> bytes: ...


class Personalised:
    """One recipient's message. The wire bytes (`data`) are built on first use: transports
    that send one template with per-recipient values (mail APIs) never pay for them."""

    __slots__ = ("recipient", "message_id", "values", "headers", "source", "token",
                 "return_path", "_data")

    def __init__(self, recipient: Recipient, message_id: str, values: dict[str, str],
                 headers: dict[str, str], source: MessageSource, *, token: str = "",
                 return_path: str = "") -> None:
        self.recipient = recipient
        self.message_id = message_id
        self.values = values  # placeholder -> plain value
        self.headers = headers  # To, Message-ID, List-Unsubscribe, already encoded
        self.source = source
        # The signed name of this delivery, which reports about it carry back: in the
        # envelope sender (`bounces+TOKEN@domain`, SMTP) or in a mail API's metadata.
        # Empty for test sends and when no return path is set.
        self.token = token
        self.return_path = return_path  # the SMTP envelope sender; empty: the From address
        self._data: bytes | None = None

    @property
    def needs_smtputf8(self) -> bool:
        """A non-ASCII local part: only a server offering SMTPUTF8 (RFC 6531) takes it."""
        return not self.recipient.email.isascii()

    @property
    def data(self) -> bytes:
        """The complete message, CRLF lines, DKIM-signed when configured."""
        if self._data is None:
            self._data = self.source.wire_bytes(self)
        return self._data
