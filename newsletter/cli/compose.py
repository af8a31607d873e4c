"""`build` and `check`: compose an issue and write or inspect the result."""

from __future__ import annotations

from pathlib import Path

import click

from .common import issue_argument, settings_for, shown


def register(cli: click.Group) -> None:
    cli.add_command(build)
    cli.add_command(check)


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
    click.echo(f"built {shown(issue)} -> {shown(target)}/ (email.html {size / 1000:.1f} KB, "
               f"email.txt, index.html, {len(composed.images)} images)")
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
