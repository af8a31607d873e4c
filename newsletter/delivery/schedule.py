"""Which issues are due: `send_at`, the staleness window, approvals and the ledger's state.

Run every few minutes from cron, `send --due` calls `run_due`, which asks `plan_due` what
to do for each issue file: nothing (not scheduled, not due yet, already sent), start it,
resume it, or refuse it (late beyond the window, invalid, not approved), and reports what
happened to each. Times are compared in UTC.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..compose.folder import issue_files, slug_holders
from ..compose.issue import Issue, load_issue
from ..compose.render import ComposedEmail
from ..config import Settings
from ..database import open_database, utc_now
from ..errors import AlreadyRunning, IssueFileError, NewsletterError, NotReady
from ..states import ScheduleAction, SendState
from .campaign import Outcome
from .readiness import Shown, prepare_in_context
from .sends import SendRecord, find_send

log = logging.getLogger("newsletter")


@dataclass(frozen=True)
class Scheduled:
    """One issue file as the scheduler sees it."""

    path: Path
    shown: str
    slug: str
    send_at: dt.datetime | None
    action: ScheduleAction
    reason: str = ""
    send: SendRecord | None = None
    composed: ComposedEmail | None = None


@dataclass(frozen=True)
class Approval:
    content_hash: str
    approved_by: str
    approved_at: str


def plan_due(path: Path, shown_of: Shown, settings: Settings, connection: sqlite3.Connection,
             now: dt.datetime, *, allow_late: bool = False) -> Scheduled:
    """What `send --due` should do with the issue at `path` at `now`."""
    shown = shown_of(path)
    try:
        issue = load_issue(path, shown)
    except IssueFileError as exc:
        send_at = _raw_send_at(path)
        if send_at is not None and send_at > now:
            return Scheduled(path, shown, path.stem, send_at, ScheduleAction.WAIT,
                             f"not due before {_utc(send_at)}, but has errors: fix them")
        if send_at is None and not _mentions_send_at(path):
            return Scheduled(path, shown, path.stem, None, ScheduleAction.UNSCHEDULED)
        return Scheduled(path, shown, path.stem, send_at, ScheduleAction.REFUSE,
                         "has errors; nothing sent: " + str(exc))
    if issue.send_at is None:
        return Scheduled(path, shown, issue.slug, None, ScheduleAction.UNSCHEDULED)
    send = find_send(connection, issue.slug)
    base = Scheduled(path, shown, issue.slug, issue.send_at, ScheduleAction.WAIT, send=send)
    holders = slug_holders(path, issue.slug)
    if holders:
        return _replace(base, action=ScheduleAction.REFUSE, reason=(
            f"its slug {issue.slug!r} is the slug of {', '.join(map(shown_of, holders))}; "
            f"nothing sent: give {shown} its own slug"))
    if send is not None and send.state is SendState.COMPLETE and path.stem == issue.slug:
        return _replace(base, action=ScheduleAction.DONE, reason="sent")
    if issue.send_at > now:
        return _replace(base, reason=f"due at {_utc(issue.send_at)}")
    late = now - issue.send_at
    if send is None and late.total_seconds() > settings.late_window and not allow_late:
        window = _duration(dt.timedelta(seconds=settings.late_window))
        return _replace(base, action=ScheduleAction.REFUSE, reason=(
            f"{_duration(late)} late (window {window}); not started. Send it deliberately "
            f"with: newsletter send --due --allow-late, or newsletter send {shown}"))
    if not issue.lists:
        return _replace(base, action=ScheduleAction.REFUSE,
                        reason="no lists: in the issue file; nothing sent")
    try:
        composed = prepare_in_context(issue, settings, shown_of).composed
    except NotReady as exc:
        return _replace(base, action=ScheduleAction.REFUSE, reason="has errors; nothing sent: "
                        + "\n".join(str(e) for e in exc.errors))
    except NewsletterError as exc:
        return _replace(base, action=ScheduleAction.REFUSE, reason=f"cannot be composed: {exc}")
    if send is not None and send.state is SendState.COMPLETE:  # the same issue, as sent
        return _replace(base, action=ScheduleAction.DONE, reason="sent")
    if settings.require_approval:
        refusal = _approval_refusal(connection, issue, composed, shown)
        if refusal:
            return _replace(base, action=ScheduleAction.REFUSE, reason=refusal)
    action = ScheduleAction.START if send is None else ScheduleAction.RESUME
    return _replace(base, action=action, composed=composed)


@dataclass
class DueRun:
    """What `run_due` did with one issue file."""

    plan: Scheduled
    outcome: Outcome | None = None
    error: str = ""  # the send could not start or stopped on an error
    busy: bool = False  # another process was sending it

    @property
    def has_errors_to_fix(self) -> bool:
        """Not due yet, but invalid: worth a warning in every cron run until it is fixed."""
        return self.plan.action is ScheduleAction.WAIT and "errors" in self.plan.reason


@dataclass
class DueReport:
    """Every issue file `run_due` looked at, in order; `interrupted` if a signal stopped it."""

    runs: list[DueRun] = field(default_factory=list)
    interrupted: bool = False


def issues_folder(settings: Settings, folder: Path | None) -> Path:
    """The folder of issue files: `folder`, or issues/ beside newsletter.toml."""
    chosen = folder or settings.root / "issues"
    if not chosen.is_dir():
        raise NewsletterError(f"{chosen}: no such folder of issue files (give --issues DIR)")
    return chosen


def plan_all(settings: Settings, folder: Path, now: dt.datetime, shown: Callable[[Path], str],
             *, allow_late: bool = False) -> list[Scheduled]:
    """What `send --due` would do with each issue file of `folder` at `now`."""
    connection = open_database(settings.database_path)
    try:
        return [plan_due(path, shown, settings, connection, now, allow_late=allow_late)
                for path in issue_files(folder)]
    finally:
        connection.close()


def run_due(settings: Settings, folder: Path, now: dt.datetime,
            send: Callable[[Scheduled], Outcome], shown: Callable[[Path], str], *,
            allow_late: bool = False) -> DueReport:
    """Start or resume every due issue with `send`; log each step for cron's mail.

    `send` runs one campaign (the command line adds its progress and signal handling); a
    run it reports as interrupted ends the loop, so that Ctrl-C or SIGTERM stops cron's run.
    """
    report = DueReport()
    for plan in plan_all(settings, folder, now.astimezone(dt.UTC), shown,
                         allow_late=allow_late):
        run = DueRun(plan)
        report.runs.append(run)
        if run.has_errors_to_fix:
            log.warning("%s: warning: %s", plan.slug, plan.reason)
        if plan.action is ScheduleAction.REFUSE:
            log.error("%s: %s", plan.slug, plan.reason)
        if plan.action not in (ScheduleAction.START, ScheduleAction.RESUME):
            continue
        assert plan.composed is not None and plan.send_at is not None
        verb = "starting" if plan.action is ScheduleAction.START else "resuming"
        log.info("%s: due since %s; %s to %s", plan.slug, plan.send_at.isoformat(), verb,
                 ", ".join(plan.composed.issue.lists))
        try:
            run.outcome = send(plan)
        except AlreadyRunning as exc:
            log.info("%s: %s; leaving it to that run", plan.slug, exc)
            run.busy = True
            continue
        except NewsletterError as exc:
            log.error("%s: error: %s", plan.slug, exc)
            run.error = str(exc).splitlines()[0]
            continue
        if run.outcome.state is SendState.INTERRUPTED:
            report.interrupted = True
            break
    return report


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
