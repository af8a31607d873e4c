"""One log for every command, the cron runs and `serve`: timestamped lines on stderr.

The core logs to the `newsletter` logger and never prints; `-v` adds the debug lines
(the requests a mail-service transport makes, secrets redacted), `-q` keeps warnings and
errors only, and `[schedule] log_file` appends every line to a file as well.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

LOGGER = logging.getLogger("newsletter")
FORMAT = logging.Formatter("%(asctime)s %(message)s", datefmt="%Y-%m-%d %H:%M:%S")


def configure(verbosity: int) -> None:
    """Log to stderr at INFO, DEBUG with verbosity > 0, WARNING with verbosity < 0."""
    level = logging.DEBUG if verbosity > 0 else logging.WARNING if verbosity < 0 \
        else logging.INFO
    LOGGER.setLevel(level)
    for old in [h for h in LOGGER.handlers if type(h) is logging.StreamHandler]:
        LOGGER.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(FORMAT)
    LOGGER.addHandler(handler)
    LOGGER.propagate = False


def also_to_file(path: Path) -> None:
    """Append every log line to `path` too (the [schedule] log_file setting)."""
    target = str(path.resolve())
    if any(isinstance(h, logging.FileHandler) and h.baseFilename == target
           for h in LOGGER.handlers):
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(FORMAT)
    LOGGER.addHandler(handler)
