"""A theme fetches nothing: no @import, web font, remote image or CSS url().

Anything a theme loads from elsewhere is fetched by every reader's mail client when the
email opens (a tracking pixel by another name, and blocked by most clients), and an
@import was fetched at every build too. Each is an error at the theme file's line.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import Problem

THEME_FILES = ("*.css", "*.j2", "*.mjml", "*.html")
FETCHES = (
    (re.compile(r"@import\b", re.IGNORECASE), "@import loads a stylesheet from elsewhere"),
    (re.compile(r"<mj-font\b", re.IGNORECASE), "<mj-font> loads a web font from elsewhere"),
    (re.compile(r"@font-face\b", re.IGNORECASE), "@font-face loads a web font"),
    (re.compile(r"(?<![.\w])url\s*\(", re.IGNORECASE), "CSS url() loads a file"),
    (re.compile(r"<link\b", re.IGNORECASE), "<link> loads a stylesheet from elsewhere"),
    (re.compile(r"""\b(?:src|background|background-url)\s*=\s*["']?(?:https?:)?//""",
                re.IGNORECASE), "a remote image"),
)


def theme_findings(template_dir: Path) -> list[Problem]:
    """Every line of the theme's files that would fetch something from the network."""
    findings = []
    files = sorted({p for pattern in THEME_FILES for p in template_dir.rglob(pattern)})
    for path in files:
        shown = _shown(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue  # the composer reports an unreadable template
        for number, line in enumerate(lines, start=1):
            for pattern, what in FETCHES:
                if pattern.search(line):
                    findings.append(Problem(shown, number, "theme", f"{what}: the email must "
                                            "load nothing from elsewhere; put what it needs in "
                                            "the theme, or use the issue's images"))
                    break
    return findings


def _shown(path: Path) -> str:
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative
