"""Transports by URL scheme: `outbox://DIR`, `smtp://`, `smtps://`, `memory://`, and the
mail-service APIs. `open_transport(url, settings)` returns a new, unconnected transport."""

from __future__ import annotations

import importlib
from urllib.parse import urlsplit

from ..config import Settings
from ..errors import ConfigError
from .base import Limits, Result, Status, Transport

MODULES = {
    "outbox": "outbox",
    "memory": "memory",
    "smtp": "smtp",
    "smtps": "smtp",
    "postmark": "postmark",
    "sendgrid": "sendgrid",
    "mailgun": "mailgun",
    "ses": "ses",
}

__all__ = ["Limits", "Result", "Status", "Transport", "open_transport", "transport_class"]


def transport_class(url: str) -> type[Transport]:
    scheme = urlsplit(url).scheme.lower()
    module_name = MODULES.get(scheme)
    if module_name is None:
        raise ConfigError(f"transport {redact_url(url)!r}: unknown scheme {scheme!r}; expected "
                          + ", ".join(f"{s}://" for s in MODULES))
    module = importlib.import_module(f"{__name__}.{module_name}")
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, Transport) and \
                scheme in getattr(value, "schemes", ()):
            return value
    raise ConfigError(f"transport scheme {scheme!r} is not available")  # pragma: no cover


def open_transport(url: str, settings: Settings) -> Transport:
    """A transport for `url`; connecting happens on the first send."""
    return transport_class(url).from_url(urlsplit(url), settings)


def redact_url(url: str) -> str:
    """`url` without any password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    user = f"{parts.username}:***@" if parts.username else "***@"
    port = f":{parts.port}" if parts.port else ""
    return parts._replace(netloc=f"{user}{host}{port}").geturl()
