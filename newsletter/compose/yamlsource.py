"""Load YAML with safe_load semantics while remembering the line of every value.

Validation errors must point at `file:line`, which plain `yaml.safe_load` forgets; so the
file is composed into nodes (keeping their marks) and converted by hand into `Node`s.

Issue files come from people, and some from elsewhere: the conversion never expands an
alias (a few hundred bytes of nested aliases would expand to gigabytes), refuses tags other
than YAML's plain types, and keeps going after each problem so that all are reported.
Syntax errors are explained in plain words for the common cases (a tab, an unquoted `: `,
an unclosed quote), and the rest of the file is still read past them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import IssueFileError, Problem

MAX_BYTES = 1_000_000  # an issue is a few KB; a bigger file is a mistake or an attack
MAX_SYNTAX_ERRORS = 10
_PLAIN_TAGS = {f"tag:yaml.org,2002:{name}" for name in
               ("str", "int", "float", "bool", "null", "timestamp", "map", "seq", "value")}

try:  # libyaml is much faster; both loaders give the same safe semantics
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]


@dataclass
class Node:
    """A YAML value with its location: `value` is a dict or list of Nodes, or a scalar."""

    value: Any
    line: int
    path: str
    raw: str | None = None  # the scalar text as written, for friendlier type coercion
    key_lines: dict[str, int] = field(default_factory=dict)
    block: bool = False  # a `|` or `>` scalar: its text starts on the line after `line`

    @property
    def is_mapping(self) -> bool:
        return isinstance(self.value, dict)

    @property
    def is_sequence(self) -> bool:
        return isinstance(self.value, list)

    def locate(self, needle: str) -> list[tuple[int, str]]:
        """(line, field) of every text value below this node that contains `needle`."""
        found: list[tuple[int, str]] = []
        if isinstance(self.value, dict):
            for child in self.value.values():
                found += child.locate(needle)
        elif isinstance(self.value, list):
            for child in self.value:
                found += child.locate(needle)
        elif isinstance(self.value, str) and needle in self.value:
            found.append((self.line_of(self.value.index(needle)), self.path))
        return found

    def line_at(self, index: int) -> int:
        """The file line of line `index` (from 0) of this text (exact for `|` blocks)."""
        return self.line + 1 + index if self.block else self.line

    def line_of(self, offset: int) -> int:
        """The file line of character `offset` of this text (exact for `|` blocks)."""
        if not self.block or not isinstance(self.value, str):
            return self.line
        return self.line + 1 + self.value.count("\n", 0, offset)


def child_path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def load_tree(path: Path, display: str | None = None) -> tuple[Node, list[Problem]]:
    """Parse `path` into Nodes, with the problems of its YAML (syntax, aliases, tags).

    Only an unreadable file raises; after a syntax error the offending line is set aside
    and the rest is parsed, so that the validation of the fields can go on.
    """
    shown = display or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise IssueFileError([Problem(shown, None, "", f"{size:,} bytes; an issue file is "
                                          f"at most {MAX_BYTES:,} (is this the right file?)")])
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise IssueFileError([Problem(shown, None, "", "no such file")]) from None
    except IsADirectoryError:
        raise IssueFileError([Problem(shown, None, "", "a folder, not an issue file")]) from None
    except UnicodeDecodeError as exc:
        raise IssueFileError([Problem(shown, None, "", f"not UTF-8 text ({exc.reason})")]) from None
    problems: list[Problem] = []
    lines = text.split("\n")
    for _ in range(MAX_SYNTAX_ERRORS):
        try:
            root = _compose("\n".join(lines))
            break
        except yaml.MarkedYAMLError as exc:
            problem, broken = _syntax_problem(exc, lines, shown)
            problems.append(problem)
            if broken is None or not lines[broken].strip():
                return Node({}, 1, ""), problems
            lines[broken] = ""  # set the line aside, keep the numbering
        except yaml.YAMLError as exc:
            problems.append(Problem(shown, None, "", f"YAML syntax error: {exc}"))
            return Node({}, 1, ""), problems
    else:
        return Node({}, 1, ""), problems
    if root is None:
        return Node({}, 1, ""), problems
    converter = _Converter(shown, "\n".join(lines))
    node = converter.convert(root, "")
    return node, problems + converter.problems


def _compose(text: str) -> yaml.Node | None:
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _syntax_problem(exc: yaml.MarkedYAMLError, lines: list[str],
                    shown: str) -> tuple[Problem, int | None]:
    """The error in plain words where a common mistake explains it, and the line to skip."""
    mark, start = exc.problem_mark or exc.context_mark, exc.context_mark
    index = mark.line if mark else None
    text = lines[index] if index is not None and index < len(lines) else ""
    column = f"column {mark.column + 1}: " if mark else ""
    what = exc.problem or exc.context or "invalid YAML"
    if exc.problem and exc.context and start and mark and start.line != mark.line:
        what += f" ({exc.context} at line {start.line + 1}, column {start.column + 1})"
    found = text[mark.column:mark.column + 1] if mark else ""
    indent = text[:len(text) - len(text.lstrip(" \t"))]
    if found == "\t" or "\t" in indent:
        what = "a tab in the indentation: indent with spaces, not tabs"
    elif "mapping values are not allowed" in (exc.problem or "") and _value_with_colon(text):
        key = text.split(":", 1)[0].strip().lstrip("- ")
        what = (f"the value of {key!r} contains ': ': put the value in double quotes, as in "
                f"{key}: \"...: ...\"")
    elif "while scanning a quoted scalar" in (exc.context or "") and start:
        what = ("this quote is never closed: add the closing quote (inside double quotes, "
                "write \\\" for a quote)")
        index, column = start.line, f"column {start.column + 1}: "
    elif "found undefined alias" in (exc.problem or ""):
        what = "'*' starts an alias in YAML: put the value in double quotes"
    return Problem(shown, index + 1 if index is not None else None, "",
                   f"{column}YAML syntax error: {what}"), index


def _value_with_colon(line: str) -> bool:
    """`title: BRIDGE: a visit`: a key, then a plain value that itself holds ': '."""
    key, sep, value = line.partition(": ")
    value = value.strip()
    return bool(sep) and ": " in value + " " and not value.startswith(("\"", "'", "|", ">"))


class _Converter:
    """YAML nodes -> Nodes, each node once: an alias is refused, never expanded."""

    def __init__(self, shown: str, text: str) -> None:
        self.shown, self.text = shown, text
        self.problems: list[Problem] = []
        self.seen: set[int] = set()
        self.alias_lines: list[int] | None = None

    def problem(self, line: int, path: str, message: str) -> None:
        self.problems.append(Problem(self.shown, line, path, message))

    def convert(self, node: yaml.Node, path: str) -> Node:
        line = node.start_mark.line + 1
        if id(node) in self.seen:  # composed once, met again: an alias (*name)
            alias_line = self._alias_line(line)
            if not any(p.line == alias_line for p in self.problems):  # once a line
                self.problem(alias_line, path, "aliases (*name) are not allowed in an issue "
                                               "file: write the value out in full")
            return Node(None, line, path)
        self.seen.add(id(node))
        if node.tag not in _PLAIN_TAGS:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            self.problem(line, path, f"the tag {tag} is not allowed in an issue file: remove it "
                                     "(values are text, numbers, dates, lists and mappings)")
            return Node(None, line, path)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, line)
        if isinstance(node, yaml.SequenceNode):
            return Node([self.convert(n, child_path(path, i)) for i, n in enumerate(node.value)],
                        line, path)
        constructor = yaml.constructor.SafeConstructor()
        try:
            value = constructor.construct_object(node, deep=True)
        except (yaml.constructor.ConstructorError, ValueError):
            # `2020-02-30` looks like a date to YAML but is none: keep the text, so that a
            # text field accepts it and a date field reports it as a date it cannot read.
            value = node.value
        # only plain (unquoted) scalars; libyaml marks them with style '', PyYAML with None
        raw = node.value if not node.style else None
        return Node(value, line, path, raw=raw if isinstance(raw, str) else None,
                    block=node.style in ("|", ">"))

    def _mapping(self, node: yaml.MappingNode, path: str, line: int) -> Node:
        items: dict[str, Node] = {}
        key_lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(key_line, path, "expected a plain key, got a list or mapping")
                continue
            key = key_node.value
            if key in items:
                self.problem(key_line, child_path(path, key), "duplicate key")
                continue
            items[key] = self.convert(value_node, child_path(path, key))
            key_lines[key] = key_line
        return Node(items, line, path, key_lines=key_lines)

    def _alias_line(self, anchored_line: int) -> int:
        """The line of the next alias event: composed nodes do not keep where aliases were."""
        if self.alias_lines is None:
            self.alias_lines = [event.start_mark.line + 1 for event in
                                yaml.parse(self.text, Loader=_Loader)
                                if isinstance(event, yaml.AliasEvent)]
        return self.alias_lines.pop(0) if self.alias_lines else anchored_line
