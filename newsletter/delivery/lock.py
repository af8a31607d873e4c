"""One sender per issue: an exclusive lock on a file that dies with its process.

`flock` is released by the kernel when the process exits, however it exits, so a killed
run never leaves a stale lock; the file only carries the holder's pid for the message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from ..errors import AlreadyRunning, StoreError


class SendLock:
    def __init__(self, database: Path, issue: str, *, activity: str = "") -> None:
        self.issue = issue
        self.activity = activity or f"sending {issue}"  # for the message when it is taken
        self.path = database.with_name(f"{database.name}-{issue}.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create the send lock: {exc.strerror}; is "
                             "the database folder there and writable?") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise AlreadyRunning(f"already running (pid {holder}): another newsletter "
                                 f"process is {self.activity}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing releases the flock
            self._fd = None

    def __enter__(self) -> SendLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.release()
