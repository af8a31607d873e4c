"""`preview`: a live preview of an issue in the browser, or screenshots of it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from .common import issue_argument, settings_for, shown


def register(cli: click.Group) -> None:
    cli.add_command(preview)


@click.command()
@issue_argument
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port on 127.0.0.1 to serve on; 0 picks a free one.")
@click.option("--open", "open_browser", is_flag=True,
              help="Open the preview in the default browser.")
@click.option("--screenshot", type=click.Path(file_okay=False, path_type=Path), default=None,
              metavar="DIR", help="Write desktop and mobile PNGs into DIR instead of serving.")
@click.option("--scheme", "schemes", type=click.Choice(["light", "dark", "inverted"]),
              multiple=True, help="With --screenshot: light (the default), dark (the theme's "
              "dark rules) or inverted (a client that inverts colours); repeat for several.")
@click.pass_context
def preview(ctx: click.Context, issue: Path, port: int, open_browser: bool,
            screenshot: Path | None, schemes: tuple[str, ...]) -> None:
    """Serve ISSUE on 127.0.0.1 and update the page on every save.

    The page shows the email at desktop (640 px) and phone (375 px) width, the plain-text
    part, the inbox row, and what `newsletter check` finds. Saving the issue, an image or
    a template updates it; errors replace the email until the file is fixed.

    \b
    Example:
      newsletter preview issues/2020-01.yaml --open
      newsletter preview issues/2020-01.yaml --screenshot docs/
      newsletter preview issues/2020-01.yaml --screenshot shots --scheme dark --scheme inverted
    """
    if screenshot is not None:
        return _screenshots(ctx, issue, screenshot, schemes or ("light",))
    import webbrowser

    from ..preview.server import HOST, Preview, Snapshot, open_server, serve

    def report(snapshot: Snapshot) -> None:
        when = dt.datetime.now().strftime("%H:%M:%S")
        if snapshot.problems:
            click.echo(f"{when} {shown(issue)}: {len(snapshot.problems)} problem(s), "
                       "listed on the preview page", err=True)
        else:
            click.echo(f"{when} {shown(issue)}: built ({len(snapshot.findings)} finding(s))")

    with open_server(port) as server:
        url = f"http://{HOST}:{server.server_address[1]}/"
        click.echo(f"Preview of {shown(issue)} at {url} (Ctrl-C to stop)")
        try:
            live = Preview(issue, lambda: settings_for(ctx, issue), shown, on_build=report)
            if open_browser:
                webbrowser.open(url)
            serve(server, live)
        except KeyboardInterrupt:  # the way to stop a preview, not a failure
            click.echo("preview stopped")


def _screenshots(ctx: click.Context, issue: Path, out_dir: Path,
                 schemes: tuple[str, ...]) -> None:
    from ..compose.issue import load_issue
    from ..compose.publish import web_html
    from ..compose.render import compose
    from ..preview.screenshot import capture, chromium_path

    settings = settings_for(ctx, issue)
    chromium = chromium_path(settings.env)
    composed = compose(load_issue(issue, shown(issue)), settings)
    written = []
    for edition in composed.every_edition:  # 2020-01-desktop.png, 2020-01-fr-desktop.png
        html = web_html(edition, settings, asset_base="assets/")
        images = {image.src: image.path for image in edition.images}
        name = composed.issue.slug + (f"-{edition.language}" if edition.web_path else "")
        written += capture(html, images, out_dir, name, chromium, schemes)
    click.echo("wrote " + ", ".join(shown(path) for path in written))
