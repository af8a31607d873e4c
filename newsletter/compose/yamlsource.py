"""Load YAML with safe_load semantics while remembering the line of every value.

Validation errors must point at `file:line`, which plain `yaml.safe_load` forgets; so the
file is composed into nodes (keeping their marks) and converted by hand into `Node`s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import IssueFileError, Problem

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

    @property
    def is_mapping(self) -> bool:
        return isinstance(self.value, dict)

    @property
    def is_sequence(self) -> bool:
        return isinstance(self.value, list)


def child_path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def load(path: Path, display: str | None = None) -> Node:
    """Parse `path`; YAML syntax errors become an IssueFileError with line and column."""
    shown = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise IssueFileError([Problem(shown, None, "", "no such file")]) from None
    except UnicodeDecodeError as exc:
        raise IssueFileError([Problem(shown, None, "", f"not UTF-8 text ({exc.reason})")]) from None
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = f"column {mark.column + 1}: " if mark else ""
        what = exc.problem or exc.context or "invalid YAML"
        start = exc.context_mark
        if exc.problem and exc.context and start and mark and start.line != mark.line:
            what += f" ({exc.context} at line {start.line + 1}, column {start.column + 1})"
        problem = Problem(shown, line, "", f"{column}YAML syntax error: {what}")
        raise IssueFileError([problem]) from None
    except yaml.YAMLError as exc:
        raise IssueFileError([Problem(shown, None, "", f"YAML syntax error: {exc}")]) from None
    finally:
        loader.dispose()
    if root is None:
        return Node({}, 1, "")
    problems: list[Problem] = []
    node = _convert(root, "", shown, problems)
    if problems:
        raise IssueFileError(problems)
    return node


def _convert(node: yaml.Node, path: str, shown: str, problems: list[Problem]) -> Node:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        items: dict[str, Node] = {}
        key_lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(Problem(shown, key_node.start_mark.line + 1, path,
                                        "expected a plain key, got a list or mapping"))
                continue
            key = key_node.value
            if key in items:
                problems.append(Problem(shown, key_node.start_mark.line + 1,
                                        child_path(path, key), "duplicate key"))
                continue
            items[key] = _convert(value_node, child_path(path, key), shown, problems)
            key_lines[key] = key_node.start_mark.line + 1
        return Node(items, line, path, key_lines=key_lines)
    if isinstance(node, yaml.SequenceNode):
        return Node([_convert(n, child_path(path, i), shown, problems)
                     for i, n in enumerate(node.value)], line, path)
    constructor = yaml.constructor.SafeConstructor()
    try:
        value = constructor.construct_object(node, deep=True)
    except (yaml.constructor.ConstructorError, ValueError):
        # `2020-02-30` looks like a date to YAML but is none: keep the text, so that a text
        # field accepts it and a date field reports it as a date it cannot read.
        value = node.value
    # only plain (unquoted) scalars; libyaml marks them with style '', PyYAML with None
    raw = node.value if not node.style else None
    return Node(value, line, path, raw=raw if isinstance(raw, str) else None)
