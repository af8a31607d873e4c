"""DKIM signatures (dkimpy), added last, over the headers receivers check for bulk mail."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..config import Settings
from ..errors import ConfigError

SIGNED_HEADERS = (b"From", b"To", b"Subject", b"Date", b"Message-ID", b"Reply-To", b"List-Id",
                  b"List-Unsubscribe", b"List-Unsubscribe-Post", b"MIME-Version",
                  b"Content-Type")


class DkimSigner:
    """Signs finished messages with one selector and private key."""

    def __init__(self, selector: str, domain: str, key_file: Path, *,
                 unsigned: Sequence[str] = ()) -> None:
        left_out = {name.lower() for name in unsigned}
        self.headers = [h for h in SIGNED_HEADERS if h.decode().lower() not in left_out]
        try:
            self._key = key_file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"dkim.key_file {key_file}: cannot be read ({exc.strerror})") \
                from None
        self.selector, self.domain = selector.encode("ascii"), domain.encode("ascii")

    @classmethod
    def from_settings(cls, settings: Settings, *,
                      unsigned: Sequence[str] = ()) -> DkimSigner | None:
        """A signer when [dkim] selector and key_file are configured, else None. `unsigned`
        names headers the transport's service replaces (a signature over them would break)."""
        if not (settings.dkim_selector and settings.dkim_key_file):
            return None
        return cls(settings.dkim_selector, settings.dkim_domain or settings.sender_domain,
                   settings.path(settings.dkim_key_file), unsigned=unsigned)

    def sign(self, data: bytes) -> bytes:
        import dkim

        try:
            signature = dkim.sign(data, self.selector, self.domain, self._key,
                                  canonicalize=(b"relaxed", b"relaxed"),
                                  include_headers=self.headers, linesep=b"\r\n")
        except dkim.KeyFormatError as exc:
            raise ConfigError(f"dkim.key_file: not a usable private key ({exc})") from None
        return signature + data
