"""Scheduled sends: `schedule` (what is planned) and `approve` (`send --due` is in send)."""

from __future__ import annotations

import datetime as dt
import getpass
from pathlib import Path

import click

from ..states import ScheduleAction
from .common import settings_for, shown

SHOWN_STATE = {ScheduleAction.WAIT: "upcoming", ScheduleAction.START: "due",
               ScheduleAction.RESUME: "due (resumes)", ScheduleAction.DONE: "sent",
               ScheduleAction.REFUSE: "blocked"}


def register(cli: click.Group) -> None:
    cli.add_command(schedule)
    cli.add_command(approve)


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
    from ..delivery.report import summarise
    from ..delivery.schedule import issues_folder, plan_all

    settings = settings_for(ctx, issues_dir)
    now = dt.datetime.now(dt.UTC)
    plans = [plan for plan in plan_all(settings, issues_folder(settings, issues_dir), now, shown)
             if plan.action is not ScheduleAction.UNSCHEDULED]
    connection = open_database(settings.database_path)
    try:
        rows = []
        for plan in plans:
            summary = summarise(connection, plan.slug)
            counts = summary.counts if summary else {}
            state = SHOWN_STATE[plan.action]
            if summary and plan.action is not ScheduleAction.DONE:
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
        if plan.action is ScheduleAction.REFUSE or \
                (plan.action is ScheduleAction.WAIT and "errors" in plan.reason):
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
    from ..database import open_database
    from ..delivery.readiness import ready
    from ..delivery.schedule import approve as record

    settings = settings_for(ctx, issue)
    composed = ready(issue, settings, shown).composed
    who = approved_by or getpass.getuser()
    connection = open_database(settings.database_path)
    try:
        approval = record(connection, composed.issue.slug, composed.content_hash, who)
    finally:
        connection.close()
    click.echo(f"approved {composed.issue.slug} (version {approval.content_hash[:12]}) by "
               f"{who} at {approval.approved_at}")
