"""The line of a field in the issue file, for findings made on the composed email.

Lint rules that read the final HTML find an image, a heading or a link; the issue says
which item it came from, and this says on which line of the file that item's field is.
The file is parsed again only when a finding needs a line.
"""

from __future__ import annotations

from functools import cached_property

from ..errors import NewsletterError
from .issue import Issue
from .yamlsource import Node, load_tree


class Locator:
    """`Locator(issue).line("items", 3, "image", "alt")` -> 42, or None if not in the file."""

    def __init__(self, issue: Issue) -> None:
        self.issue = issue

    @cached_property
    def _root(self) -> Node | None:
        try:
            return load_tree(self.issue.source)[0]
        except (NewsletterError, OSError):  # an issue not read from a file
            return None

    def line(self, *path: str | int) -> int | None:
        node = self._root
        for step in path:
            if node is None:
                return None
            if isinstance(step, int):
                node = node.value[step] if node.is_sequence and step < len(node.value) else None
            else:
                node = node.value.get(step) if node.is_mapping else None
        return node.line if node is not None else None
