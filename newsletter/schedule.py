"""Which issues are due: `send_at`, the staleness window, approvals and the ledger's state.

Run every few minutes from cron, `send --due` asks `plan_due` what to do for each issue
file: nothing (not scheduled, not due yet, already sent), start it, resume it, or refuse
it (late beyond the window, invalid, not approved). Times are compared in UTC.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import yaml

from .compose import ComposedEmail, compose
from .config import Settings
from .database import utc_now
from .errors import IssueFileError, NewsletterError
from .issue import Issue, load_issue
from .ledger import SendRecord, find_send
from .lint import check

FINISHED = "complete"


@dataclass(frozen=True)
class Scheduled:
    """One issue file as the scheduler sees it."""

    path: Path
    shown: str
    slug: str
    send_at: dt.datetime | None
    action: str  # wait, start, resume, done, refuse, unscheduled
    reason: str = ""
    send: SendRecord | None = None
    composed: ComposedEmail | None = None


@dataclass(frozen=True)
class Approval:
    content_hash: str
    approved_by: str
    approved_at: str


def issue_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))


def plan_due(path: Path, shown: str, settings: Settings, connection: sqlite3.Connection,
             now: dt.datetime, *, allow_late: bool = False) -> Scheduled:
    """What `send --due` should do with the issue at `path` at `now`."""
    try:
        issue = load_issue(path, shown)
    except IssueFileError as exc:
        send_at = _raw_send_at(path)
        if send_at is not None and send_at > now:
            return Scheduled(path, shown, path.stem, send_at, "wait",
                             f"not due before {_utc(send_at)}, but has errors: fix them")
        if send_at is None and not _mentions_send_at(path):
            return Scheduled(path, shown, path.stem, None, "unscheduled")
        return Scheduled(path, shown, path.stem, send_at, "refuse",
                         "has errors; nothing sent:\n" + str(exc))
    if issue.send_at is None:
        return Scheduled(path, shown, issue.slug, None, "unscheduled")
    send = find_send(connection, issue.slug)
    base = Scheduled(path, shown, issue.slug, issue.send_at, "wait", send=send)
    if send is not None and send.state == FINISHED:
        return _replace(base, action="done", reason="sent")
    if issue.send_at > now:
        return _replace(base, reason=f"due at {_utc(issue.send_at)}")
    late = now - issue.send_at
    if send is None and late.total_seconds() > settings.late_window and not allow_late:
        window = _duration(dt.timedelta(seconds=settings.late_window))
        return _replace(base, action="refuse", reason=(
            f"{_duration(late)} late (window {window}); not started. Send it deliberately "
            f"with: newsletter send --due --allow-late, or newsletter send {shown}"))
    if not issue.lists:
        return _replace(base, action="refuse", reason="no lists: in the issue file; nothing sent")
    try:
        composed = compose(issue, settings)
    except NewsletterError as exc:
        return _replace(base, action="refuse", reason=f"cannot be composed: {exc}")
    errors = [f for f in check(composed, settings, shown) if f.severity == "error"]
    if errors:
        return _replace(base, action="refuse", reason="has errors; nothing sent:\n"
                        + "\n".join(str(e) for e in errors))
    if settings.require_approval:
        refusal = _approval_refusal(connection, issue, composed, shown)
        if refusal:
            return _replace(base, action="refuse", reason=refusal)
    action = "start" if send is None else "resume"
    return _replace(base, action=action, composed=composed)


def _replace(base: Scheduled, **changes: object) -> Scheduled:
    values = {**base.__dict__, **changes}
    return Scheduled(**values)  # type: ignore[arg-type]


def _approval_refusal(connection: sqlite3.Connection, issue: Issue, composed: ComposedEmail,
                      shown: str) -> str:
    approval = latest_approval(connection, issue.slug)
    if approval is None:
        return f"not approved (require_approval is on): run newsletter approve {shown}"
    if approval.content_hash != composed.content_hash:
        return (f"changed after {approval.approved_by} approved it on {approval.approved_at}; "
                f"nothing sent. Review it and run newsletter approve {shown} again")
    return ""


def approve(connection: sqlite3.Connection, slug: str, content_hash: str,
            approved_by: str) -> Approval:
    """Record that `approved_by` approved this exact version of the issue."""
    at = utc_now()
    connection.execute("INSERT INTO approvals (issue, content_hash, approved_by, approved_at) "
                       "VALUES (?, ?, ?, ?)", (slug, content_hash, approved_by, at))
    return Approval(content_hash, approved_by, at)


def latest_approval(connection: sqlite3.Connection, slug: str) -> Approval | None:
    row = connection.execute("SELECT content_hash, approved_by, approved_at FROM approvals "
                             "WHERE issue = ? ORDER BY id DESC LIMIT 1", (slug,)).fetchone()
    return Approval(*row) if row else None


def _raw_send_at(path: Path) -> dt.datetime | None:
    """`send_at` from a file that does not validate, when it can still be read."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        value = data.get("send_at") if isinstance(data, dict) else None
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        return value if isinstance(value, dt.datetime) and value.tzinfo else None
    except (yaml.YAMLError, OSError, ValueError, UnicodeDecodeError):
        return None


def _mentions_send_at(path: Path) -> bool:
    try:
        return "send_at" in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duration(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"
