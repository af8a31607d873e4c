"""What a storage failure means for a send: one StoreError that says what went wrong, in
which file, and what to do, instead of sqlite3's or the journal's own exception.

The ledger's methods are wrapped with `guarded`: the database locked by another program
for longer than its busy timeout, a full disk, a journal that cannot be written.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from ..errors import StoreError

_F = TypeVar("_F", bound=Callable[..., object])


class Stored(Protocol):
    """Where a ledger keeps things: for the messages."""

    database: Path
    journal_path: Path
    busy_timeout: float


def guarded(method: _F) -> _F:
    """Storage errors of a ledger method become a StoreError that names the file."""
    @functools.wraps(method)
    def wrapper(self: Stored, *args: object, **kwargs: object) -> object:
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.Error, OSError) as exc:
            raise storage_error(self, exc) from None
    return wrapper  # type: ignore[return-value]


def storage_error(where: Stored, exc: BaseException) -> StoreError:
    """What went wrong with the storage, in which file, and what to do about it."""
    if isinstance(exc, OSError):
        error = StoreError(f"{where.journal_path}: cannot write the send journal "
                           f"({exc.strerror or exc}); the send stopped and nothing was lost")
        error.hint = "Make room or fix the folder, then run the same command again to resume."
        return error
    name = getattr(exc, "sqlite_errorname", "")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        error = StoreError(f"{where.database}: the database stayed locked by another program "
                           f"for more than {where.busy_timeout:g} s (a backup, or sqlite3 open "
                           "in a terminal?); the send stopped and nothing was lost")
        error.hint = ("Once that program has let go of the database, run the same command "
                      "again to resume.")
    elif name == "SQLITE_FULL":
        error = StoreError(f"{where.database}: the disk is full; the send stopped and nothing "
                           "was lost")
        error.hint = "Make room, then run the same command again to resume."
    else:
        error = StoreError(f"{where.database}: {exc}; the send stopped and nothing was lost")
        error.hint = "Fix the problem, then run the same command again to resume."
    return error
