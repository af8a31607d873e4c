"""The agenda as calendar data (RFC 5545): one `.ics` per entry and `agenda.ics` per issue.

Each event's UID comes from its calendar key (the project and event, or the entry's `id:`)
and the newsletter's host, never from its date or place: a corrected entry, in this issue
or the next, replaces the event a reader added instead of adding a second one. DTSTAMP and
LAST-MODIFIED are the issue file's modification time, so a rebuild of an unchanged file
gives the same bytes and a corrected file a newer revision.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

import icalendar

from ..config import Settings
from .i18n import N_
from .issue import AgendaEntry, Issue, Link

AGENDA_FILE = "agenda.ics"
FOLDER = "calendar"
CONTENT_TYPE = "text/calendar; charset=utf-8"
GOOGLE_CALENDAR = "https://calendar.google.com/calendar/render"
KEY_CHARS = 48
_NOT_KEY = re.compile(r"[^a-z0-9]+")


def calendar_key(entry: AgendaEntry) -> str:
    """The entry's file name and UID stem: `efus-general-assembly-meeting`, or its `id:`."""
    if entry.id:
        return entry.id
    text = unicodedata.normalize("NFKD", f"{entry.project} {entry.event}")
    key = _NOT_KEY.sub("-", text.encode("ascii", "ignore").decode().lower()).strip("-")
    if len(key) > KEY_CHARS:  # cut at a word, for URLs that fit a text line
        key = key[: KEY_CHARS + 1].rsplit("-", 1)[0]
    return key or "event"


def entry_file(entry: AgendaEntry) -> str:
    """Where an entry's `.ics` lives, relative to the issue's web version."""
    return f"{FOLDER}/{calendar_key(entry)}.ics"


@dataclass(frozen=True)
class CalendarLinks:
    """What templates see as `calendar`: the absolute address of each `.ics` of the issue."""

    web_url: str  # the issue's web version, ending in '/'
    translate: Callable[[str], str] = str  # the links' labels in the edition's language

    def url(self, entry: AgendaEntry) -> str:
        return self.web_url + quote(entry_file(entry))

    def link(self, entry: AgendaEntry) -> Link:
        return Link(self.url(entry), self.translate(N_("Add to calendar")))

    def google(self, entry: AgendaEntry) -> Link:
        """Google Calendar's "add event" page, filled in: for readers who live in Gmail.

        The parameters are those of Google's event publisher guide: `text`, `dates` (whole
        days with the end day exclusive, or UTC times ending in Z), `location`, `details`.
        """
        start, end = event_span(entry)
        if isinstance(start, dt.datetime):
            first = start.astimezone(dt.UTC)
            last = end.astimezone(dt.UTC) if isinstance(end, dt.datetime) else first
            dates = f"{first:%Y%m%dT%H%M%SZ}/{last:%Y%m%dT%H%M%SZ}"
        else:
            dates = f"{start:%Y%m%d}/{end:%Y%m%d}"
        query = {"action": "TEMPLATE", "text": f"{entry.project}: {entry.event}",
                 "dates": dates, "details": self.web_url}
        if entry.place:
            query["location"] = entry.place
        return Link(GOOGLE_CALENDAR + "?" + urlencode(query, safe="/:", quote_via=quote),
                    self.translate(N_("Google Calendar")))

    @property
    def agenda(self) -> Link:
        return Link(self.web_url + AGENDA_FILE,
                    self.translate(N_("The whole agenda for your calendar")))


def calendar_files(issue: Issue, settings: Settings, web_url: str) -> dict[str, bytes]:
    """Every `.ics` of the issue by its path under the web version; empty without agenda."""
    if not issue.agenda:
        return {}
    stamp = _revision(issue)
    host = _uid_host(settings.base_url)
    events = [_event(entry, issue, settings, web_url, host, stamp) for entry in issue.agenda]
    name = f"{settings.name} \u2013 {issue.title or issue.subject}"
    files = {AGENDA_FILE: _calendar(settings, events, name)}
    for entry, event in zip(issue.agenda, events, strict=True):
        files[entry_file(entry)] = _calendar(settings, [event], None)
    return files


def _calendar(settings: Settings, events: list[icalendar.Event], name: str | None) -> bytes:
    calendar = icalendar.Calendar()
    calendar.add("prodid", f"-//{settings.name}//newsletter//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    if name:
        calendar.add("x-wr-calname", name)
    for event in events:
        calendar.add_component(event)
    calendar.add_missing_timezones()  # VTIMEZONE for every TZID the events use
    return calendar.to_ical()


def _event(entry: AgendaEntry, issue: Issue, settings: Settings, web_url: str, host: str,
           stamp: dt.datetime) -> icalendar.Event:
    event = icalendar.Event()
    event.add("uid", f"{calendar_key(entry)}@{host}")
    event.add("dtstamp", stamp)
    event.add("last-modified", stamp)
    event.add("summary", f"{entry.project}: {entry.event}")
    start, end = event_span(entry)
    event.add("dtstart", start)
    if end is not None:
        event.add("dtend", end)
    if entry.place:
        event.add("location", entry.place)
    lines = [f"{entry.project}: {entry.event}"]
    if entry.link:
        event.add("url", entry.link.url)
        lines.append(f"{entry.link.label}: {entry.link.url}")
    lines.append(f"From {settings.name}: {web_url}")
    event.add("description", "\n".join(lines))
    return event


def event_span(entry: AgendaEntry) -> tuple[dt.date | dt.datetime, dt.date | dt.datetime | None]:
    """DTSTART and DTEND: whole days (the end day exclusive), or local times in the zone."""
    last_day = entry.end or entry.start
    if entry.times is None or entry.timezone is None:
        return entry.start, last_day + dt.timedelta(days=1)
    zone = ZoneInfo(entry.timezone)
    first, last = entry.times
    start = dt.datetime.combine(entry.start, first, tzinfo=zone)
    if last is None:
        return start, None
    return start, dt.datetime.combine(last_day, last, tzinfo=zone)


def _revision(issue: Issue) -> dt.datetime:
    try:
        seconds = issue.source.stat().st_mtime
    except OSError:  # an issue built from memory; its date is the best revision there is
        return dt.datetime.combine(issue.date, dt.time(), tzinfo=dt.UTC)
    return dt.datetime.fromtimestamp(int(seconds), tz=dt.UTC)


def _uid_host(base_url: str) -> str:
    """The UID's domain part: the web version's host and path (`newsletter.efus.eu`)."""
    parts = urlsplit(base_url)
    return (parts.hostname or "newsletter") + parts.path.rstrip("/").replace("/", ".")
