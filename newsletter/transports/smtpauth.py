"""Logging in to an SMTP server, and the forms in which its replies may echo the password.

smtplib encodes AUTH as ASCII, so a password with any other character fails inside it
with a UnicodeEncodeError. RFC 4616 defines AUTH PLAIN as UTF-8: such a password goes that
way, and a server that does not offer PLAIN is refused with a message that says why.
"""

from __future__ import annotations

import base64
import re
import smtplib

from ..errors import TransportError

PASSWORD_VARIABLE = "NEWSLETTER_SMTP_PASSWORD"
NOT_ASCII = re.compile(r"[^\x00-\x7f]")


def login(smtp: smtplib.SMTP, user: str, password: str, where: str) -> None:
    """AUTH as smtplib does it, or AUTH PLAIN in UTF-8 for a non-ASCII user or password."""
    if not NOT_ASCII.search(user + password):
        smtp.login(user, password)
        return
    offered = (smtp.esmtp_features.get("auth") or "").upper().split()
    if not offered:
        raise smtplib.SMTPNotSupportedError("AUTH is not offered")
    if "PLAIN" not in offered:
        raise TransportError(f"{where} offers AUTH {' '.join(offered)} but not PLAIN, the one "
                             "way to send a password that is not ASCII (as UTF-8, RFC 4616); "
                             f"{PASSWORD_VARIABLE} needs an ASCII password for this server",
                             provider=where)
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
    code, reply = smtp.docmd("AUTH", f"PLAIN {token}")
    if code == 334:  # the server wants the credentials after an empty challenge
        code, reply = smtp.docmd(token)
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, reply)


def secret_forms(user: str, password: str) -> list[str]:
    """The password as a server might echo it: as typed, and as AUTH LOGIN and AUTH PLAIN
    sent it (base64, with and without padding), longest first."""
    if not password:
        return []
    forms = {password}
    for raw in (password, f"\0{user}\0{password}", f"{user}\0{user}\0{password}"):
        for encoding in ("utf-8", "latin-1"):
            try:
                encoded = base64.b64encode(raw.encode(encoding)).decode("ascii")
            except UnicodeEncodeError:
                continue
            forms.update((encoded, encoded.rstrip("=")))
    return sorted(forms, key=len, reverse=True)
