"""`send`: test sends to reviewers now; bulk sends to lists."""

from __future__ import annotations

from pathlib import Path

import click

from .common import issue_argument, settings_for, shown


def register(cli: click.Group) -> None:
    cli.add_command(send)


@click.command()
@issue_argument
@click.option("--test", "test", is_flag=True,
              help="Send a test copy to the reviewers (or --to) instead of the lists.")
@click.option("--to", "to", multiple=True, metavar="ADDRESS",
              help="A reviewer for --test; repeat for several.")
@click.option("--to-file", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write the messages as .eml files into this folder instead of sending.")
@click.option("--transport", "transport_url", default=None, metavar="URL",
              help="smtp://user@host:587, smtps://..., outbox://DIR... (default: newsletter.toml"
                   " or NEWSLETTER_TRANSPORT).")
@click.pass_context
def send(ctx: click.Context, issue: Path, test: bool, to: tuple[str, ...],
         to_file: Path | None, transport_url: str | None) -> None:
    """Send ISSUE: a test copy to reviewers with --test.

    \b
    Example:
      newsletter send issues/2020-01.yaml --test
      newsletter send issues/2020-01.yaml --test --to editor@example.org
      newsletter send issues/2020-01.yaml --test --to-file review/
    """
    from ..compose import compose
    from ..issue import load_issue
    from ..lint import check
    from ..review import all_sent, reviewers, send_test
    from ..transports import open_transport

    settings = settings_for(ctx, issue)
    if not test:
        raise click.UsageError("bulk sends are not available yet; use --test")
    url = f"outbox://{to_file.resolve()}" if to_file else (transport_url or settings.transport)
    loaded = load_issue(issue, shown(issue))
    composed = compose(loaded, settings, test=True)
    for finding in check(composed, settings, shown(issue)):
        click.echo(str(finding), err=True)
    recipients = reviewers(settings, to)
    transport = open_transport(url, settings)
    click.echo(f"test send of {shown(issue)} to {len(recipients)} reviewer(s) via "
               f"{transport.description}")

    def report(delivery) -> None:  # type: ignore[no-untyped-def]
        click.echo(f"  {delivery.recipient.email}: {delivery.result.status} "
                   f"({delivery.result.reply})")

    deliveries = send_test(composed, settings, transport, recipients, report)
    if not all_sent(deliveries):
        click.echo("some test messages were not accepted; see the replies above", err=True)
        ctx.exit(1)
