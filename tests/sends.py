"""Sends recorded the way `newsletter send` records them, for the tests of what comes back."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from newsletter.audience.store import NewRow, SubscriberStore, address_key
from newsletter.audience.tokens import Signer, signer_for
from newsletter.config import Settings, load_settings
from newsletter.database import open_database
from newsletter.delivery.journal import Verdict
from newsletter.delivery.ledger import Ledger
from newsletter.states import DeliveryState, SendState

RETURN_PATH = "bounces@news.efus.eu"


@dataclass(frozen=True)
class Sent:
    issue: str
    send_id: int
    subscriber_id: int
    email: str
    message_id: str
    token: str

    @property
    def return_path(self) -> str:
        return f"bounces+{self.token}@news.efus.eu"


def configure(project: Path, **bounces: object) -> Settings:
    """Add a [bounces] section (return_path and whatever is given) to newsletter.toml."""
    values = {"return_path": RETURN_PATH, **bounces}
    lines = ["", "[bounces]"] + [f"{k} = {_toml(v)}" for k, v in values.items()]
    with open(project / "newsletter.toml", "a", encoding="utf-8") as toml:
        toml.write("\n".join(lines) + "\n")
    return settings_of(project)


def settings_of(project: Path) -> Settings:
    return load_settings(project / "newsletter.toml", env={})


def signer(project: Path) -> Signer:
    return signer_for(settings_of(project))


def subscribe(project: Path, *addresses: str, list_name: str = "members") -> None:
    with SubscriberStore(project / "newsletter.db") as store:
        store.merge([NewRow(n, a, address_key(a), a.split("@")[0].title(), {})
                     for n, a in enumerate(addresses, 1)], list_name)


def record_send(project: Path, issue: str, list_name: str = "members") -> dict[str, Sent]:
    """Freeze `issue`'s recipients and record every message as accepted, as a send does."""
    database = project / "newsletter.db"
    tokens = signer(project)
    ledger = Ledger(open_database(database, threads=True), database, issue)
    try:
        start = ledger.start([list_name], "content-hash")
        sent = {}
        while claimed := ledger.claim(10_000):
            ledger.begin([c.delivery_id for c in claimed])
            sent.update(_accept(ledger, tokens, issue, start.send.id, claimed))
        ledger.finish(SendState.COMPLETE)
    finally:
        ledger.close()
    return sent


def _accept(ledger: Ledger, tokens: Signer, issue: str, send_id: int,
            claimed: list) -> dict[str, Sent]:  # type: ignore[type-arg]
    sent = {}
    for item in claimed:
        message_id = f"<{issue}.{secrets.token_hex(8)}@efus.eu>"
        ledger.record(Verdict(item.delivery_id, DeliveryState.SENT, "250 2.0.0 Ok",
                              at=1.0, message_id=message_id))
        sent[item.recipient.email] = Sent(
            issue, send_id, item.recipient.subscriber_id, item.recipient.email,
            message_id, tokens.delivery_token(send_id, item.recipient.subscriber_id))
    return sent


def status_of(project: Path, address: str) -> str:
    with SubscriberStore(project / "newsletter.db") as store:
        found = store.get(address)
        assert found is not None
        return found.status


def original(sent: Sent) -> bytes:
    """The headers and start of the message a send handed over, as a report returns it."""
    return (f"From: Efus Newsletter <newsletter@efus.eu>\r\nTo: <{sent.email}>\r\n"
            f"Subject: Efus Newsletter\r\nMessage-ID: {sent.message_id}\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            "Dear reader,\r\n").encode()


def _toml(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value).lower() if isinstance(value, bool) else str(value)
