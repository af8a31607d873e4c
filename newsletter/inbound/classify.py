"""What a status code means for an address: the classification table of the README.

    5.1.x                 hard: the mailbox or domain does not exist -> `bounced` at once
    x.7.x                 blocked: refused by policy or as spam; the sender's reputation,
                          not the address's fault -> recorded, never suppressed
    anything else         soft: full mailbox, temporary failure, unexplained refusal ->
                          `bounced` once soft bounces hit `soft_bounce_limit` of the
                          address's last `soft_bounce_sends` sends
    a spam complaint      complaint -> `complained`, off every list

Enhanced status codes are RFC 3463's `class.subject.detail`. Reports often say only
`5.0.0` and put the precise code in the diagnostic (`smtp; 550 5.1.1 User unknown`): the
more precise one wins.
"""

from __future__ import annotations

import re

from ..states import EventKind

ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)")
BASIC = re.compile(r"(?<!\d)([245])\d\d(?![\d.])")
DIAGNOSTIC_CHARS = 500  # what is kept of a remote server's explanation


def status_code(status: str, diagnostic: str = "") -> str:
    """The most precise enhanced status code in a report's Status and Diagnostic fields.

    `5.0.0` with `550 5.1.1 ...` in the diagnostic is 5.1.1; a diagnostic with only a
    basic SMTP code (`550 No such user`) gives `5.0.0`; nothing at all gives ''.
    """
    found = ENHANCED.search(status)
    detailed = ENHANCED.search(diagnostic)
    if found and detailed and detailed[1] == found[1] and found.group(2, 3) == ("0", "0"):
        found = detailed
    found = found or detailed
    if found:
        return f"{found[1]}.{int(found[2])}.{int(found[3])}"
    basic = BASIC.search(diagnostic) or BASIC.search(status)
    return f"{basic[1]}.0.0" if basic else ""


def kind_of(status: str) -> EventKind:
    """hard, soft or blocked for an enhanced status code ('' is soft: unexplained)."""
    found = ENHANCED.fullmatch(status)
    if found is None:
        return EventKind.SOFT
    cls, subject = found[1], found[2]
    if subject == "7":
        return EventKind.BLOCKED
    if cls == "5" and subject == "1":
        return EventKind.HARD
    return EventKind.SOFT


def diagnostic_text(text: str) -> str:
    """A remote server's explanation as one line, without its `smtp;` type, cut short."""
    text = " ".join(str(text).split())
    kind, _, rest = text.partition(";")
    if rest and kind.strip().lower() in ("smtp", "x-unix", "x-postfix", "x-local"):
        text = rest.strip()
    return text[:DIAGNOSTIC_CHARS]
