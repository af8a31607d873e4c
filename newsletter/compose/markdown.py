"""Markdown from the issue file -> safe HTML for the email and plain text for its text part.

Raw HTML typed into a body is escaped (`html: False`), so user text can only ever produce
the markup Markdown itself allows. The text renderer walks the same tokens, so the plain
part says what the HTML says, with every link written out.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.token import Token

from ..grammar import PLACEHOLDER

WIDTH = 72


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # A personal value in a link (`[my page](https://x.org/?who=%%email%%)`) must reach the
    # message step as typed; Markdown would percent-encode it into `%25%25email%25%25`.
    parser = MarkdownIt("commonmark", {"html": False, "typographer": False}).disable("image")
    normalize = parser.normalizeLink

    def normalize_keeping_placeholders(url: str) -> str:
        found = [m.group() for m in PLACEHOLDER.finditer(url)]
        if not found:
            return normalize(url)
        numbers = iter(range(len(found)))
        marked = PLACEHOLDER.sub(lambda m: f"NLPLACEHOLDER{next(numbers)}X", url)
        return re.sub(r"NLPLACEHOLDER(\d+)X", lambda m: found[int(m.group(1))], normalize(marked))

    parser.normalizeLink = normalize_keeping_placeholders  # type: ignore[method-assign]
    return parser


@dataclass(frozen=True)
class MarkdownLink:
    """A link as written in Markdown, even one the renderer refuses to make (`javascript:`)."""

    href: str
    text: str
    line: int  # 0-based, within the Markdown source


@lru_cache(maxsize=1)
def _permissive_parser() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False, "typographer": False}).disable("image")
    parser.validateLink = lambda url: True  # type: ignore[method-assign]
    return parser


def links(source: str) -> list[MarkdownLink]:
    """Every link of `source` with its text and line, for `check` to judge."""
    found: list[MarkdownLink] = []
    for token in _permissive_parser().parse(source):
        if token.type != "inline" or token.map is None:
            continue
        line, href, parts = token.map[0], None, []
        for child in token.children or []:
            if child.type in ("softbreak", "hardbreak"):
                line += 1
            if child.type == "link_open":
                href, parts, start = str(child.attrGet("href") or ""), [], line
            elif child.type == "link_close" and href is not None:
                found.append(MarkdownLink(href, "".join(parts).strip(), start))
                href = None
            elif href is not None and child.type in ("text", "code_inline"):
                parts.append(child.content)
    return found


def to_html(source: str) -> str:
    return _parser().render(source).strip()


def to_inline_html(source: str) -> str:
    """A one-paragraph body without the surrounding <p>, for places that add their own."""
    return _parser().renderInline(source)


def to_text(source: str, width: int = WIDTH, indent: str = "") -> str:
    """Markdown -> wrapped plain text; links become `label <url>`."""
    blocks: list[str] = []
    bullet: list[str] = []
    ordinal: list[int] = []
    for token in _parser().parse(source):
        if token.type in ("bullet_list_open", "ordered_list_open"):
            bullet.append("-" if token.type == "bullet_list_open" else "1.")
            ordinal.append(int(token.attrGet("start") or 1))
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            bullet.pop()
            ordinal.pop()
        elif token.type == "inline":
            text = _inline_text(token.children or [])
            if token.map is not None and bullet:
                mark = "-" if bullet[-1] == "-" else f"{ordinal[-1]}."
                if bullet[-1] != "-":
                    ordinal[-1] += 1
                blocks.append(_wrap(text, width, indent + mark + " ", indent + "  "))
            else:
                blocks.append(_wrap(text, width, indent, indent))
        elif token.type in ("fence", "code_block"):
            blocks.append(textwrap.indent(token.content.rstrip("\n"), indent + "    "))
        elif token.type == "hr":
            blocks.append(indent + "-" * 20)
    return "\n\n".join(blocks)


def _inline_text(children: list[Token]) -> str:
    parts: list[str] = []
    href: list[str] = []
    start: list[int] = []
    for child in children:
        if child.type == "text" or child.type == "code_inline":
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" " if child.type == "softbreak" else "\n")
        elif child.type == "link_open":
            href.append(str(child.attrGet("href") or ""))
            start.append(len(parts))
        elif child.type == "link_close":
            url, first = href.pop(), start.pop()
            label = "".join(parts[first:]).strip()
            if url and url not in (label, f"mailto:{label}"):
                parts.append(f" <{url}>")
    return "".join(parts)


def _wrap(text: str, width: int, first: str, rest: str) -> str:
    lines = []
    for i, paragraph_line in enumerate(text.split("\n")):
        lines.append(textwrap.fill(paragraph_line, width=width, break_long_words=False,
                                   break_on_hyphens=False, initial_indent=first if i == 0 else rest,
                                   subsequent_indent=rest))
    return "\n".join(lines)


def wrap(text: str, width: int = WIDTH, indent: str = "") -> str:
    """Wrap plain text (not Markdown) the way the text part wraps everything else."""
    return _wrap(" ".join(text.split()), width, indent, indent)


def link_line(label: str, url: str, width: int = WIDTH, indent: str = "") -> str:
    """`label: url` on one line when it fits, else the URL alone on the line below."""
    line = f"{indent}{label}: {url}"
    if len(line) <= width:
        return line
    return f"{wrap(label + ':', width, indent)}\n{indent}{url}"
