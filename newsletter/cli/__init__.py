"""The command line: each command parses its options and calls one function of the core.

Errors of the core (NewsletterError) become one message on stderr and exit status 1; an
interrupt exits 130. Tracebacks are for bugs only.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import __version__
from ..errors import IssueFileError, NewsletterError, NotReady
from . import compose as compose_commands
from . import preview as preview_commands
from . import schedule as schedule_commands
from . import send as send_commands
from . import status as status_commands
from . import web as web_commands
from .bounces import bounces as bounces_group
from .logs import configure as configure_logging
from .subscribers import subscribers as subscribers_group

EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


class Group(click.Group):
    """Turns the core's errors into messages and exit codes, once for every command."""

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except IssueFileError as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            count = len(exc.problems)
            click.echo(f"{count} problem{'s' if count != 1 else ''} found; fix the file and "
                       "run the command again.", err=True)
            ctx.exit(EXIT_FAILURE)
        except NotReady as exc:
            for finding in exc.findings:
                click.echo(str(finding), err=True)
            click.echo(f"error: {exc}", err=True)
            click.echo(exc.hint, err=True)
            ctx.exit(EXIT_FAILURE)
        except NewsletterError as exc:
            click.echo(f"error: {exc}", err=True)
            if exc.hint:
                click.echo(exc.hint, err=True)
            ctx.exit(EXIT_FAILURE)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="newsletter")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="newsletter.toml to use (default: the nearest one, or NEWSLETTER_CONFIG).")
@click.option("-v", "--verbose", count=True,
              help="Log more: the requests a mail-service transport makes (keys redacted).")
@click.option("-q", "--quiet", count=True, help="Log only warnings and errors.")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, verbose: int, quiet: int) -> None:
    """Write a monthly newsletter as a plain file, preview it, test-send it, send it.

    \b
    Example:
      newsletter build issues/2020-01.yaml
      newsletter check issues/2020-01.yaml
      newsletter -v send issues/2020-01.yaml --test
    """
    configure_logging(verbose - quiet)
    ctx.obj = {"config": config}


compose_commands.register(cli)
preview_commands.register(cli)
schedule_commands.register(cli)
send_commands.register(cli)
status_commands.register(cli)
web_commands.register(cli)
cli.add_command(subscribers_group)
cli.add_command(bounces_group)


def main() -> None:
    try:
        cli.main(prog_name="newsletter")
    except KeyboardInterrupt:  # raised outside a command, e.g. while click parses
        sys.exit(EXIT_INTERRUPTED)
