"""Spreadsheet files in and out of the subscriber store: CSV import and export.

Import reads the file as it goes (a million rows never sit in memory), skips and reports
bad rows by their spreadsheet row number (the header is row 1) and imports the rest.
Export writes what import reads back, with formulas defused for spreadsheet programs.
"""

from __future__ import annotations

import csv
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
# Mailchimp's bookkeeping columns: no use in a template.
NOISE_HEADERS = {
    "memberrating", "optintime", "optinip", "confirmtime", "confirmip", "latitude",
    "longitude", "gmtoff", "dstoff", "cc", "lastchanged", "leid", "euid", "unsubtime",
    "unsubcampaigntitle", "unsubcampaignid", "unsubreason", "unsubreasonother", "cleantime",
    "cleancampaigntitle", "cleancampaignid",
}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class ImportSummary:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_invalid: int = 0
    skipped_duplicate: int = 0
    skipped_suppressed: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)  # (row number, reason)
    smtputf8: int = 0  # addresses with a non-ASCII local part, among those imported

    def __str__(self) -> str:
        return (f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
                f"{self.skipped_invalid} skipped-invalid, {self.skipped_duplicate} "
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

    @classmethod
    def from_header(cls, header: list[str], where: str) -> Columns:
        found: dict[str, int] = {}
        fields: list[tuple[int, str]] = []
        for index, raw in enumerate(header):
            title = unescape(raw).strip()
            canonical = re.sub(r"[^0-9a-z]", "", title.casefold())
            role = next((role for role, names in (("email", EMAIL_HEADERS),
                                                  ("name", NAME_HEADERS),
                                                  ("first", FIRST_NAME_HEADERS),
                                                  ("last", LAST_NAME_HEADERS))
                         if canonical in names), None)
            if role:
                found.setdefault(role, index)
            elif canonical and canonical not in NOISE_HEADERS:
                fields.append((index, re.sub(r"\s+", "_", title.lower())))
        if "email" not in found:
            raise StoreError(f"{where}: no email column in the header row (found: "
                             f"{', '.join(h.strip() for h in header) or 'nothing'})")
        return cls(found["email"], found.get("name"), found.get("first"), found.get("last"),
                   tuple(fields), len(header))


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
    def counted(rows: Iterator[NewRow]) -> Iterator[NewRow]:
        for row in rows:
            summary.smtputf8 += needs_smtputf8(row.email)
            yield row

    result = store.merge(counted(read_rows(path, summary.problems, where)), list_name,
                         resubscribe=resubscribe, resubscribe_bounced=resubscribe_bounced,
                         reason=f"imported from {path.name}", dry_run=dry_run)
    summary.skipped_invalid = len(summary.problems)
    summary.problems.extend((row, f"same address as row {first}, skipped")
                            for row, first in result.duplicates)
    summary.problems.sort()
    summary.added, summary.updated, summary.unchanged = (result.added, result.updated,
                                                         result.unchanged)
    summary.skipped_duplicate = len(result.duplicates)
    summary.skipped_suppressed = result.suppressed
    return summary


def read_rows(path: Path, problems: list[tuple[int, str]], where: str) -> Iterator[NewRow]:
    """The valid rows of a CSV file, one at a time; invalid ones go to `problems`."""
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
            for number, cells in enumerate(reader, start=2):
                row = _row(number, cells, columns, problems)
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
         problems: list[tuple[int, str]]) -> NewRow | None:
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
    name = cells[columns.name] if columns.name is not None else ""
    if not name and (columns.first_name is not None or columns.last_name is not None):
        name = " ".join(cells[i] for i in (columns.first_name, columns.last_name)
                        if i is not None and cells[i])
    fields = {title: value for index, title in columns.fields if (value := cells[index])}
    problem = control_character_problem(name, fields)
    if problem:
        problems.append((number, problem))
        return None
    return NewRow(number, email, key, name, fields)


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
