"""The agenda in readers' calendars: `.ics` files, "add to calendar" links, `check`'s rules."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import icalendar
from conftest import REPO
from test_web import call, send, subscribe

from newsletter.audience.tokens import signer_for
from newsletter.config import load_settings
from newsletter.web.app import WebApp
from newsletter.web.archive import Archive

Cli = Callable[..., subprocess.CompletedProcess[str]]
ISSUE = "issues/2020-01.yaml"
WEB = "https://newsletter.efus.eu/2020-01/"
# The sample's agenda: (summary, place, first day, day after the last)
SAMPLE_AGENDA = [
    ("BRIDGE: Visit in the context of the elaboration of the pilot project", "Genk, Belgium",
     dt.date(2020, 1, 14), dt.date(2020, 1, 17)),
    ("CCI: Coordination meeting and design lab", "Barcelona, Spain",
     dt.date(2020, 1, 22), dt.date(2020, 1, 24)),
    ("TO-NITE: Kick-off meeting", "Turin, Italy", dt.date(2020, 1, 29), dt.date(2020, 1, 31)),
    ("PACTESUR: Yearly meeting", "Edinburgh, Scotland",
     dt.date(2020, 2, 5), dt.date(2020, 2, 7)),
    ("Efus: GENERAL ASSEMBLY MEETING", "Riga, Latvia", dt.date(2020, 3, 26), dt.date(2020, 3, 28)),
    ("MATCH-SPORT: Coordination meeting", "Liège, Belgium",
     dt.date(2020, 3, 30), dt.date(2020, 4, 1)),
    ("PRACTICIES: Final conference", "Riga, Latvia", dt.date(2020, 4, 2), dt.date(2020, 4, 3)),
]
GA = """\
  - start: 2020-03-26
    end: 2020-03-27
    project: Efus
    event: GENERAL ASSEMBLY MEETING
    place: Riga, Latvia
