"""`send`: a test copy to reviewers, or the issue to its lists (resumable, exactly once)."""

from __future__ import annotations

import datetime as dt
import shlex
import sys
from pathlib import Path
from urllib.parse import quote

import click

from ..errors import NewsletterError
from ..states import ScheduleAction, SendState
from .common import settings_for, shown
from .logs import also_to_file
from .progress import Progress, log, stop_on_signals

EXIT_INTERRUPTED = {2: 130, 15: 143}  # SIGINT, SIGTERM


def register(cli: click.Group) -> None:
    cli.add_command(send)


@click.command()
@click.argument("issue", type=click.Path(path_type=Path), required=False)
@click.option("--due", is_flag=True,
              help="Send every issue whose send_at has passed and is not sent yet (cron).")
@click.option("--issues", "issues_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Folder of issue files for --due (default: issues/ beside "
                                 "newsletter.toml).")
@click.option("--allow-late", is_flag=True,
              help="With --due: also start issues later than the late_window.")
@click.option("--now", "now", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z"]),
              default=None, metavar="TIME", help="With --due: act as if it were TIME "
                                                 "(2020-01-15T09:00+01:00), to try a schedule.")
@click.option("--list", "lists", multiple=True, metavar="NAME",
              help="A subscriber list to send to; repeat for several (default: the issue's "
                   "lists:).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed without a "
                                          "terminal, e.g. from cron).")
@click.option("--dry-run", is_flag=True, help="Build every message but send and record nothing.")
@click.option("--include-new", is_flag=True,
              help="Also send to subscribers who joined the lists after this send started.")
@click.option("--resend-unknown", is_flag=True,
              help="Re-send to recipients whose outcome is unknown (same Message-ID).")
@click.option("--new-version", is_flag=True,
              help="Resume a send although the issue changed since it started (a typo "
                   "fixed mid-send): the rest get this version; status shows both.")
@click.option("--test", "test", is_flag=True,
              help="Send a test copy to the reviewers (or --to) instead of the lists.")
@click.option("--to", "to", multiple=True, metavar="ADDRESS",
              help="A reviewer for --test; repeat for several.")
