"""`bounces receive` and `bounces fetch`: bounces and complaints back into the store."""

from __future__ import annotations

import sqlite3
import sys

import click

from ..errors import NewsletterError
from .common import settings_for, shown

EX_TEMPFAIL = 75  # sendmail's "try again later": the mail server keeps the message


@click.group()
def bounces() -> None:
    """Take in bounces and spam complaints, so that dead and unwilling addresses stop
    getting mail.

    \b
    Example:
      newsletter bounces receive < bounce.eml
      newsletter bounces fetch
    """


@bounces.command()
@click.option("--recipient", default="", metavar="ADDRESS",
              help="The envelope recipient, as the mail server passes it (bounces+TOKEN@...).")
@click.pass_context
def receive(ctx: click.Context, recipient: str) -> None:
    """Read one message from standard input, as a mail server's pipe delivers it, and
    record the bounce or complaint it reports, or honour the unsubscribe request it is (a
    mail client writing to unsubscribe_mailto, subject `unsubscribe TOKEN`).

    Exits 0 when the message was handled, including mail that is not a report (it is kept
    in keep_dir for a person), and 75 (EX_TEMPFAIL) when it could not be recorded, so that
    the mail server keeps it and tries again.

    \b
    Example:
      newsletter bounces receive < bounce.eml
      newsletter --config /srv/newsletter/newsletter.toml bounces receive --recipient "$RECIPIENT"
    """
    from ..inbound.receive import receive as receive_message

    try:
        received = receive_message(settings_for(ctx), sys.stdin.buffer,
                                   envelope_recipient=recipient)
    except (NewsletterError, sqlite3.Error, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        click.echo("not recorded; exit status 75 asks the mail server to deliver it again "
                   "later", err=True)
        ctx.exit(EX_TEMPFAIL)
    for verdict in received.verdicts:
        finding = verdict.finding
        about = f"{verdict.delivery.issue}, subscriber {verdict.delivery.subscriber_id}" \
            if verdict.delivery else "no delivery of ours"
        click.echo(f"{verdict.disposition}: {finding.kind} {finding.status} for "
                   f"{finding.recipient or '?'} ({about})"
                   + (f": {verdict.consequence}" if verdict.consequence else ""))
    if not received.verdicts:
        click.echo(f"{received.disposition}: {received.summary or 'no report'}")
    if received.kept is not None:
        click.echo(f"kept for a person to read: {shown(received.kept)}")


@bounces.command()
@click.option("--mailbox", "url", default=None, metavar="URL",
              help="imaps://user@host/FOLDER (default: imap under [bounces] in "
                   "newsletter.toml); the password comes from NEWSLETTER_IMAP_PASSWORD.")
@click.pass_context
def fetch(ctx: click.Context, url: str | None) -> None:
    """Read the bounce mailbox over IMAP and record every bounce and complaint in it.

    Each message moves to processed_folder once what it reports is recorded, or to
    review_folder when it is not a report of ours, for a person to read; nothing is
    deleted. Safe to run from cron: one run at a time, and a report is counted once
    however often it is read.

    \b
    Example:
      newsletter bounces fetch
      newsletter bounces fetch --mailbox imaps://bounces@mail.efus.eu/INBOX
    """
    from ..inbound.mailbox import fetch as fetch_mailbox

    settings = settings_for(ctx)
    report = fetch_mailbox(settings, url)
    moved = ", ".join(f"{n} to {folder}" for folder, n in sorted(report.moved.items()))
    click.echo(f"{report.mailbox}: {report.messages} message(s): {report.tally}"
               + (f"; moved {moved}" if moved else ""))
