"""Signed tokens: unsubscribe links and stable Message-IDs that nobody can forge or guess.

A token binds a subscriber id to a list name with an HMAC-SHA256 over both, keyed by the
newsletter's secret (NEWSLETTER_SECRET, or a random key generated once and kept beside the
database with mode 0600). Without the key, no valid token can be made for another
subscriber or list, so links cannot be enumerated.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from ..config import Settings
from ..errors import ConfigError

SECRET_FILE = ".newsletter-secret"
MAC_BYTES = 16  # 128 bits: far beyond guessing over HTTP
TEST_SUBSCRIBER_ID = 0  # test sends carry a working token that unsubscribes nobody


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

    def unsubscribe_token(self, subscriber_id: int, list_name: str) -> str:
        payload = f"{subscriber_id}:{list_name}".encode()
        return f"{_b64(payload)}.{_b64(self._mac(b'unsubscribe:' + payload))}"

    def verify_unsubscribe(self, token: str) -> UnsubscribeToken | None:
        """The token's subscriber and list, or None if it was not made with this secret."""
        encoded_payload, _, encoded_mac = token.partition(".")
        try:
            payload, mac = _unb64(encoded_payload), _unb64(encoded_mac)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(mac, self._mac(b"unsubscribe:" + payload)):
            return None
        subscriber, _, list_name = payload.decode("utf-8", "replace").partition(":")
        if not subscriber.isdigit() or not list_name:
            return None
        return UnsubscribeToken(int(subscriber), list_name)

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