@click.option("--to-file", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write the messages as .eml files into this folder instead of sending.")
@click.option("--transport", "transport_url", default=None, metavar="URL",
              help="smtp://user@host:587, smtps://..., outbox://DIR, postmark://default, "
                   "sendgrid://default, mailgun://DOMAIN, ses://REGION (default: "
                   "newsletter.toml or NEWSLETTER_TRANSPORT).")
@click.pass_context
def send(ctx: click.Context, issue: Path | None, due: bool, issues_dir: Path | None,
         allow_late: bool, now: dt.datetime | None, lists: tuple[str, ...], yes: bool,
         dry_run: bool, include_new: bool, resend_unknown: bool, new_version: bool,
         test: bool, to: tuple[str, ...], to_file: Path | None,
         transport_url: str | None) -> None:
    """Send ISSUE to its subscriber lists, or a test copy to reviewers with --test.

    A send records every recipient in a ledger: if it stops (Ctrl-C, a crash, a lost
    network), running the same command again sends to the rest, never twice.

    \b
    Example:
      newsletter send issues/2020-01.yaml --test
      newsletter send issues/2020-01.yaml --test --to editor@example.org
      newsletter send issues/2020-01.yaml --list members
      newsletter send issues/2020-01.yaml --list members --list partners --yes
      newsletter send issues/2020-01.yaml --list members --dry-run
      newsletter send issues/2020-01.yaml --new-version   # resume after fixing a typo
      newsletter send --due          # from cron: whatever is scheduled and due
    """
    url = f"outbox://{quote(str(to_file.resolve()))}" if to_file else transport_url
    if due:
        if issue is not None or test or lists or dry_run or new_version:
            raise click.UsageError("--due finds the issues itself: give no ISSUE, --list, "
                                   "--test, --dry-run or --new-version with it")
        ctx.exit(_send_due(ctx, issues_dir, url, allow_late=allow_late, now=now))
    if issue is None:
        raise click.UsageError("give an ISSUE file, or --due")
    settings = settings_for(ctx, issue)
    if test:
        _test_send(ctx, settings, issue, to, url)
    else:
        _bulk_send(ctx, settings, issue, lists, url, yes=yes, dry_run=dry_run,
                   include_new=include_new, resend_unknown=resend_unknown,
                   new_version=new_version)


def _send_due(ctx: click.Context, issues_dir: Path | None, url: str | None, *,
              allow_late: bool, now: dt.datetime | None) -> int:
    """Send or resume every due issue; the exit status for cron: 0 all went, else 1."""
    from ..delivery.schedule import issues_folder, run_due

    settings = settings_for(ctx, issues_dir)
    if settings.log_file:
        also_to_file(settings.path(settings.log_file))
    received: list[int] = []

    def send_one(plan):  # type: ignore[no-untyped-def]
        outcome, signals = run_campaign(plan.composed, settings, plan.composed.issue.lists,
                                        url, plan.path, yes=True)
        received.extend(signals)
        return outcome

    report = run_due(settings, issues_folder(settings, issues_dir),
                     now or dt.datetime.now(dt.UTC), send_one, shown, allow_late=allow_late)
    failures = [f"{run.plan.slug}: {run.plan.reason.splitlines()[0]}" for run in report.runs
                if run.plan.action is ScheduleAction.REFUSE]
    failures += [f"{run.plan.slug}: {run.error}" for run in report.runs if run.error]
    for run in report.runs:
        if run.outcome is None:
            continue
        code, problem = ending(run.outcome, received,
                               resume_command(settings, run.plan.path,
                                              run.plan.composed.issue.lists, url))
        if received:
            log(f"{run.plan.slug}: {problem}")
            return code
        if code:
            log(f"{run.plan.slug}: {problem}")
            failures.append(f"{run.plan.slug}: {problem.removeprefix('error: ')}")
    if failures:
        click.echo("; ".join(failures), err=True)
        return 1
    return 0


def _compose(settings, issue: Path, *, test: bool,  # type: ignore[no-untyped-def]
             new_version: bool = False):
    from ..delivery.readiness import ready

    prepared = ready(issue, settings, shown, test=test, new_version=new_version)
    for finding in prepared.findings:
        click.echo(str(finding), err=True)
    return prepared.composed


def _test_send(ctx: click.Context, settings, issue: Path, to: tuple[str, ...],  # type: ignore[no-untyped-def]
               url: str | None) -> None:
    from ..delivery.review import all_sent, reviewers, send_test
    from ..transports import open_transport

    composed = _compose(settings, issue, test=True)
    recipients = reviewers(settings, to)
    transport = open_transport(url or settings.transport, settings)
    click.echo(f"test send of {shown(issue)} to {len(recipients)} reviewer(s) via "
               f"{transport.description}")

    def report(delivery) -> None:  # type: ignore[no-untyped-def]
        edition = f" ({delivery.edition} edition)" if delivery.edition else ""
        click.echo(f"  {delivery.recipient.email}{edition}: {delivery.result.status} "
                   f"({delivery.result.reply})")

    if not all_sent(send_test(composed, settings, transport, recipients, report)):
        click.echo("some test messages were not accepted; see the replies above", err=True)
        ctx.exit(1)


def _bulk_send(ctx: click.Context, settings, issue: Path, lists: tuple[str, ...],  # type: ignore[no-untyped-def]
               url: str | None, *, yes: bool, dry_run: bool, include_new: bool,
               resend_unknown: bool, new_version: bool) -> None:
    from ..delivery.campaign import dry_run as build_all

    composed = _compose(settings, issue, test=False, new_version=new_version)
    targets = lists or composed.issue.lists
    if not targets:
        raise click.UsageError("no lists to send to: give --list NAME, or set lists: in the "
                               "issue file (or use --test for reviewers)")
    if dry_run:
        count, size = build_all(composed, settings, targets)
        click.echo(f"dry run: {count} messages built for {', '.join(targets)} "
                   f"({size / max(count, 1) / 1000:.1f} KB each); nothing sent or recorded.")
        click.echo(f"to send for real: newsletter send {shown(issue)} "
                   + " ".join(f"--list {name}" for name in targets))
        return
    outcome, received = run_campaign(composed, settings, targets, url, issue, yes=yes,
                                     include_new=include_new, resend_unknown=resend_unknown,
                                     new_version=new_version)
    code, problem = ending(outcome, received, resume_command(settings, issue, targets, url))
    if problem:
        click.echo(problem, err=True)
    ctx.exit(code)


def run_campaign(composed, settings, targets, url: str | None, issue: Path, *, yes: bool,  # type: ignore[no-untyped-def]
                 include_new: bool = False, resend_unknown: bool = False,
                 new_version: bool = False):
    """Lock, confirm, send with progress, report: (outcome, signals received)."""
    from ..delivery.campaign import Campaign

    with Campaign(composed, settings, targets, transport_url=url,
                  new_version=new_version) as campaign:
        plan = campaign.plan(include_new=include_new, resend_unknown=resend_unknown)
        _confirm(plan, yes)
        with stop_on_signals() as (stop, received):
            progress = Progress(plan.to_send, plan.issue)
            try:
                outcome = campaign.run(
                    stop, include_new=include_new, resend_unknown=resend_unknown,
                    on_start=lambda start: _report_start(start, progress),
                    on_verdict=progress.verdict, on_event=progress.event)
            except NewsletterError as exc:
                if exc.hint.endswith("to resume."):  # say exactly which command
                    exc.hint = exc.hint.removesuffix(".") + ": " + resume_command(
                        settings, issue, targets, url)
                raise
            finally:
                progress.close()
    _report(outcome, issue)
    return outcome, received


def resume_command(settings, issue: Path, targets, url: str | None) -> str:  # type: ignore[no-untyped-def]
    """The command that carries on this send the same way, to print for the user.

    The transport is spelt out unless newsletter.toml chose it, which the command reads
    again: a transport from --transport or NEWSLETTER_TRANSPORT may not be there next time.
    """
    from ..transports import redact_url

    words = ["newsletter", "send", shown(issue), *(f"--list {n}" for n in targets)]
    chosen = url or settings.env.get("NEWSLETTER_TRANSPORT")
    if chosen:
        words += ["--transport", shlex.quote(redact_url(chosen))]
    return " ".join(words)


def ending(outcome, received: list[int], again: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """The exit status of a send and, unless it is 0, the one line saying what to do."""
    if received:
        return EXIT_INTERRUPTED.get(received[0], 130), f"stopped; to resume: {again} --yes"
    if outcome.state is SendState.PAUSED:
        return 1, f"error: {outcome.reason}; to resume once the server is fine: {again}"
    if outcome.state is not SendState.COMPLETE or outcome.counts.get("unknown"):
        return 1, f"error: {outcome.reason}"
    return 0, ""


def _confirm(plan, yes: bool) -> None:  # type: ignore[no-untyped-def]
    summary = (f"{'Resume' if plan.resuming else 'Send'} {plan.issue} \"{plan.subject}\" to "
               f"{', '.join(plan.lists)}: {plan.to_send} recipient(s) to send"
               + (f", {plan.already_done} already done" if plan.already_done else "")
               + (f", {plan.unknown} unknown" if plan.unknown else "")
               + f"; via {plan.transport}" + _limits_note(plan))
    if yes:
        log(summary)
        return
    if not sys.stdin.isatty():
        raise NewsletterError(f"{summary}\nrefusing to send without confirmation: not on a "
                              "terminal. Add --yes to send.")
    if not click.confirm(summary + "\nSend now?", default=False):
        raise NewsletterError("cancelled; nothing was sent.")


def _limits_note(plan) -> str:  # type: ignore[no-untyped-def]
    """The service's quota and rate, when they bear on this send."""
    limits, lines = plan.limits, []
    if limits is None:
        return ""
    if limits.remaining is not None and plan.to_send > limits.remaining:
        lines.append(f"the service's 24-hour quota has {limits.remaining} message(s) left, "
                     f"fewer than {plan.to_send}: the run will pause when it is used up, and "
                     "the same command (or cron) sends the rest when it frees up")
    if limits.per_second:
        going = min(plan.to_send, plan.to_send if limits.remaining is None else limits.remaining)
        lines.append(f"the service allows {limits.per_second:g} messages a second: about "
                     f"{_duration(going / limits.per_second)} for this run")
    if limits.note:
        lines.append(limits.note)
    return "".join(f"\n  {line}" for line in lines)


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{max(seconds / 60, 1):.0f} min"


def _report_start(start, progress: Progress) -> None:  # type: ignore[no-untyped-def]
    if start.recovered_unknown or start.recovered_pending:
        progress.event(f"an earlier run stopped: {start.recovered_pending} recipient(s) it had "
                       f"not reached are pending again, {start.recovered_unknown} it was "
                       "sending to are now unknown (see newsletter status)")
    if start.added:
        progress.event(f"{start.added} recipient(s) added to the send")
    if start.requeued_unknown:
        progress.event(f"{start.requeued_unknown} unknown recipient(s) will be re-sent")


def _report(outcome, issue: Path) -> None:  # type: ignore[no-untyped-def]
    counts = outcome.counts
    run = outcome.run.counts
    rate = run.get("sent", 0) / max(outcome.elapsed, 1e-6)
    click.echo(f"{outcome.state}: this run sent {run.get('sent', 0)} in {outcome.elapsed:.1f} s "
               f"({rate:.0f}/s); in all: " + (", ".join(f"{counts[s]} {s}" for s in (
                   "sent", "failed", "deferred", "unknown", "skipped", "pending")
                   if counts.get(s)) or "nobody"))
    if outcome.idle:
        click.echo(outcome.idle)
    if outcome.suppressed:
        click.echo(f"{outcome.suppressed} address(es) bounced permanently and are now suppressed")
    click.echo(f"details: newsletter status {shown(issue)}")
