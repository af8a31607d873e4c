"""The small grammars every layer shares: personal-value placeholders, list names, slugs.

A leaf module: it imports nothing of the project, so that a transport or the subscriber
store can use these without loading the composer.
"""

from __future__ import annotations

import re

FIELD_NAME = r"[a-z][a-z0-9_]{0,40}"
PLACEHOLDER = re.compile(f"%%({FIELD_NAME})%%")  # group 1: the field's name
FIELD = re.compile(FIELD_NAME)
LIST_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
RESERVED_SLUGS = {  # paths of `newsletter serve`, which an issue's web version cannot take
    "unsubscribe": "the unsubscribe pages", "resubscribe": "the unsubscribe pages",
    "subscribe": "the sign-up form", "confirm": "the sign-up confirmations",
    "preferences": "the preferences pages", "webhooks": "the mail services' webhooks",
}
# C0 and C1 controls (TAB, CR, LF, NUL, U+0085...) and the Unicode line and paragraph
# separators: what a name or field must not hold, since it ends up in headers and lines.
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# A field may hold plain line breaks (LF: a postal address, a note, Mailchimp's multi-line
# cells): it only ever goes into the bodies, whose encoding turns LF into CRLF, never a header.
FIELD_CONTROL_CHARACTERS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """`text` quoted with its control characters escaped (`'Ana\\nLopez'`), for a terminal."""
    return repr(text)


def placeholder(name: str) -> str:
    """`%%name%%`: what composing leaves for a value that differs per recipient."""
    return f"%%{name}%%"
