"""Signed tokens: links, form tokens, stable Message-IDs and return paths that nobody can
forge or guess.

A token binds its values (a subscriber id and a list name, a sign-up and its expiry...)
with an HMAC-SHA256 over them and its purpose, keyed by the newsletter's secret
(NEWSLETTER_SECRET, or a random key generated once and kept beside the database with mode
0600). Without the key, no valid token can be made for another subscriber or purpose, so
links cannot be enumerated. A delivery token (the `TOKEN` of a `bounces+TOKEN@domain`
return path) binds a send and a subscriber the same way, so that a bounce proves which
delivery it is about. The same key makes the keyed hash that an erased address leaves
behind: it recognises the address again without holding it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from ..config import Settings
from ..errors import ConfigError

SECRET_FILE = ".newsletter-secret"
MAC_BYTES = 16  # 128 bits: far beyond guessing over HTTP
DELIVERY_MAC_CHARS = 13  # 65 bits in base32: short enough for an address's local part
_DELIVERY_TOKEN = re.compile(r"([0-9]{1,12})\.([0-9]{1,12})\.([a-z2-7]{13})")
TEST_SUBSCRIBER_ID = 0  # test sends carry a working token that unsubscribes nobody


@dataclass(frozen=True)
class DeliveryToken:
    """The delivery a return path or a provider's metadata names: one subscriber of a send."""

    send_id: int
    subscriber_id: int


@dataclass(frozen=True)
class UnsubscribeToken:
    subscriber_id: int
    list_name: str

    @property
    def is_test(self) -> bool:
        return self.subscriber_id == TEST_SUBSCRIBER_ID


def load_secret(env: dict[str, str], folder: Path) -> bytes:
    """The signing key: NEWSLETTER_SECRET, else the key file in `folder` (created once)."""
    if env.get("NEWSLETTER_SECRET"):
        secret = env["NEWSLETTER_SECRET"].encode("utf-8")
        if len(secret) < 16:
            raise ConfigError("NEWSLETTER_SECRET is too short: use at least 16 characters "
                              "(e.g. the output of: python3 -c 'import secrets; "
                              "print(secrets.token_urlsafe(32))')")
        return secret
    path = folder / SECRET_FILE
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    folder.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32).encode("ascii")
    # Written in full under a temporary name, then linked into place: another process
    # never reads a half-written (empty) key, and the first one to link wins.
    temporary = folder / f"{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(key + b"\n")
        os.link(temporary, path)
    except FileExistsError:  # another process created it first: use theirs
        return _read_secret(path)
    finally:
        temporary.unlink(missing_ok=True)
    return key


def signer_for(settings: Settings) -> Signer:
    """The token signer, its key from NEWSLETTER_SECRET or the file beside the database."""
    return Signer(load_secret(settings.env, settings.database_path.parent))


def _read_secret(path: Path) -> bytes:
    secret = path.read_bytes().strip()
    if len(secret) < 16:
        raise ConfigError(f"{path}: the secret is empty or too short; delete the file to "
                          "generate a new one (links already sent will stop working)")
    return secret


class Signer:
    """Makes and checks tokens with one secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, payload: bytes) -> bytes:
        return hmac.digest(self._secret, payload, "sha256")[:MAC_BYTES]  # one C call

    def sign(self, purpose: str, *values: object) -> str:
        """A token carrying `values` (no `:` in any but the last) for one purpose."""
        payload = ":".join(str(v) for v in values).encode()
        return f"{_b64(payload)}.{_b64(self._mac(purpose.encode() + b':' + payload))}"

    def verify(self, purpose: str, token: str, parts: int) -> list[str] | None:
        """The `parts` values of a token made by `sign(purpose, ...)`, else None."""
        encoded_payload, _, encoded_mac = token.partition(".")
        try:
            payload, mac = _unb64(encoded_payload), _unb64(encoded_mac)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(mac, self._mac(purpose.encode() + b":" + payload)):
            return None
        values = payload.decode("utf-8", "replace").split(":", parts - 1)
        return values if len(values) == parts else None

    def unsubscribe_token(self, subscriber_id: int, list_name: str) -> str:
        return self.sign("unsubscribe", subscriber_id, list_name)

    def verify_unsubscribe(self, token: str) -> UnsubscribeToken | None:
        """The token's subscriber and list, or None if it was not made with this secret."""
        values = self.verify("unsubscribe", token, 2)
        if values is None or not values[0].isdigit() or not values[1]:
            return None
        return UnsubscribeToken(int(values[0]), values[1])

    def preferences_token(self, subscriber_id: int) -> str:
        return self.sign("preferences", subscriber_id)

    def verify_preferences(self, token: str) -> int | None:
        """The subscriber of a preferences link (TEST_SUBSCRIBER_ID for a test's)."""
        values = self.verify("preferences", token, 1)
        return int(values[0]) if values and values[0].isdigit() else None

    def subkey(self, purpose: str) -> bytes:
        """A key of its own for another library's signatures (ALTCHA's challenges)."""
        return hmac.digest(self._secret, b"key:" + purpose.encode(), "sha256")

    def address_hash(self, key: str) -> str:
        """The keyed hash an erased address leaves: no one without the secret can test an
        address against it, as they could against a plain SHA-256."""
        return hmac.digest(self._secret, b"address:" + key.encode(), "sha256").hex()

    def delivery_token(self, send_id: int, subscriber_id: int) -> str:
        """`SEND.SUBSCRIBER.MAC`: lower-case letters, digits and dots only, so that it
        survives a mail server that changes the case of an address's local part."""
        mac = base64.b32encode(self._mac(f"return-path:{send_id}:{subscriber_id}".encode()))
        return f"{send_id}.{subscriber_id}.{mac.decode().lower()[:DELIVERY_MAC_CHARS]}"

    def verify_delivery(self, token: str) -> DeliveryToken | None:
        """The send and subscriber of a token made with this secret, else None."""
        match = _DELIVERY_TOKEN.fullmatch(token.strip().lower())
        if match is None:
            return None
        send_id, subscriber_id = int(match[1]), int(match[2])
        if not hmac.compare_digest(match[3], self.delivery_token(send_id, subscriber_id)
                                   .rpartition(".")[2]):
            return None
        return DeliveryToken(send_id, subscriber_id)

    def message_key(self, *parts: object) -> str:
        """A short opaque key for Message-IDs: stable for the same parts, reveals nothing."""
        payload = ":".join(str(p) for p in parts).encode()
        return base64.b32encode(self._mac(b"message-id:" + payload)[:10]).decode().lower()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """Decode, accepting only the one spelling `_b64` makes (no stray or padding bits)."""
    if not text or len(text) > 512:
        raise ValueError("bad length")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not canonical")
    return data
