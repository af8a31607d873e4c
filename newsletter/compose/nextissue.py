"""`newsletter new`: next month's issue file, written from last month's.

The officer's loop is "copy last month's file and change it"; what is mechanical is done
here, on the file's text, so that its comments and layout stay as they were: the slug,
number, date and send_at move on, the month in the title and subject too, past agenda
entries go, and a folder for the new images is made. The items stay, to be rewritten;
`check` warns about each one left unchanged.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import NewsletterError
from .issue import Issue, load_issue
from .yamlsource import _Loader


@dataclass(frozen=True)
class NewIssue:
    """What `new` wrote."""

    path: Path
    images: Path  # the folder for its images
    issue: Issue  # as it loads now
    dropped: int  # agenda entries that ended before the new date


def next_month(day: dt.date) -> dt.date:
    """The same day a month later (the last day when the month is shorter)."""
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def write_next_issue(source: Path, shown: str, date: dt.date | None = None) -> NewIssue:
    """Write the issue after `source` beside it, named after its month; never overwrite."""
    old = load_issue(source, shown)
    new_date = date or next_month(old.date)
    if new_date <= old.date:
        raise NewsletterError(f"--date {new_date.isoformat()}: expected a date after "
                              f"{old.date.isoformat()}, the date of {shown}")
    slug = f"{new_date:%Y-%m}"
    target = source.parent / f"{slug}.yaml"
    if target.exists():
        error = NewsletterError(f"{Path(shown).with_name(target.name)} already exists; nothing "
                                "written")
        error.hint = "open it and edit it, or choose another month with --date YYYY-MM-DD"
        raise error
    text = source.read_text(encoding="utf-8")
    edits, dropped = _edits(text, old, new_date, slug)
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    images = source.parent / slug
    with open(target, "x", encoding="utf-8") as file:  # "x": a file made meanwhile is kept
        file.write(text)
    images.mkdir(exist_ok=True)
    return NewIssue(target, images, load_issue(target, str(target)), dropped)


def _edits(text: str, old: Issue, new_date: dt.date,
           slug: str) -> tuple[list[tuple[int, int, str]], int]:
    """(start, end, replacement) spans of `text`, and how many agenda entries go."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    finally:
        loader.dispose()
    fields = {key.value: value for key, value in root.value}
    edits: list[tuple[int, int, str]] = []

    def replace(name: str, value: str) -> None:
        node = fields.get(name)
        if isinstance(node, yaml.ScalarNode):
            edits.append((node.start_mark.index, node.end_mark.index, value))

    replace("date", new_date.isoformat())
    if "slug" in fields:
        replace("slug", slug)
    if old.number is not None:
        replace("number", str(old.number + 1))
    if old.send_at is not None:
        moved = old.send_at + (new_date - old.date)
        replace("send_at", moved.isoformat(timespec="minutes" if not moved.second else "seconds"))
    old_month, new_month = f"{old.date:%B %Y}", f"{new_date:%B %Y}"
    for name in ("title", "subject"):
        node = fields.get(name)
        if isinstance(node, yaml.ScalarNode) and old_month in node.value:
            start, end = node.start_mark.index, node.end_mark.index
            edits.append((start, end, text[start:end].replace(old_month, new_month)))
    dropped = 0
    agenda = fields.get("agenda")
    if isinstance(agenda, yaml.SequenceNode):
        entries = agenda.value
        for index, (entry, parsed) in enumerate(zip(entries, old.agenda, strict=False)):
            if (parsed.end or parsed.start) >= new_date:
                continue
            following = entries[index + 1].start_mark if index + 1 < len(entries) \
                else entry.end_mark
            edits.append((_line_start(text, entry.start_mark.index),
                          _line_start(text, following.index), ""))
            dropped += 1
    return edits, dropped


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1
