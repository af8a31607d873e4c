"""`build` and `check`: compose an issue and write or inspect the result."""

from __future__ import annotations

from pathlib import Path

import click

from .common import issue_argument, settings_for, shown


def register(cli: click.Group) -> None:
    cli.add_command(build)
    cli.add_command(check)
    cli.add_command(edition)


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

    settings = settings_for(ctx, issue)
    loaded = load_issue(issue, shown(issue))
    composed = compose(loaded, settings)
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
    from ..compose.issue import load_issue
    from ..compose.prepare import prepare
    from ..errors import NotReady

    settings = settings_for(ctx, issue)
    loaded = load_issue(issue, shown(issue))
    try:
        findings = prepare(loaded, settings, shown(issue)).findings
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
