"""Editions: one issue in several languages, one file per language beside the main one.

`issues/2020-01.fr.yaml` is the French edition of `issues/2020-01.yaml`. It holds what a
translator changes: the subject, preheader, title, intro and footer, and the items,
highlight boxes and agenda entries in the main file's order, each with only the fields that
differ (a link or an image given there replaces the main one's; else it is shared). The
date, lists and send time belong to the whole issue and stay in the main file. An edition is
laid over the main file's YAML and validated as one issue, each mistake reported at the file
and line it came from; what `check` says about the translation itself (a field left out, a
paragraph forgotten) is kept as notes.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import ConfigError, IssueFileError, NewsletterError, Problem
from .i18n import language_tag
from .issue import Issue, read_issue
from .schema import Reader
from .yamlsource import Node, load_tree

SHARED_FIELDS = ("number", "slug", "date", "send_at", "lists", "template")
TEXT_FIELDS = ("subject", "preheader", "title", "intro", "footer")
ENTRIES = {"items": ("item", "items"), "highlights": ("highlight box", "highlight boxes"),
           "agenda": ("agenda entry", "agenda entries")}
LIST_FIELDS = {"items": ("title", "body", "section", "link.label", "image.alt"),
               "highlights": ("title", "body", "link.label"),
               "agenda": ("event", "link.label")}
MARKDOWN_FIELDS = ("intro", "footer", "body")
SHORT_RATIO = 0.5  # a text under half as long as the main one's lost something
SHORT_MIN_CHARS = 200  # shorter texts vary too much between languages to compare
SAME_MIN_CHARS = 40  # a short title left as it is may be a name: BRIDGE, Riga, Latvia
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class Edition:
    """The issue in one more language: the main file with the edition file laid over it."""

    language: str  # a BCP 47 tag, `fr` or `fr-BE`
    issue: Issue  # its `source` is the edition file
    notes: tuple[Problem, ...] = ()  # what `check` warns about the translation

    @property
    def web_path(self) -> str:
        """Where it is published below the issue's address: `fr/`."""
        return f"{self.language.lower()}/"


def edition_language(path: Path) -> str | None:
    """`fr` for `2020-01.fr.yaml` when `2020-01.yaml` is beside it; None for other files."""
    stem, _, tag = path.stem.rpartition(".")
    if not stem or path.suffix not in (".yaml", ".yml"):
        return None
    language = language_tag(tag)
    if language is None or not any((path.parent / f"{stem}{suffix}").is_file()
                                   for suffix in (".yaml", ".yml")):
        return None
    return language


def edition_files(main: Path) -> dict[str, Path]:
    """The edition files of the issue file `main`, by language."""
    found: dict[str, Path] = {}
    for path in sorted(main.parent.glob(f"{glob.escape(main.stem)}.*.y*ml")):
        language = edition_language(path)
        if language is not None and path.stem.rpartition(".")[0] == main.stem:
            found.setdefault(language, path)
    return found


def load_editions(issue: Issue, main_language: str) -> list[Edition]:
    """Every edition of `issue`, validated; IssueFileError lists the problems of them all."""
    files = edition_files(issue.source)
    if not files:
        return []
    main_shown = shown(issue.source)
    main_root = _tree(issue.source, main_shown)
    main_nodes = {id(node) for node in _walk(main_root)}
    editions, problems = [], []
    for language, path in files.items():
        reader = _EditionReader(shown(path), main_shown, main_nodes)
        if language.lower() == main_language.lower():
            reader.error(None, "", f"is the {language} edition, but the main file "
                         f"{main_shown} is {language} already (language in newsletter.toml); "
                         "rename it after the language it is in")
            problems += reader.problems
            continue
        try:
            edition = _load(language, path, issue, main_root, reader)
        except IssueFileError as exc:  # not YAML at all
            problems += exc.problems
            continue
        problems += reader.problems
        if edition is not None and not reader.problems:
            editions.append(edition)
    if problems:  # file by file, in line order, as the user reads and fixes them
        raise IssueFileError(sorted(problems, key=lambda p: (p.path, p.line or 0)))
    return editions


