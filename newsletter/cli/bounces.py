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
    record the bounce or complaint it reports.

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
