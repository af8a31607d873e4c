"""The optional time of an agenda entry: `time: 09:30-17:00` with `timezone: Europe/Riga`.

Dates stay dates (all-day events in calendars); a time is a separate field so that every
entry keeps comparing by day, and it names an IANA zone rather than an offset, so that a
calendar shows the right hour on both sides of a daylight-saving change.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .i18n import N_
from .schema import Reader, shorten
from .yamlsource import Node

_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?:\s*[-\u2013]\s*(\d{1,2}):(\d{2}))?$")
EXAMPLE = "such as 09:30 or 09:30-17:00"


def agenda_times(r: Reader, node: Node, start: dt.date | None, end: dt.date | None
                 ) -> tuple[tuple[dt.time, dt.time | None] | None, str | None]:
    """The entry's (start time, end time) and zone, or (None, None) for an all-day entry."""
    f = node.value.get
    time_node, zone_node = f("time"), f("timezone")
    text = r.one_line(time_node, max_length=40)
    zone = r.one_line(zone_node, max_length=64)
    if zone is not None and not _known_zone(zone):
        r.error(zone_node, zone_node.path, "expected a time zone name such as Europe/Paris "
                                           f"(IANA), got {shorten(zone)}")
        zone = None
        if text is None:
            return None, None
    if text is None:
        if zone is not None:
            r.error(zone_node, zone_node.path, "a time zone needs a time: add time: "
                                               f"({EXAMPLE}) or remove timezone:")
        return None, None
    times = _parse(text)
    if times is None:
        r.error(time_node, time_node.path, f"expected a time {EXAMPLE}, got {shorten(text)}")
        return None, None
    if zone is None:
        if zone_node is None:
            r.error(time_node, time_node.path, "a time needs its time zone: add timezone: "
                                               "with a name such as Europe/Paris")
        return None, None
    first, last = times
    if last is not None and (end is None or end == start) and last <= first:
        r.error(time_node, time_node.path, f"expected an end time after the start time "
                                           f"{first:%H:%M}, got {last:%H:%M}")
        return None, None
    return times, zone


def _parse(text: str) -> tuple[dt.time, dt.time | None] | None:
    match = _TIME.match(text.strip())
    if not match:
        return None
    try:
        first = dt.time(int(match[1]), int(match[2]))
        last = dt.time(int(match[3]), int(match[4])) if match[3] else None
    except ValueError:  # 25:00, 09:75
        return None
    return first, last


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def zone_label(name: str, translate: Callable[[str], str] = str) -> str:
    """`Europe/Riga` -> `Riga time` (`heure de Riga`): how an email names a time's zone."""
    return translate(N_("%(place)s time")) % {"place": name.rsplit("/", 1)[-1].replace("_", " ")}


def time_range(times: tuple[dt.time, dt.time | None] | None, zone: str | None,
               translate: Callable[[str], str] = str) -> str:
    """`09:30–17:00 Riga time`, as the email and the text part show an entry's time."""
    if times is None or zone is None:
        return ""
    first, last = times
    span = f"{first:%H:%M}" + (f"\u2013{last:%H:%M}" if last else "")
    return f"{span} {zone_label(zone, translate)}"
