"""`status`: where the send of an issue stands, per list and per recipient state."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from ..states import DeliveryState
from .common import settings_for, shown

ORDER = (DeliveryState.SENT, DeliveryState.FAILED, DeliveryState.UNKNOWN,
         DeliveryState.DEFERRED, DeliveryState.PENDING, DeliveryState.SENDING,
         DeliveryState.SKIPPED)  # the order `status` lists them in


def register(cli: click.Group) -> None:
    cli.add_command(status)


def _runs(count: int) -> str:
    return "1 run" if count == 1 else f"{count} runs"


def _percent(rate: float | None, digits: int = 1) -> str:
    return "-" if rate is None else f"{rate:.{digits}%}"


def _returns(back) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {"delivered": back.delivered, "bounced_hard": back.hard, "bounced_soft": back.soft,
            "blocked": back.blocked, "complained": back.complained,
            "bounce_rate": back.bounce_rate, "complaint_rate": back.complaint_rate,
            "warnings": back.warnings}


def _when(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@click.command()
@click.argument("issue", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.option("--limit", default=50, show_default=True,
              help="How many failed, unknown or deferred recipients to list.")
@click.pass_context
def status(ctx: click.Context, issue: Path, as_json: bool, limit: int) -> None:
    """Show how the send of ISSUE went: counts per list and state, failures with the
    server's replies, recipients whose outcome is unknown, timing and speed, and what came
    back: delivered, bounced (hard, soft), blocked and complained, with the rates.

    \b
    Example:
      newsletter status issues/2020-01.yaml
      newsletter status issues/2020-01.yaml --json
    """
    from ..compose.issue import load_issue
    from ..database import open_database
    from ..delivery.report import summarise

    settings = settings_for(ctx, issue)
    slug = load_issue(issue, shown(issue)).slug if issue.suffix in (".yaml", ".yml") \
        else issue.name
    connection = open_database(settings.database_path)
    try:
        summary = summarise(connection, slug, limit)
    finally:
        connection.close()
    if summary is None:
        click.echo(f"{slug}: never sent to a list")
        return
    send = summary.send
    data = {
        "issue": slug, "state": send.state, "lists": list(send.lists), "transport": send.transport,
        "started_at": _when(send.started_at), "finished_at": _when(send.finished_at),
        "counts": summary.counts, "by_list": summary.by_list,
        "by_edition": summary.by_edition,
        "rate_per_second": round(summary.rate, 1) if summary.rate else None,
        "runs": summary.sending.runs, "seconds_sending": round(summary.sending.seconds, 2),
        "versions": [{"content_hash": v.content_hash, "since": _when(v.since)}
                     for v in summary.versions],
        "failed": [{"email": e, "reply": r} for e, r in summary.failed],
        "unknown": [{"email": e, "reply": r} for e, r in summary.unknown],
        "deferred": [{"email": e, "next_attempt_at": _when(n), "reply": r}
                     for e, n, r in summary.deferred],
        "returns": _returns(summary.returns),
    }
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    click.echo(f"{slug}: {send.state}; lists {', '.join(send.lists)}"
               + (f"; through {send.transport}" if send.transport else ""))
    click.echo(f"  started {data['started_at']}"
               + (f", finished {data['finished_at']}" if send.finished_at else "")
               + (f"; {summary.sending.sent} sent in {summary.sending.seconds:.1f} s of "
                  f"sending over {_runs(summary.sending.runs)}, {data['rate_per_second']} "
                  "messages/s" if summary.rate else ""))
    if len(summary.versions) > 1:
        click.echo(f"  {len(summary.versions)} versions of the issue (resumed with "
                   "--new-version): " + "; ".join(f"{v.content_hash[:12]} from {_when(v.since)}"
                                                  for v in summary.versions))
    for list_name, counts in summary.by_list.items():
        click.echo(f"  {list_name}: " + ", ".join(f"{counts[s]} {s}" for s in ORDER
                                                 if counts.get(s)))
    back = summary.returns
    click.echo(f"  after sending: {back.delivered} delivered, {back.hard + back.soft} bounced "
               f"({back.hard} hard, {back.soft} soft), {back.blocked} blocked, "
               f"{back.complained} complained; bounce rate {_percent(back.bounce_rate)}, "
               f"complaint rate {_percent(back.complaint_rate, 2)}")
    for warning in back.warnings:
        click.echo(f"warning: {warning}")
    if len(summary.by_edition) > 1:  # a send in one language needs no breakdown
        click.echo("  editions: " + "; ".join(
            f"{edition} " + ", ".join(f"{counts[s]} {s}" for s in ORDER if counts.get(s))
            for edition, counts in summary.by_edition.items()))
    for title, rows in (("failed", summary.failed), ("unknown", summary.unknown)):
        if rows:
            click.echo(f"{title}:")
            for email, reply in rows:
                click.echo(f"  {email}: {reply}")
    if summary.deferred:
        click.echo("deferred:")
        for email, next_at, reply in summary.deferred:
            click.echo(f"  {email}: next attempt {_when(next_at)} ({reply})")
    if summary.unknown:
        click.echo(f"to re-send to the unknown recipients: newsletter send {shown(issue)} "
                   "--resend-unknown")
