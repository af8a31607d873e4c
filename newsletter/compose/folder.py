"""The folder of issue files: which file owns a slug, last month's issue, the latest one.

The build folder, the web address and the send ledger are all keyed on the slug, so two
files with one slug would overwrite each other's build and share one send. A slug belongs
to the file named after it (`2020-01.yaml` owns `2020-01`); a copy that kept it does not.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from ..errors import IssueFileError
from .editions import edition_language
from .yamlsource import load_tree

_SLUGS: dict[tuple[Path, int, int], tuple[str, dt.date | None]] = {}  # by (path, mtime, size)


def issue_files(folder: Path) -> list[Path]:
    """The issue files of `folder`; an edition (`2020-01.fr.yaml`) goes with its issue."""
    return sorted(p for p in folder.glob("*.y*ml") if p.suffix in (".yaml", ".yml")
                  and edition_language(p) is None)


@dataclass(frozen=True)
class Sibling:
    """Another issue file of the folder, as far as its slug and date are concerned."""

    path: Path
    slug: str
    date: dt.date | None

    @property
    def owns_slug(self) -> bool:
        return self.path.stem == self.slug


def read_sibling(path: Path) -> Sibling:
    """The slug (default: the file name) and date of an issue file, even an invalid one."""
    stat = path.stat()
    key = (path.resolve(), stat.st_mtime_ns, stat.st_size)
    if key not in _SLUGS:
        slug, date = path.stem, None
        try:
            root, _ = load_tree(path)
            fields = root.value if root.is_mapping else {}
            if isinstance(getattr(fields.get("slug"), "value", None), str):
                slug = fields["slug"].value.strip()
            value = getattr(fields.get("date"), "value", None)
            date = value if isinstance(value, dt.date) else None
            date = date.date() if isinstance(date, dt.datetime) else date
        except IssueFileError:
            pass
        _SLUGS[key] = (slug, date)
    slug, date = _SLUGS[key]
    return Sibling(path, slug, date)


def siblings(path: Path) -> list[Sibling]:
    """The other issue files beside `path`."""
    mine = path.resolve()
    return [read_sibling(p) for p in issue_files(path.parent) if p.resolve() != mine]


def slug_holders(path: Path, slug: str) -> list[Path]:
    """The other files that hold `slug` and keep it from the file at `path`.

    The file named after the slug keeps it; when none is, every file claiming it is in
    the way of the others.
    """
    if path.stem == slug:
        return []
    claims = [s for s in siblings(path) if s.slug == slug]
    owners = [s.path for s in claims if s.owns_slug]
    return owners or [s.path for s in claims]


def previous_sibling(path: Path, date: dt.date) -> Path | None:
    """The issue file dated last before `date`: last month's issue."""
    earlier = [s for s in siblings(path) if s.date is not None and s.date < date]
    return max(earlier, key=lambda s: (s.date, s.path.name)).path if earlier else None


def latest_issue(folder: Path) -> Path | None:
    """The issue file with the latest date (or, among undated ones, the last name)."""
    found = [read_sibling(p) for p in issue_files(folder)]
    if not found:
        return None
    return max(found, key=lambda s: (s.date or dt.date.min, s.path.name)).path
