"""`new`, `build` and `check`: start next month's issue, compose it, inspect the result."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from .common import issue_argument, settings_for, shown


def register(cli: click.Group) -> None:
    cli.add_command(new)
    cli.add_command(build)
    cli.add_command(check)
    cli.add_command(edition)


@click.command()
@click.option("--from", "source", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="ISSUE", help="The issue to start from (default: the latest in issues/).")
@click.option("--date", "date", type=click.DateTime(["%Y-%m-%d"]), default=None,
              metavar="YYYY-MM-DD", help="The new issue's date (default: a month later).")
@click.pass_context
def new(ctx: click.Context, source: Path | None, date: dt.datetime | None) -> None:
    """Write next month's issue file from the last one, ready to edit.

    The new file is named after its month (issues/2020-02.yaml); its slug, number, date
    and send_at move on, the month in its title and subject too, agenda entries that are
    over are left out, and issues/2020-02/ is made for its images. The items are kept to
    be rewritten: `check` warns about each one left as it was. An existing file is never
    overwritten.

    \b
    Example:
      newsletter new
      newsletter new --from issues/2020-01.yaml --date 2020-02-07
    """
    from ..compose.folder import latest_issue
    from ..compose.nextissue import write_next_issue
    from ..errors import NewsletterError

    if source is None:
        folder = settings_for(ctx).path("issues")
        source = latest_issue(folder) if folder.is_dir() else None
        if source is None:
            error = NewsletterError(f"no issue file in {shown(folder)} to start from")
            error.hint = "give one with --from ISSUE, or copy the sample issues/2020-01.yaml"
            raise error
    made = write_next_issue(source, shown(source), date.date() if date else None)
    issue = made.issue
    facts = [f"No. {issue.number}" if issue.number else "", issue.date.isoformat(),
             f"send_at {issue.send_at.isoformat()}" if issue.send_at else "",
             f"{made.dropped} past agenda entries left out" if made.dropped else ""]
    click.echo(f"wrote {shown(made.path)} from {shown(source)} ("
               + ", ".join(f for f in facts if f) + f"); images go in {shown(made.images)}/")
    click.echo(f"rewrite its items, then run: newsletter check {shown(made.path)}")


@click.command()
@issue_argument
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Folder to write into (default: build/ beside newsletter.toml).")
@click.pass_context
def build(ctx: click.Context, issue: Path, output: Path | None) -> None:
    """Compose ISSUE into email.html, email.txt, index.html and its images.

    \b
    Example:
      newsletter build issues/2020-01.yaml -o build
    """
    from ..compose.issue import load_issue
    from ..compose.publish import write_build
    from ..compose.render import compose
    from ..delivery.readiness import refuse_taken_slug

    settings = settings_for(ctx, issue)
    loaded = load_issue(issue, shown(issue))
    composed = compose(loaded, settings)
    refuse_taken_slug(composed, settings, shown)
    target = write_build(composed, settings, output or settings.path("build"))
    size = len((target / "email.html").read_bytes())
    editions = ", ".join(edition.language for edition in composed.editions)
    click.echo(f"built {shown(issue)} -> {shown(target)}/ (email.html {size / 1000:.1f} KB, "
               f"email.txt, index.html, {len(composed.images)} images"
               + (f"; editions: {editions} in {shown(target)}/<language>/)" if editions else ")"))
    click.echo(f"open {shown(target / 'email.html')} in a browser, or run: "
               f"newsletter check {shown(issue)}")


@click.command()
@issue_argument
@click.pass_context
def check(ctx: click.Context, issue: Path) -> None:
    """Validate ISSUE and lint the email it composes to; errors exit 1, warnings do not.

    \b
    Example:
      newsletter check issues/2020-01.yaml
    """
    from ..delivery.readiness import ready
    from ..errors import NotReady

    settings = settings_for(ctx, issue)
    try:
        findings = ready(issue, settings, shown).findings
    except NotReady as exc:
        findings = exc.findings
    for finding in findings:
        click.echo(str(finding), err=True)
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = len(findings) - errors
    summary = f"{shown(issue)}: {errors} error(s), {warnings} warning(s)"
    if errors:
        click.echo(summary + "; fix the errors before sending.", err=True)
        ctx.exit(1)
    click.echo(summary + ("; ready to send." if not warnings else "; sendable."))


@click.command()
@issue_argument
@click.argument("language")
@click.pass_context
def edition(ctx: click.Context, issue: Path, language: str) -> None:
    """Start the LANGUAGE edition of ISSUE: a copy of its text, for a translator.

    Writes ISSUE's file with the language in its name (issues/2020-01.fr.yaml), without
    the fields every edition shares (date, lists, send_at...). Translate each text in
    place; `newsletter check ISSUE` lists what is still untranslated.

    \b
    Example:
      newsletter edition issues/2020-01.yaml fr
    """
    from ..compose.editions import start_edition

    settings = settings_for(ctx, issue)
    target = start_edition(issue, language, settings.language)
    click.echo(f"wrote {shown(target)}: translate it, then run: newsletter check {shown(issue)}")
