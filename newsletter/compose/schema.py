"""Typed reading of located YAML nodes, collecting every problem instead of stopping at one."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

from ..errors import Problem
from .yamlsource import Node, child_path

_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
_MAILTO = re.compile(r"^mailto:[^\s@]+@[^\s@]+$", re.IGNORECASE)
_DATE_SHAPE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\u2028\u2029]")


def shorten(value: Any, limit: int = 60) -> str:
    """A value as an error message quotes it; lists and mappings by kind, not by contents."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


class Reader:
    """Reads fields of one file; problems accumulate in `problems`."""

    def __init__(self, shown_path: str) -> None:
        self.shown_path = shown_path
        self.problems: list[Problem] = []

    def error(self, node: Node | None, field: str, message: str, line: int | None = None) -> None:
        self.problems.append(Problem(self.shown_path, line or (node.line if node else None),
                                     field, message))

    def mapping(self, node: Node, allowed: Iterable[str], required: Iterable[str] = ()) -> bool:
        """Check that `node` is a mapping with only `allowed` keys and every `required` one."""
        if not node.is_mapping:
            self.error(node, node.path or "(top level)",
                       f"expected a mapping of fields, got {shorten(node.value)}")
            return False
        allowed = set(allowed)
        for key in node.value:
            if key not in allowed:
                close = _closest(key, allowed)
                hint = f" (did you mean '{close}'?)" if close else ""
                self.error(node, child_path(node.path, key),
                           f"unknown field{hint}; expected one of: {', '.join(sorted(allowed))}",
                           line=node.key_lines.get(key))
        for key in required:
            if key not in node.value or node.value[key].value is None:
                line = node.key_lines.get(key, node.line)
                self.error(node, child_path(node.path, key), "required field is missing",
                           line=line)
        return True

    def sequence(self, node: Node | None, what: str) -> list[Node]:
        if node is None or node.value is None:
            return []
        if not node.is_sequence:
            self.error(node, node.path, f"expected a list of {what}, got {shorten(node.value)}")
            return []
        return node.value

    def text(self, node: Node | None, *, max_length: int = 10_000) -> str | None:
        if node is None or node.value is None:
            return None
        value = node.value
        if not isinstance(value, str):
            if node.raw is not None and not isinstance(value, (dict, list)):
                value = node.raw  # `title: No` or `number: 12` meant as text
            else:
                self.error(node, node.path, f"expected text, got {shorten(value)}")
                return None
        value = value.strip()
        if _BAD_CHARS.search(value):
            self.error(node, node.path, "expected printable text, got control characters")
            return None
        if len(value) > max_length:
            self.error(node, node.path, f"expected at most {max_length} characters, "
                                        f"got {len(value)}")
            return None
        return value

    def one_line(self, node: Node | None, *, max_length: int = 500) -> str | None:
        value = self.text(node, max_length=max_length)
        if value is not None and ("\n" in value or "\r" in value):
            self.error(node, node.path if node else "", "expected a single line of text")
            return None
        return value

    def url(self, node: Node | None, *, allow_mailto: bool = False) -> str | None:
        value = self.text(node, max_length=2000)
        if value is None:
            return None
        if _URL.match(value) or (allow_mailto and _MAILTO.match(value)):
            return value
        expected = "an http(s) or mailto: URL" if allow_mailto else "an http(s) URL"
        self.error(node, node.path if node else "", f"expected {expected}, got {shorten(value)}")
        return None

    def boolean(self, node: Node | None, default: bool = False) -> bool:
        if node is None or node.value is None:
            return default
        if isinstance(node.value, bool):
            return node.value
        self.error(node, node.path, f"expected true or false, got {shorten(node.value)}")
        return default

    def integer(self, node: Node | None) -> int | None:
        if node is None or node.value is None:
            return None
        if isinstance(node.value, int) and not isinstance(node.value, bool):
            return node.value
        self.error(node, node.path, f"expected a whole number, got {shorten(node.value)}")
        return None

    def date(self, node: Node | None) -> dt.date | None:
        if node is None or node.value is None:
            return None
        value = node.value
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        reason = ""
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError as exc:  # `2020-02-30` has the right shape: say what is wrong
                reason = f" ({exc})" if _DATE_SHAPE.match(value.strip()) else ""
        self.error(node, node.path, f"expected a date like 2020-01-15, got {shorten(value)}"
                                    f"{reason}")
        return None

    def aware_datetime(self, node: Node | None) -> dt.datetime | None:
        """A date and time that names its time zone (`2020-01-15T09:00+01:00`)."""
        if node is None or node.value is None:
            return None
        value = node.value
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value.strip())
            except ValueError:
                value = None
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                self.error(node, node.path, "expected a time zone, as in 2020-01-15T09:00+01:00"
                           f", got {shorten(str(node.value))} without one")
                return None
            return value
        self.error(node, node.path, "expected a date and time like 2020-01-15T09:00+01:00, "
                                    f"got {shorten(node.value)}")
        return None


def _closest(key: str, allowed: set[str]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.75)
    return matches[0] if matches else None