"""


def build(project: Path, cli: Cli, issue: str = ISSUE) -> Path:
    """Build `issue` into out/; its folder."""
    result = cli("build", issue, "-o", "out")
    assert result.returncode == 0, result.stderr
    return project / "out" / Path(issue).stem


def events(path: Path) -> list[icalendar.Event]:
    calendar = icalendar.Calendar.from_ical(path.read_bytes())
    return list(calendar.walk("VEVENT"))


def edit(project: Path, old: str, new: str, issue: str = ISSUE) -> None:
    path = project / issue
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_agenda_ics_holds_the_samples_seven_entries_as_all_day_events(project: Path,
                                                                       cli: Cli) -> None:
    out = build(project, cli)
    found = events(out / "agenda.ics")
    assert [(str(e["SUMMARY"]), str(e["LOCATION"]), e.decoded("DTSTART"), e.decoded("DTEND"))
            for e in found] == SAMPLE_AGENDA
    for event in found:  # whole days, not midnight-to-midnight in some zone
        assert event["DTSTART"].params.get("VALUE") == "DATE"
        assert not isinstance(event.decoded("DTSTART"), dt.datetime)
    uids = [str(e["UID"]) for e in found]
    assert len(set(uids)) == 7 and all(uid.endswith("@newsletter.efus.eu") for uid in uids)
    assert str(found[4]["URL"]) == "https://efus.eu/en/about-us/general-assembly/"
    assert WEB in str(found[4]["DESCRIPTION"])


def test_each_entry_has_its_own_ics_linked_from_both_parts_of_the_email(project: Path,
                                                                        cli: Cli) -> None:
    out = build(project, cli)
    agenda = {str(e["UID"]): e for e in events(out / "agenda.ics")}
    html = (out / "email.html").read_text(encoding="utf-8")
    text = (out / "email.txt").read_text(encoding="utf-8")
    links = re.findall(r'<a class="cal" href="([^"]+)" aria-label="([^"]+)"', html)
    assert len(links) == 7
    for url, label in links:
        assert url.startswith(WEB + "calendar/") and url.endswith(".ics")
        assert url in text  # the text part writes the same link out
        (event,) = events(out / url.removeprefix(WEB))
        assert agenda[str(event["UID"])]["SUMMARY"] == event["SUMMARY"]
        assert label.startswith("Add to calendar: ")
    assert text.count("Add to calendar:") == 7
    assert f'href="{WEB}agenda.ics"' in html and f"{WEB}agenda.ics" in text
    assert len(html.encode("utf-8")) < 90_000


def test_a_corrected_entry_keeps_its_uid_and_gets_a_newer_revision(project: Path,
                                                                   cli: Cli) -> None:
    past = (project / ISSUE).stat().st_mtime - 3600
    os.utime(project / ISSUE, (past, past))
    before = events(build(project, cli) / "agenda.ics")[4]
    edit(project, GA, GA.replace("2020-03-26", "2020-04-16").replace("2020-03-27", "2020-04-17")
         .replace("Riga, Latvia", "Tallinn, Estonia"))
    after_file = build(project, cli) / "calendar" / "efus-general-assembly-meeting.ics"
    (after,) = events(after_file)
    assert after["UID"] == before["UID"]
    assert (after.decoded("DTSTART"), str(after["LOCATION"])) == (dt.date(2020, 4, 16),
                                                                  "Tallinn, Estonia")
    assert after.decoded("LAST-MODIFIED") > before.decoded("LAST-MODIFIED")
    assert after.decoded("DTSTAMP") > before.decoded("DTSTAMP")


def test_the_same_event_in_the_next_issue_has_the_same_uid(project: Path, cli: Cli) -> None:
    first = {str(e["SUMMARY"]): str(e["UID"]) for e in events(build(project, cli) / "agenda.ics")}
    next_issue = (project / ISSUE).read_text(encoding="utf-8").replace(
        "slug: 2020-01", "slug: 2020-02").replace("date: 2020-01-10", "date: 2020-02-07")
    (project / "issues/2020-02.yaml").write_text(next_issue, encoding="utf-8")
    second = events(build(project, cli, "issues/2020-02.yaml") / "agenda.ics")
    assert first["Efus: GENERAL ASSEMBLY MEETING"] == str(second[4]["UID"])


def test_a_pinned_id_keeps_the_uid_when_the_event_is_renamed(project: Path, cli: Cli) -> None:
    uid = str(events(build(project, cli) / "agenda.ics")[4]["UID"])
    edit(project, GA, GA.replace("GENERAL ASSEMBLY MEETING", "General Assembly 2020")
         + "    id: efus-general-assembly-meeting\n")
    (event,) = events(build(project, cli) / "calendar" / "efus-general-assembly-meeting.ics")
    assert (str(event["UID"]), str(event["SUMMARY"])) == (uid, "Efus: General Assembly 2020")


def test_a_timed_entry_is_written_in_its_time_zone(project: Path, cli: Cli) -> None:
    edit(project, GA, GA + '    time: "09:30-17:00"\n    timezone: Europe/Riga\n')
    out = build(project, cli)
    calendar = icalendar.Calendar.from_ical((out / "agenda.ics").read_bytes())
    event = list(calendar.walk("VEVENT"))[4]
    riga = ZoneInfo("Europe/Riga")
    assert event["DTSTART"].params["TZID"] == "Europe/Riga"
    assert event.decoded("DTSTART") == dt.datetime(2020, 3, 26, 9, 30, tzinfo=riga)
    assert event.decoded("DTEND") == dt.datetime(2020, 3, 27, 17, 0, tzinfo=riga)
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == ["Europe/Riga"]
    assert "26\u201327 March 2020, 09:30\u201317:00 Riga time" in \
        (out / "email.html").read_text(encoding="utf-8")
    assert "* 26\u201327 March 2020, 09:30\u201317:00 Riga time" in \
        (out / "email.txt").read_text(encoding="utf-8")


def test_a_time_needs_a_time_zone_and_a_real_time(project: Path, cli: Cli) -> None:
    edit(project, GA, GA + "    time: 25:00\n")
    edit(project, "event: Final conference\n", "event: Final conference\n"
         "    time: 10:00\n    timezone: Europe/Atlantis\n")
    result = cli("check", ISSUE)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert any(re.fullmatch(r"issues/2020-01\.yaml:\d+: agenda\[4\]\.time: expected a time "
                            r"such as 09:30 or 09:30-17:00, got '25:00'", line) for line in lines)
    assert any(re.fullmatch(r"issues/2020-01\.yaml:\d+: agenda\[6\]\.timezone: expected a time "
                            r"zone name such as Europe/Paris \(IANA\), got 'Europe/Atlantis'",
                            line) for line in lines), lines


def test_check_warns_about_an_entry_over_before_the_send_and_one_without_a_place(
        project: Path, cli: Cli) -> None:
    edit(project, "lists: [members]", "lists: [members]\nsend_at: 2020-01-17T09:00+01:00")
    edit(project, "    place: Barcelona, Spain\n", "")
    imported = cli("subscribers", "import", str(REPO / "examples" / "members.csv"), "--list",
                   "members")  # check wants the lists the issue names
    assert imported.returncode == 0, imported.stderr
    result = cli("check", ISSUE)
    assert result.returncode == 0, result.stderr
    text = (project / ISSUE).read_text(encoding="utf-8").splitlines()
    bridge = text.index("  - start: 2020-01-14") + 1
    cci = text.index("  - start: 2020-01-22") + 1
    assert result.stderr.splitlines() == [
        f"issues/2020-01.yaml:{bridge}: agenda[0].start: warning: event ending 2020-01-16 is "
        "over before its send time 2020-01-17T09:00:00+01:00: readers cannot go to it any more",
        f"issues/2020-01.yaml:{cci}: agenda[1].place: warning: no place: say where it happens "
        "(a city, or 'Online'), for the email and the reader's calendar",
    ]
    html = (build(project, cli) / "email.html").read_text(encoding="utf-8")
    assert "Coordination meeting and design lab<br>Add to calendar" not in html  # no "None"
    assert "None" not in html


def test_two_entries_for_one_event_are_an_error(project: Path, cli: Cli) -> None:
    edit(project, "event: Final conference", "event: Coordination meeting")
    edit(project, "project: PRACTICIES", "project: MATCH-SPORT")
    result = cli("check", ISSUE)
    assert result.returncode == 1
    assert re.search(r"issues/2020-01\.yaml:\d+: agenda\[6\]: has the same calendar id "
                     r"'match-sport-coordination-meeting' as agenda\[5\]", result.stderr)


def test_the_web_version_and_the_static_archive_serve_the_ics_files(project: Path,
                                                                    cli: Cli) -> None:
    subscribe(project, "members", "ana@example.org")
    send(project, ISSUE, "sent")
    settings = load_settings(project / "newsletter.toml", env={})
    app = WebApp(settings, Archive(settings, project / "issues"), signer_for(settings))
    status, headers, body = call(app, "GET", "/2020-01/calendar/efus-general-assembly-meeting.ics",
                                 b"")
    assert status == "200 OK" and headers["Content-Type"] == "text/calendar; charset=utf-8"
    (event,) = icalendar.Calendar.from_ical(body).walk("VEVENT")
    assert str(event["SUMMARY"]) == "Efus: GENERAL ASSEMBLY MEETING"
    assert call(app, "GET", "/2020-01/agenda.ics", b"")[0] == "200 OK"
    assert call(app, "GET", "/2020-01/calendar/nothing.ics", b"")[0] == "404 Not Found"
    result = cli("build-archive", "public")
    assert result.returncode == 0, result.stderr
    assert (project / "public/2020-01/agenda.ics").read_bytes() == \
        call(app, "GET", "/2020-01/agenda.ics", b"")[2]


def google_links(html: str) -> list[dict[str, str]]:
    found = re.findall(r'<a class="cal-google" href="([^"]+)" aria-label="([^"]+)"', html)
    links = []
    for href, label in found:
        url = urlsplit(href.replace("&amp;", "&"))
        assert (url.scheme, url.netloc, url.path) == ("https", "calendar.google.com",
                                                      "/calendar/render")
        links.append({**dict(parse_qsl(url.query)), "label": label})
    return links


def test_each_entry_has_a_google_calendar_link_with_its_dates(project: Path, cli: Cli) -> None:
    links = google_links((build(project, cli) / "email.html").read_text(encoding="utf-8"))
    assert [(link["text"], link.get("location"), link["dates"]) for link in links] == [
        (text, place, f"{first:%Y%m%d}/{after:%Y%m%d}")
        for text, place, first, after in SAMPLE_AGENDA]
    assert all(link["action"] == "TEMPLATE" and link["details"] == WEB for link in links)
    assert links[4]["label"] == "Add to Google Calendar: Efus, GENERAL ASSEMBLY MEETING"


def test_a_timed_entrys_google_link_is_in_utc(project: Path, cli: Cli) -> None:
    edit(project, GA, GA + '    time: "09:30-17:00"\n    timezone: Europe/Riga\n')
    links = google_links((build(project, cli) / "email.html").read_text(encoding="utf-8"))
    assert links[4]["dates"] == "20200326T073000Z/20200327T150000Z"  # Riga is UTC+2 in March
