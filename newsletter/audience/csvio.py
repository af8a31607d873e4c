"""Spreadsheet files in and out of the subscriber store: CSV import and export.

Import reads the file as it goes (a million rows never sit in memory), skips and reports
bad rows by their spreadsheet row number (the header is row 1) and imports the rest.
A row may say that its address left: Mailchimp's unsubscribed and cleaned exports
(UNSUB_TIME, CLEAN_TIME) or a `status` column; such rows suppress, they never subscribe.
Export writes what import reads back, with formulas defused for spreadsheet programs.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ..errors import StoreError
from .store import NewRow, SubscriberStore, address_key, control_character_problem, needs_smtputf8

# Headers are compared without case, spaces or punctuation: "E-mail" is "email".
EMAIL_HEADERS = {"email", "emailaddress", "mail"}
NAME_HEADERS = {"name", "fullname", "displayname"}
FIRST_NAME_HEADERS = {"firstname", "fname", "givenname"}
LAST_NAME_HEADERS = {"lastname", "lname", "surname", "familyname"}
# Columns that say when the address opted in, and whether and when it left (Mailchimp's,
# and a generic status column).
HISTORY_HEADERS = {"status": "status", "unsubtime": "unsub_time", "unsubreason": "unsub_reason",
                   "unsubreasonother": "unsub_other", "unsubcampaigntitle": "unsub_campaign",
                   "cleantime": "clean_time", "cleancampaigntitle": "clean_campaign",
                   "optintime": "optin_time", "confirmtime": "confirm_time"}
# Mailchimp's other bookkeeping columns: no use in a template.
NOISE_HEADERS = {
    "memberrating", "optinip", "confirmip", "latitude",
    "longitude", "gmtoff", "dstoff", "cc", "lastchanged", "leid", "euid", "unsubcampaignid",
    "cleancampaignid",
}
MAILCHIMP_HEADERS = {"memberrating", "leid", "euid", "optintime", "unsubtime", "cleantime"}
# A `status` cell -> the store's status.
STATUSES = {"subscribed": "active", "active": "active", "unsubscribed": "unsubscribed",
            "bounced": "bounced", "cleaned": "bounced", "complained": "complained"}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_MAILCHIMP_TIME = re.compile(r"(\d{4}-[01]\d-[0-3]\d) ([0-2]\d:[0-5]\d:[0-5]\d)\Z")


@dataclass
class ImportSummary:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_invalid: int = 0
    skipped_duplicate: int = 0
    skipped_suppressed: int = 0
    unsubscribed: int = 0  # recorded as unsubscribed, bounced or complained by this import
    bounced: int = 0
    complained: int = 0
    statuses: bool = False  # the file says who left (the counts above are shown)
    mailchimp: bool = False  # the file is a Mailchimp audience export
    problems: list[tuple[int, str]] = field(default_factory=list)  # (row number, reason)
    notes: list[tuple[int, str]] = field(default_factory=list)  # imported, with a caveat
    smtputf8: int = 0  # addresses with a non-ASCII local part, among those imported

    def __str__(self) -> str:
        left = (f"{self.unsubscribed} unsubscribed, {self.bounced} bounced, "
                f"{self.complained} complained, " if self.statuses else "")
        return (f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
                f"{left}{self.skipped_invalid} skipped-invalid, {self.skipped_duplicate} "
                f"skipped-duplicate, {self.skipped_suppressed} skipped-suppressed")


@dataclass(frozen=True)
class Columns:
    """Where the address, the name and the extra fields are in a row."""

    email: int
    name: int | None
    first_name: int | None
    last_name: int | None
    fields: tuple[tuple[int, str], ...]  # (column index, field name)
    width: int  # cells in the header row
    history: dict[str, int]  # HISTORY_HEADERS role -> column index
    mailchimp: bool  # a Mailchimp audience export

    @classmethod
    def from_header(cls, header: list[str], where: str) -> Columns:
        found: dict[str, int] = {}
        history: dict[str, int] = {}
        fields: list[tuple[int, str]] = []
        canonicals = set()
        for index, raw in enumerate(header):
            title = unescape(raw).strip()
            canonical = re.sub(r"[^0-9a-z]", "", title.casefold())
            canonicals.add(canonical)
            role = next((role for role, names in (("email", EMAIL_HEADERS),
                                                  ("name", NAME_HEADERS),
                                                  ("first", FIRST_NAME_HEADERS),
                                                  ("last", LAST_NAME_HEADERS))
                         if canonical in names), None)
            if role:
                found.setdefault(role, index)
            elif canonical in HISTORY_HEADERS:
                history.setdefault(HISTORY_HEADERS[canonical], index)
            elif canonical and canonical not in NOISE_HEADERS:
                fields.append((index, re.sub(r"\s+", "_", title.lower())))
        if "email" not in found:
            raise StoreError(f"{where}: no email column in the header row (found: "
                             f"{', '.join(h.strip() for h in header) or 'nothing'})")
        return cls(found["email"], found.get("name"), found.get("first"), found.get("last"),
                   tuple(fields), len(header), history, bool(canonicals & MAILCHIMP_HEADERS))

    @property
    def says_status(self) -> bool:
        return bool({"status", "unsub_time", "clean_time"} & set(self.history))


def escape(cell: str) -> str:
    """Defuse a cell a spreadsheet would run as a formula; `unescape` undoes it."""
    return "'" + cell if cell.startswith(FORMULA_STARTS + ("'",)) else cell


def unescape(cell: str) -> str:
    if cell[:1] == "'" and cell[1:2] and cell[1:2] in FORMULA_STARTS + ("'",):
        return cell[1:]
    return cell


def import_csv(store: SubscriberStore, path: Path, list_name: str, *, where: str = "",
               resubscribe: bool = False, resubscribe_bounced: bool = False,
               dry_run: bool = False) -> ImportSummary:
    """Merge the subscribers of a CSV file into a list; bad rows are skipped and reported."""
    where = where or str(path)
    summary = ImportSummary()
    rows = read_rows(path, summary, where)
    first = next(rows, None)  # reads the header: is it Mailchimp's?
    source = (f"imported from Mailchimp ({path.name})" if summary.mailchimp
              else f"imported from {path.name}")

    def counted(rows: Iterator[NewRow]) -> Iterator[NewRow]:
        for row in rows:
            summary.smtputf8 += needs_smtputf8(row.email)
            yield row

    result = store.merge(counted(itertools.chain([first] if first else [], rows)), list_name,
                         resubscribe=resubscribe, resubscribe_bounced=resubscribe_bounced,
                         reason=f"imported from {path.name}", source=source, dry_run=dry_run)
    summary.skipped_invalid = len(summary.problems)
    summary.problems.extend((row, f"same address as row {first}, skipped")
                            for row, first in result.duplicates)
    summary.problems.sort()
    summary.added, summary.updated, summary.unchanged = (result.added, result.updated,
                                                         result.unchanged)
    summary.skipped_duplicate = len(result.duplicates)
    summary.skipped_suppressed = result.suppressed
    summary.unsubscribed, summary.bounced, summary.complained = (
        result.left.get(status, 0) for status in ("unsubscribed", "bounced", "complained"))
    return summary


def read_rows(path: Path, summary: ImportSummary, where: str) -> Iterator[NewRow]:
    """The valid rows of a CSV file, one at a time; invalid ones go to `summary.problems`."""
    number = 1
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            first = file.readline()
            file.seek(0)
            reader = csv.reader(file, delimiter=";" if first.count(";") > first.count(",")
                                else ",")
            header = next(reader, None)
            if header is None:
                raise StoreError(f"{where}: the file is empty; expected a header row")
            columns = Columns.from_header(header, where)
            summary.statuses, summary.mailchimp = columns.says_status, columns.mailchimp
            for number, cells in enumerate(reader, start=2):
                row = _row(number, cells, columns, summary)
                if row is not None:
                    yield row
    except OSError as exc:
        raise StoreError(f"{where}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise StoreError(f"{where}: not UTF-8 text after row {number}; export the spreadsheet "
                         "as 'CSV UTF-8' and import it again (nothing was imported)") from None
    except csv.Error as exc:
        raise StoreError(f"{where}:{number + 1}: {exc} (nothing was imported)") from None


def _row(number: int, cells: list[str], columns: Columns,
         summary: ImportSummary) -> NewRow | None:
    problems = summary.problems
    if len(cells) < columns.width:
        cells += [""] * (columns.width - len(cells))
    cells = [unescape(c).strip() if c[:1] == "'" else c.strip() for c in cells]
    email = cells[columns.email]
    if not email:
        if any(cells):  # empty rows at the end of a sheet are no problem
            problems.append((number, "no email address"))
        return None
    try:
        key = address_key(email)
    except ValueError as exc:
        problems.append((number, f"{email!r} is not a valid address: {exc}"))
        return None
    cell = {role: cells[index] for role, index in columns.history.items()}
    left = _left(number, cell, columns.mailchimp, summary)
    if left is None:
        return None
    name = cells[columns.name] if columns.name is not None else ""
    if not name and (columns.first_name is not None or columns.last_name is not None):
        name = " ".join(cells[i] for i in (columns.first_name, columns.last_name)
                        if i is not None and cells[i])
    # a quoted cell over several lines (an address, a note) keeps them, as LF
    fields = {title: value.replace("\r\n", "\n") for index, title in columns.fields
              if (value := cells[index])}
    problem = control_character_problem(name, fields)
    status, status_at, reason = left
    if problem and status == "active":
        problems.append((number, problem))
        return None
    if problem:  # the address left: keeping it suppressed matters more than its name
        summary.notes.append((number, f"{problem}; its name and fields were left out, "
                              f"the address recorded as {status}"))
        name, fields = "", {}
    return NewRow(number, email, key, name, fields, status, status_at, reason,
                  _utc(number, cell.get("optin_time", ""), summary),
                  _utc(number, cell.get("confirm_time", ""), summary))


def _left(number: int, cell: dict[str, str], mailchimp: bool,
          summary: ImportSummary) -> tuple[str, str, str] | None:
    """(status, when, why) of one row: from its status column, or Mailchimp's UNSUB_TIME
    (unsubscribed) and CLEAN_TIME (cleaned: a hard bounce)."""
    if cell.get("status"):
        status = STATUSES.get(cell["status"].casefold())
        if status is None:
            summary.problems.append((number, f"status {cell['status']!r}: expected one of "
                                     "subscribed, unsubscribed, bounced, complained"))
            return None
        when = cell.get("unsub_time") or cell.get("clean_time") or ""
    elif cell.get("unsub_time"):
        status, when = "unsubscribed", cell["unsub_time"]
    elif cell.get("clean_time"):
        status, when = "bounced", cell["clean_time"]
    else:
        return ("active", "", "")
    if status == "active":
        return ("active", "", "")
    origin = "in Mailchimp" if mailchimp else "in the imported file"
    if status == "unsubscribed":
        details = [cell.get("unsub_reason", ""), cell.get("unsub_other", ""),
                   _campaign(cell.get("unsub_campaign", ""))]
    elif status == "bounced":
        details = ["cleaned (hard bounce)" if mailchimp else "",
                   _campaign(cell.get("clean_campaign", ""))]
    else:
        details = []
    reason = f"{status} {origin}" + "".join(f"; {d}" for d in details if d)
    return (status, _utc(number, when, summary, strict=True), reason)


def _campaign(title: str) -> str:
    return f"campaign: {title}" if title else ""


def _utc(number: int, when: str, summary: ImportSummary, *, strict: bool = False) -> str:
    """A Mailchimp time (`2020-01-15 09:00:00`, UTC) or ISO 8601 time, as the store keeps it.

    A time that cannot be read is replaced by the time of the import: the row still
    suppresses its address, and the note says so. Mailchimp's own spelling is rewritten
    without parsing (a million rows' OPTIN_TIME) unless `strict` (a status time, which the
    store reads back).
    """
    if not when:
        return ""
    if not strict and (plain := _MAILCHIMP_TIME.match(when)):
        return f"{plain[1]}T{plain[2]}Z"
    try:
        parsed = dt.datetime.fromisoformat(when)
    except ValueError:
        summary.notes.append((number, f"{when!r} is not a time such as 2020-01-15 09:00:00; "
                              "the time of this import is recorded instead"))
        return ""
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def export_csv(store: SubscriberStore, list_name: str, out: TextIO) -> int:
    """Write the active members of a list as CSV that `import_csv` reads back; the count."""
    names = store.field_names([list_name])
    writer = csv.writer(out)
    writer.writerow([escape(title) for title in ("email", "name", *names)])
    count = 0
    for subscriber in store.stream([list_name]):
        writer.writerow([escape(subscriber.email), escape(subscriber.name),
                         *(escape(subscriber.fields.get(n, "")) for n in names)])
        count += 1
    return count