def start_edition(main: Path, language: str, main_language: str) -> Path:
    """Write `2020-02.fr.yaml`: the main file without what belongs to the whole issue, for a
    translator to translate in place (`check` lists what is still in the main language)."""
    tag = language_tag(language)
    if tag is None:
        raise ConfigError(f"{language!r}: expected a language such as fr, fr-BE or de")
    if tag.lower() == main_language.lower():
        raise ConfigError(f"{shown(main)} is the {tag} edition already (language in "
                          "newsletter.toml)")
    target = main.with_name(f"{main.stem}.{tag}{main.suffix}")
    if target.exists():
        raise NewsletterError(f"{shown(target)} exists already; nothing was written")
    root = _tree(main, shown(main))
    lines = main.read_text(encoding="utf-8").splitlines(keepends=True)
    starts = sorted(root.key_lines.values()) if root.is_mapping else []
    dropped = set()
    for key in SHARED_FIELDS:
        if root.is_mapping and key in root.key_lines:
            first = root.key_lines[key]
            after = next((line for line in starts if line > first), len(lines) + 1)
            dropped.update(range(first, after))
    kept = [text for number, text in enumerate(lines, 1) if number not in dropped]
    header = (f"# The {tag} edition of {main.name}: translate each text in place. What is\n"
              f"# left out comes from {main.name}; `newsletter check` lists what is still\n"
              "# untranslated.\n")
    target.write_text(header + "".join(kept), encoding="utf-8")
    return target


def shown(path: Path) -> str:
    """A path as the user would type it: relative to the working folder when below it."""
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


class _EditionReader(Reader):
    """Reports each problem at the file its YAML node came from: edition or main file."""

    def __init__(self, shown_path: str, main_shown: str, main_nodes: set[int]) -> None:
        super().__init__(shown_path)
        self.main_shown, self.main_nodes = main_shown, main_nodes

    def error(self, node: Node | None, field: str, message: str, line: int | None = None) -> None:
        super().error(node, field, message, line)
        if node is not None and id(node) in self.main_nodes:
            self.problems[-1] = replace(self.problems[-1], path=self.main_shown)


def _load(language: str, path: Path, main: Issue, main_root: Node,
          reader: _EditionReader) -> Edition | None:
    root = _tree(path, reader.shown_path)
    if not root.is_mapping:
        reader.error(root, "(top level)", "expected the fields this edition translates, such "
                     "as subject: and items:")
        return None
    for key in SHARED_FIELDS:
        if key in root.value:
            reader.error(root.value[key], key, f"belongs to the whole issue, which every "
                         f"edition shares: set it in {reader.main_shown} only",
                         line=root.key_lines.get(key))
    for key in LIST_FIELDS:
        ours, theirs = root.value.get(key), main_root.value.get(key)
        if ours is not None and ours.is_sequence and theirs is not None and theirs.is_sequence:
            count = len(theirs.value)
            what = ENTRIES[key][count != 1]
            for extra in ours.value[count:]:
                reader.error(extra, extra.path, f"{reader.main_shown} has {count} {what}: an "
                             "edition translates them in the same order and cannot add one "
                             "(add it to the main file first)")
    issue = read_issue(reader, _overlay(main_root, root), main.source)
    if issue is None or reader.problems:
        return None
    issue = replace(issue, source=path, lines={key: node.line for key, node in root.value.items()})
    notes = _notes(main_root, root, language, reader.shown_path, reader.main_shown)
    return Edition(language, issue, tuple(notes))


def _overlay(main: Node, edition: Node) -> Node:
    """The main tree with the edition's values in place of its own, lists item by item."""
    if main.is_mapping and edition.is_mapping:
        merged, lines = dict(main.value), dict(main.key_lines)
        for key, node in edition.value.items():
            merged[key] = _overlay(main.value[key], node) if key in main.value else node
            lines[key] = edition.key_lines.get(key, node.line)
        return Node(merged, edition.line, edition.path, key_lines=lines)
    if main.is_sequence and edition.is_sequence:
        laid = [_overlay(ours, theirs) for ours, theirs in zip(main.value, edition.value,
                                                                strict=False)]
        return Node(laid + main.value[len(edition.value):], edition.line, edition.path)
    return edition


