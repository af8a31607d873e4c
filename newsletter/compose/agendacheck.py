"""`check`'s rules for the agenda as readers' calendars will hold it."""

from __future__ import annotations

import datetime as dt

from ..errors import Problem
from .ics import calendar_key
from .issue import Issue


def send_day(issue: Issue) -> tuple[dt.date, str]:
    """The day the issue goes out, and how a message names it: `send_at`, else its date."""
    if issue.send_at is not None:
        return issue.send_at.date(), f"its send time {issue.send_at.isoformat()}"
    return issue.date, f"the issue date {issue.date.isoformat()}"


def check_agenda(issue: Issue, shown: str) -> list[Problem]:
    """Entries over before the send, entries without a place, two entries for one event."""
    findings: list[Problem] = []
    day, named = send_day(issue)
    keys: dict[str, int] = {}
    for index, entry in enumerate(issue.agenda):
        last = entry.end or entry.start
        if last < day:
            findings.append(Problem(shown, entry.line, f"agenda[{index}].start",
                                    f"event ending {last.isoformat()} is over before {named}: "
                                    "readers cannot go to it any more", "warning"))
        if not entry.place:
            findings.append(Problem(shown, entry.line, f"agenda[{index}].place",
                                    "no place: say where it happens (a city, or 'Online'), for "
                                    "the email and the reader's calendar", "warning"))
        key = calendar_key(entry)
        if key in keys:
            findings.append(Problem(shown, entry.line, f"agenda[{index}]",
                                    f"has the same calendar id {key!r} as agenda[{keys[key]}], "
                                    "so calendars would take one for the other; give one of "
                                    "them an id: of its own"))
        keys.setdefault(key, index)
    return findings
