"""Bulk sends into an outbox that cannot take them: a full disk, a read-only folder.

The outbox is a real small file system (a tmpfs mounted for the test, which needs root, as
CI runs) or, without root, a folder without write permission. Each test compares the
files in the outbox with the ledger: a recipient is `sent` exactly when their file is
there, nobody is `unknown`, and the same command writes the rest once there is room.
"""

from __future__ import annotations

import email
import email.policy
import os
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import configure

from newsletter.audience.store import NewRow, SubscriberStore, address_key

ISSUE = "issues/2020-01.yaml"
ROOT = os.geteuid() == 0
MESSAGE = 60_000  # bytes an .eml of the sample issue takes, about


def subscribe(project: Path, count: int) -> list[str]:
    emails = [f"reader{n}@example.org" for n in range(count)]
    with SubscriberStore(project / "newsletter.db") as store:
        store.merge([NewRow(n + 1, e, address_key(e), f"Reader {n}", {})
                     for n, e in enumerate(emails)], "members")
    return emails


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


@contextmanager
def small_disk(folder: Path, size: int) -> Iterator[Callable[[], None]]:
    """A tmpfs of `size` bytes at `folder`; the function it gives makes it large."""
    folder.mkdir()
    mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder))
    try:
        yield lambda: mount("-o", "remount,size=20m", str(folder))
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@contextmanager
def read_only(folder: Path) -> Iterator[Callable[[], None]]:
    """`folder` read-only (a read-only tmpfs as root); the function it gives fixes it."""
    folder.mkdir()
    if not ROOT:  # root writes anywhere: only a read-only file system stops it
        folder.chmod(0o555)
        yield lambda: folder.chmod(0o755)
        return
    mount("-t", "tmpfs", "-o", "ro,size=20m", "tmpfs", str(folder))
    try:
        yield lambda: mount("-o", "remount,rw", str(folder))
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def in_outbox(folder: Path) -> Counter[str]:
    """The recipient of every message file in the outbox."""
    assert not list(folder.glob("*.part")), "half-written files left behind"
    return Counter(email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                   ["To"].addresses[0].addr_spec for path in folder.glob("*.eml"))


def ledger(project: Path) -> dict[str, list[str]]:
    """The addresses of the send by state, from the database itself."""
    by_state: dict[str, list[str]] = {}
    with sqlite3.connect(project / "newsletter.db") as db:
        for state, address in db.execute("SELECT state, email FROM deliveries ORDER BY id"):
            by_state.setdefault(state, []).append(address)
    return by_state


def send(cli):  # type: ignore[no-untyped-def]
    return cli("send", ISSUE, "--list", "members", "--yes")


@pytest.mark.skipif(not ROOT, reason="mounting a small file system needs root")
def test_a_full_disk_stops_the_send_and_leaves_the_unwritten_pending(project: Path,
                                                                   cli) -> None:
    emails = subscribe(project, 40)
    configure(project, batch_size=5, connections=1)
    outbox = project / "outbox"
    with small_disk(outbox, 7 * MESSAGE) as make_room:
        result = send(cli)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert f"outbox {outbox}: cannot write messages (No space left on device)" \
            in result.stderr
        assert "to resume: newsletter send issues/2020-01.yaml --list members" in result.stderr
        written, states = in_outbox(outbox), ledger(project)
        assert Counter(states["sent"]) == written and 0 < len(written) < 40
        assert set(states) == {"sent", "pending"}  # none unknown: none of those left
        make_room()
        again = send(cli)
        assert again.returncode == 0, again.stderr
        assert in_outbox(outbox) == Counter(emails)
    assert set(ledger(project)) == {"sent"}


def test_a_read_only_outbox_sends_nothing_and_the_same_command_completes_later(
        project: Path, cli) -> None:
    emails = subscribe(project, 12)
    configure(project, batch_size=5)
    outbox = project / "outbox"
    with read_only(outbox) as fix:
        result = send(cli)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert f"outbox {outbox}: cannot write messages (" in result.stderr
        assert "Read-only file system" in result.stderr or "Permission denied" in result.stderr
        assert ledger(project) == {"pending": emails}
        fix()
        again = send(cli)
        assert again.returncode == 0, again.stderr
        assert in_outbox(outbox) == Counter(emails)
