"""Scheduled sends: `send --due` (for cron), `schedule` (what is planned) and `approve`."""

from __future__ import annotations

import datetime as dt
import getpass
from pathlib import Path

import click

from ..config import Settings
from ..errors import AlreadyRunning, NewsletterError
from .common import settings_for, shown
from .progress import log, log_to


def register(cli: click.Group) -> None:
    cli.add_command(schedule)
    cli.add_command(approve)


def _issues_folder(settings: Settings, issues_dir: Path | None) -> Path:
    folder = issues_dir or settings.root / "issues"
    if not folder.is_dir():
        raise NewsletterError(f"{folder}: no such folder of issue files (give --issues DIR)")
    return folder


def run_due(ctx: click.Context, issues_dir: Path | None, url: str | None, *,
            allow_late: bool, now: dt.datetime | None) -> int:
    """Send or resume every due issue; the exit status for cron: 0 all went, else 1."""
    from ..database import open_database
    from ..schedule import issue_files, plan_due
    from .send import ending, run_campaign

    settings = settings_for(ctx, issues_dir)
    if settings.log_file:
        log_to(settings.path(settings.log_file))
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    connection = open_database(settings.database_path)
    try:
        plans = [plan_due(path, shown(path), settings, connection, moment,
                          allow_late=allow_late)
                 for path in issue_files(_issues_folder(settings, issues_dir))]
    finally:
        connection.close()
    failures = []
    for plan in plans:
        if plan.action == "wait" and "errors" in plan.reason:
            log(f"{plan.slug}: warning: {plan.reason}")
        if plan.action == "refuse":
            log(f"{plan.slug}: {plan.reason}")
            failures.append(f"{plan.slug}: {plan.reason.splitlines()[0]}")
        if plan.action not in ("start", "resume"):
            continue
        assert plan.composed is not None and plan.send_at is not None
        targets = plan.composed.issue.lists
        log(f"{plan.slug}: due since {plan.send_at.isoformat()}; "
            f"{'starting' if plan.action == 'start' else 'resuming'} to {', '.join(targets)}")
        try:
            outcome, received = run_campaign(plan.composed, settings, targets, url, plan.path,
                                             yes=True)
        except AlreadyRunning as exc:
            log(f"{plan.slug}: {exc}; leaving it to that run")
            continue
        except NewsletterError as exc:
            log(f"{plan.slug}: error: {exc}")
            failures.append(f"{plan.slug}: {str(exc).splitlines()[0]}")
            continue
        code, problem = ending(outcome, received, plan.path, targets)
        if received:
            log(f"{plan.slug}: {problem}")
            return code
        if code:
            log(f"{plan.slug}: {problem}")
            failures.append(f"{plan.slug}: {problem.removeprefix('error: ')}")
    if failures:
        click.echo("; ".join(failures), err=True)
        return 1
    return 0


@click.command()
@click.option("--issues", "issues_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Folder of issue files (default: issues/ beside "
                                 "newsletter.toml).")
@click.pass_context
def schedule(ctx: click.Context, issues_dir: Path | None) -> None:
    """List scheduled issues: when each is due and how its send stands.

    \b
    Example:
      newsletter schedule
    """
    from ..database import open_database
    from ..report import summarise
    from ..schedule import issue_files, plan_due

    settings = settings_for(ctx, issues_dir)
    now = dt.datetime.now(dt.UTC)
    connection = open_database(settings.database_path)
    try:
        rows = []
        for path in issue_files(_issues_folder(settings, issues_dir)):
            plan = plan_due(path, shown(path), settings, connection, now)
            if plan.action == "unscheduled":
                continue
            summary = summarise(connection, plan.slug)
            counts = summary.counts if summary else {}
            state = {"wait": "upcoming", "start": "due", "resume": "due (resumes)",
                     "done": "sent", "refuse": "blocked"}[plan.action]
            if summary and plan.action != "done":
                state = f"{summary.send.state}"
            detail = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            rows.append((plan.send_at or now, plan, state, detail))
    finally:
        connection.close()
    if not rows:
        click.echo("no scheduled issues (set send_at: in an issue file)")
        return
    for send_at, plan, state, detail in sorted(rows, key=lambda r: r[0]):
        when = send_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        click.echo(f"{when}  {plan.slug:<12} {state:<12} {detail}")
        if plan.action == "refuse" or (plan.action == "wait" and "errors" in plan.reason):
            click.echo(f"    {plan.reason.splitlines()[0]}")


@click.command()
@click.argument("issue", type=click.Path(path_type=Path))
@click.option("--by", "approved_by", default=None, help="Who approves (default: your login).")
@click.pass_context
def approve(ctx: click.Context, issue: Path, approved_by: str | None) -> None:
    """Approve this exact version of ISSUE for its scheduled send.

    With require_approval = true in newsletter.toml, `send --due` sends only an issue
    whose composed email is the one approved; any later change needs a new approval.

    \b
    Example:
      newsletter approve issues/2020-01.yaml --by "Anna (editor)"
    """
    from ..compose import compose
    from ..database import open_database
    from ..issue import load_issue
    from ..lint import check, has_errors
    from ..schedule import approve as record

    settings = settings_for(ctx, issue)
    composed = compose(load_issue(issue, shown(issue)), settings)
    findings = check(composed, settings, shown(issue))
    if has_errors(findings):
        for finding in findings:
            click.echo(str(finding), err=True)
        raise NewsletterError(f"{shown(issue)} has errors; fix them before approving it")
    who = approved_by or getpass.getuser()
    connection = open_database(settings.database_path)
    try:
        approval = record(connection, composed.issue.slug, composed.content_hash, who)
    finally:
        connection.close()
    click.echo(f"approved {composed.issue.slug} (version {approval.content_hash[:12]}) by "
               f"{who} at {approval.approved_at}")