def _walk(node: Node) -> list[Node]:
    children = node.value.values() if node.is_mapping else node.value if node.is_sequence \
        else ()
    return [node, *(found for child in children for found in _walk(child))]


def _at(node: Node | None, dotted: str) -> Node | None:
    for key in dotted.split("."):
        if node is None or not node.is_mapping:
            return None
        node = node.value.get(key)
    return node if node is not None and isinstance(node.value, str) and node.value.strip() \
        else None


def _pairs(main: Node, edition: Node) -> list[tuple[str, Node, Node | None]]:
    """(field, the main file's text, the edition's or None) for every translatable text."""
    found = [(key, _at(main, key), _at(edition, key)) for key in TEXT_FIELDS]
    for key, fields in LIST_FIELDS.items():
        ours, theirs = main.value.get(key), edition.value.get(key)
        entries = ours.value if ours is not None and ours.is_sequence else []
        translated = theirs.value if theirs is not None and theirs.is_sequence else []
        for index, entry in enumerate(entries):
            other = translated[index] if index < len(translated) else None
            found += [(f"{key}[{index}].{name}", _at(entry, name), _at(other, name))
                      for name in fields]
    return [(field, ours, theirs) for field, ours, theirs in found if ours is not None]


def _notes(main: Node, edition: Node, language: str, shown_path: str,
           main_shown: str) -> list[Problem]:
    """Warnings about the translation: fields left out, texts much shorter than the main."""
    notes = []
    total_main = total_edition = 0
    for field, ours, theirs in _pairs(main, edition):
        if theirs is None:
            notes.append(Problem(main_shown, ours.line, field, f"not translated in the "
                                 f"{language} edition ({shown_path}): its readers get this "
                                 "text", "warning"))
            continue
        main_text, text = ours.value.strip(), theirs.value.strip()
        total_main, total_edition = total_main + len(main_text), total_edition + len(text)
        sentences = field in ("subject", "preheader") or _name(field) in MARKDOWN_FIELDS
        if text == main_text and (sentences or len(text) >= SAME_MIN_CHARS):
            notes.append(Problem(shown_path, theirs.line, field, f"the same text as "
                                 f"{main_shown}:{ours.line}: not translated yet?", "warning"))
            continue
        if _name(field) not in MARKDOWN_FIELDS:
            continue
        paragraphs, main_paragraphs = _paragraphs(text), _paragraphs(main_text)
        if paragraphs < main_paragraphs:
            notes.append(Problem(shown_path, theirs.line, field, f"{paragraphs} paragraph(s) "
                                 f"where {main_shown}:{ours.line} has {main_paragraphs}: a "
                                 "forgotten paragraph?", "warning"))
        elif len(main_text) >= SHORT_MIN_CHARS and len(text) < SHORT_RATIO * len(main_text):
            notes.append(Problem(shown_path, theirs.line, field, f"{_share(text, main_text)} "
                                 f"as long as in {main_shown}:{ours.line}: a forgotten "
                                 "sentence?", "warning"))
    if total_main >= SHORT_MIN_CHARS and total_edition < SHORT_RATIO * total_main:
        notes.append(Problem(shown_path, None, "", f"the {language} edition's text is "
                             f"{total_edition * 100 // total_main}% as long as the main "
                             "file's: is something left out?", "warning"))
    return notes


def _name(field: str) -> str:
    return field.rpartition(".")[2]


def _paragraphs(text: str) -> int:
    return sum(1 for part in _PARAGRAPH_BREAK.split(text) if part.strip())


def _share(text: str, main_text: str) -> str:
    return f"{len(text) * 100 // len(main_text)}%"


def _tree(path: Path, display: str) -> Node:
    """The file's tree; its YAML syntax errors stop here, with their lines."""
    root, problems = load_tree(path, display)
    if problems:
        raise IssueFileError(problems)
    return root
