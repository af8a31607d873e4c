"""The issue file: YAML -> a validated `Issue`, or every problem with its file:line:field."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import IssueFileError
from ..grammar import LIST_NAME, RESERVED_SLUGS, SLUG
from .agendatime import agenda_times
from .schema import Reader, shorten
from .yamlsource import Node, load_tree


@dataclass(frozen=True)
class Link:
    url: str
    label: str


@dataclass(frozen=True)
class Image:
    src: str  # relative to the issue file
    alt: str
    path: Path  # resolved on disk
    width: int = 0  # pixels, read from the file
    height: int = 0


# What every mail client shows: the file name's ending, and the format the file must be.
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".gif": "GIF"}


@dataclass(frozen=True)
class Item:
    title: str
    body: str  # Markdown
    link: Link | None = None
    image: Image | None = None
    section: str | None = None
    featured: bool = False
    line: int = 0
    body_node: Node | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Highlight:
    title: str | None  # None: the theme's own "Did you know?", in the edition's language
    body: str  # Markdown
    link: Link | None = None
    line: int = 0
    body_node: Node | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class AgendaEntry:
    start: dt.date
    project: str
    event: str
    place: str | None = None
    end: dt.date | None = None
    link: Link | None = None
    line: int = 0
    times: tuple[dt.time, dt.time | None] | None = None  # local times, in `timezone`
    timezone: str | None = None  # an IANA name, set whenever `times` is
    id: str | None = None  # the calendar key, when the editor pins it


@dataclass(frozen=True)
class Issue:
    slug: str
    date: dt.date
    subject: str
    preheader: str
    source: Path
    number: int | None = None
    title: str | None = None
    send_at: dt.datetime | None = None
    lists: tuple[str, ...] = ()
    template: str | None = None
    intro: str | None = None
    items: tuple[Item, ...] = ()
    highlights: tuple[Highlight, ...] = ()
    agenda: tuple[AgendaEntry, ...] = ()
    footer: str | None = None
    lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    tree: Node | None = field(default=None, compare=False, repr=False)  # the file, located

    @property
    def images(self) -> list[Image]:
        return [item.image for item in self.items if item.image]

    def locate(self, needle: str) -> list[tuple[int, str]]:
        """(line, field) of each text of the file that contains `needle`, in file order."""
        return self.tree.locate(needle) if self.tree is not None else []


TOP_FIELDS = ("number", "slug", "title", "date", "subject", "preheader", "send_at", "lists",
              "template", "intro", "items", "highlights", "agenda", "footer")
ITEM_FIELDS = ("title", "body", "link", "image", "section", "featured")
HIGHLIGHT_FIELDS = ("title", "body", "link")
AGENDA_FIELDS = ("start", "end", "time", "timezone", "project", "event", "place", "link", "id")


def load_issue(path: Path, display: str | None = None) -> Issue:
    """Read and validate an issue file; raise IssueFileError listing every problem."""
    shown = display or str(path)
    root, problems = load_tree(path, shown)
    reader = Reader(shown)
    reader.problems.extend(problems)
    issue = _read_issue(reader, root, path)
    if problems:  # a line set aside for its syntax error may hold any required field
        reader.problems = [p for p in reader.problems if p in problems
                           or p.message != "required field is missing"]
    if reader.problems:  # in file order, as the user reads and fixes them
        raise IssueFileError(sorted(reader.problems, key=lambda p: p.line or 0))
    assert issue is not None
    return issue


def read_issue(reader: Reader, root: Node, path: Path) -> Issue | None:
    """Validate a tree already loaded (an edition laid over its main file); problems go to
    `reader`; None when a required part is unusable."""
    return _read_issue(reader, root, path)


def _read_issue(r: Reader, root: Node, path: Path) -> Issue | None:
    if not r.mapping(root, TOP_FIELDS, required=("date", "subject", "items")):
        return None
    f = root.value.get
    slug = r.one_line(f("slug")) or path.stem
    if not SLUG.match(slug):
        r.error(f("slug") or root, "slug", "expected lowercase letters, digits, '.', '-' or '_'"
                f" (it becomes part of web addresses), got {shorten(slug)}")
    elif slug in RESERVED_SLUGS:
        r.error(f("slug") or root, "slug", f"expected another name: {slug!r} is the address of "
                                           f"{RESERVED_SLUGS[slug]} on newsletter serve")
    lists = tuple(_read_lists(r, f("lists")))
    items = tuple(x for x in (_read_item(r, n, path) for n in r.sequence(f("items"), "items")) if x)
    if f("items") is not None and f("items").is_sequence and not f("items").value:
        r.error(f("items"), "items", "expected at least one item, got an empty list")
    highlights = tuple(x for x in (_read_highlight(r, n)
                                   for n in r.sequence(f("highlights"), "highlight boxes")) if x)
    agenda = tuple(x for x in (_read_agenda(r, n)
                               for n in r.sequence(f("agenda"), "agenda entries")) if x)
    issue_date = r.date(f("date"))
    subject = r.one_line(f("subject"), max_length=250)
    if subject == "":
        r.error(f("subject"), "subject", "expected a subject line, got an empty one (it is what "
                                         "the inbox shows)")
        subject = None
    if not (issue_date and subject is not None):
        return None
    return Issue(
        slug=slug, date=issue_date, subject=subject,
        preheader=r.one_line(f("preheader"), max_length=250) or "",
        source=path, number=r.integer(f("number")), title=r.one_line(f("title")),
        send_at=r.aware_datetime(f("send_at")), lists=lists,
        template=r.one_line(f("template")), intro=r.text(f("intro")),
        items=items, highlights=highlights, agenda=agenda, footer=r.text(f("footer")),
        lines={key: node.line for key, node in root.value.items()}, tree=root,
    )


def _read_lists(r: Reader, node: Node | None) -> list[str]:
    names = []
    for n in r.sequence(node, "list names"):
        name = r.one_line(n)
        if name is not None and not LIST_NAME.match(name):
            r.error(n, n.path, f"expected a list name of lowercase letters, digits, '-' or '_', "
                               f"got {shorten(name)}")
        elif name is not None:
            names.append(name)
    return names


def _read_link(r: Reader, node: Node | None, default_label: str | None = None) -> Link | None:
    """A link is `{url, label}`; a bare URL is accepted where a default label exists."""
    if node is None or node.value is None:
        return None
    if not node.is_mapping:
        url = r.url(node, allow_mailto=True)
        if url and default_label is None:
            r.error(node, node.path, "expected a mapping with 'url' and 'label' (a label says "
                                     "where the link goes, for screen readers), got a bare URL")
            return None
        return Link(url, default_label) if url and default_label else None
    r.mapping(node, ("url", "label"), required=("url", "label"))
    url = r.url(node.value.get("url"), allow_mailto=True)
    label = r.one_line(node.value.get("label"), max_length=200)
    if label and label.lower().strip(" .>") in {"read more", "more", "click here", "here", "link"}:
        r.error(node.value["label"], node.value["label"].path,
                f"expected a label that says where the link goes, got {shorten(label)}")
    return Link(url, label) if url and label else None


def _read_item(r: Reader, node: Node, issue_path: Path) -> Item | None:
    if not r.mapping(node, ITEM_FIELDS, required=("title", "body")):
        return None
    f = node.value.get
    title, body = r.one_line(f("title")), r.text(f("body"))
    link, image = _read_link(r, f("link")), _read_image(r, f("image"), issue_path)
    section, featured = r.one_line(f("section")), r.boolean(f("featured"))
    if title is None or body is None:
        return None
    return Item(title, body, link, image, section, featured, node.line, f("body"))


def _read_image(r: Reader, node: Node | None, issue_path: Path) -> Image | None:
    if node is None or node.value is None:
        return None
    if not r.mapping(node, ("src", "alt"), required=("src", "alt")):
        return None
    src_node = node.value.get("src")
    src, alt = r.one_line(src_node), r.one_line(node.value.get("alt"), max_length=300)
    if src is None or alt is None:
        return None
    if "://" in src or src.startswith("/") or ".." in Path(src).parts:
        r.error(src_node, src_node.path, "expected a path relative to the issue file (images "
                                         f"ship with the issue), got {shorten(src)}")
        return None
    resolved = issue_path.parent / src
    if not resolved.is_file():
        r.error(src_node, src_node.path, f"expected an image file, but {shorten(str(resolved))}"
                                         " does not exist")
        return None
    size = _pixel_size(r, src_node, resolved)
    return Image(src, alt, resolved, *size) if size else None


def _pixel_size(r: Reader, node: Node, path: Path) -> tuple[int, int] | None:
    """The width and height of a readable PNG, JPEG or GIF whose name says what it is."""
    expected = IMAGE_FORMATS.get(path.suffix.lower())
    if expected is None:
        r.error(node, node.path, f"expected a .png, .jpg or .gif image (what every mail client "
                                 f"shows), got {shorten(path.name)}")
        return None
    from PIL import Image as Pillow  # only issues with images pay for the import
    from PIL import UnidentifiedImageError

    try:
        with Pillow.open(path) as picture:
            found, size = picture.format, picture.size
            picture.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        r.error(node, node.path, f"{shorten(path.name)} is not a readable {expected} image "
                                 f"({exc}); export it again from your image editor")
        return None
    if found != expected:
        r.error(node, node.path, f"{shorten(path.name)} is a {found} image named like a "
                                 f"{expected}: rename it to match (mail clients trust the name)")
        return None
    return size


def _read_highlight(r: Reader, node: Node) -> Highlight | None:
    if not r.mapping(node, HIGHLIGHT_FIELDS, required=("body",)):
        return None
    f = node.value.get
    title = r.one_line(f("title"))
    body, link = r.text(f("body")), _read_link(r, f("link"))
    return Highlight(title, body, link, node.line, f("body")) if body is not None else None


def _read_agenda(r: Reader, node: Node) -> AgendaEntry | None:
    if not r.mapping(node, AGENDA_FIELDS, required=("start", "project", "event")):
        return None
    f = node.value.get
    start, end = r.date(f("start")), r.date(f("end"))
    if start and end and end < start:
        r.error(f("end"), f("end").path, f"expected an end date on or after the start "
                                         f"{start.isoformat()}, got {end.isoformat()}")
        end = None
    project, event, place = r.one_line(f("project")), r.one_line(f("event")), r.one_line(f("place"))
    link = _read_link(r, f("link"), default_label=None)
    times, timezone = agenda_times(r, node, start, end)
    pinned = r.one_line(f("id"))
    if pinned is not None and not SLUG.match(pinned):
        r.error(f("id"), f("id").path, "expected lowercase letters, digits, '.', '-' or '_' "
                                       f"(it names the event's .ics file), got {shorten(pinned)}")
    if None in (start, project, event):
        return None
    return AgendaEntry(start, project, event, place, end, link, node.line, times, timezone,
                       pinned)
