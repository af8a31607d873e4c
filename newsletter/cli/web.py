"""`serve` and `build-archive`: the unsubscribe endpoint and the archive, live or as files."""

from __future__ import annotations

import signal
from pathlib import Path

import click

from .common import settings_for, shown

issues_option = click.option(
    "--issues", "issues_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Folder of the issue files (default: issues/ beside newsletter.toml).")


def register(cli: click.Group) -> None:
    cli.add_command(serve)
    cli.add_command(build_archive)
    cli.add_command(form)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; keep 127.0.0.1 behind a reverse proxy.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port to listen on; 0 picks a free one.")
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Requests answered at once.")
@click.option("--url-prefix", default="", metavar="PATH",
              help="A path the reverse proxy passes on unchanged, e.g. /newsletter.")
@issues_option
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, threads: int, url_prefix: str,
          issues_dir: Path | None) -> None:
    """Answer the links of sent messages, the sign-up form and the archive of issues.

    POST /unsubscribe/TOKEN with List-Unsubscribe=One-Click unsubscribes at once (RFC
    8058); GET shows a page with a button. /subscribe is the sign-up form ([signup] in
    newsletter.toml), /confirm/TOKEN its confirmation link, /preferences/TOKEN each
    subscriber's page. / lists the issues whose send has started, newest first, and /SLUG/
    shows each one's web version. POST /webhooks/postmark, /webhooks/sendgrid,
    /webhooks/mailgun and /webhooks/ses (Amazon SNS) take the mail services' bounce and
    complaint events. Run it behind a reverse proxy that answers at base_url over https
    (see README).

    \b
    Example:
      newsletter serve --port 8080
      newsletter serve --host 127.0.0.1 --port 8080 --url-prefix /newsletter
    """
    from ..audience.tokens import signer_for
    from ..web.app import WebApp
    from ..web.archive import Archive
    from ..web.server import web_server
    from ..web.webhooks import MAX_WEBHOOK_BODY

    settings = settings_for(ctx)
    app = WebApp(settings, Archive(settings, issues_dir or settings.path("issues")),
                 signer_for(settings))
    server = web_server(app, host=host, port=port, threads=threads, url_prefix=url_prefix,
                        max_request_body_size=MAX_WEBHOOK_BODY, ident="newsletter")
    shown_host = f"[{host}]" if ":" in host else host
    click.echo(f"Serving on http://{shown_host}:{server.effective_port}{url_prefix}/ "
               "(Ctrl-C to stop)")
    signal.signal(signal.SIGTERM, _interrupt)  # systemd stops it like Ctrl-C
    try:
        server.run()  # returns on Ctrl-C, the way to stop it
    except KeyboardInterrupt:  # one that came before the loop started
        pass
    finally:
        server.close()
    click.echo("stopped")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@click.command("build-archive")
@click.argument("out_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@issues_option
@click.pass_context
def build_archive(ctx: click.Context, out_dir: Path, issues_dir: Path | None) -> None:
    """Write the archive into DIR as static files, to upload to any web server.

    DIR/index.html lists the issues whose send has started, newest first; DIR/SLUG/ holds
    each one's web version (index.html) and images, as `newsletter build` writes them.

    \b
    Example:
      newsletter build-archive public
      rsync -a public/ www.example.org:/var/www/newsletter/
    """
    from ..web.archive import Archive, export

    settings = settings_for(ctx)
    entries = export(Archive(settings, issues_dir or settings.path("issues")), out_dir)
    slugs = ", ".join(f"{entry.issue.slug}/" for entry in entries) or "no issue sent yet"
    click.echo(f"wrote {shown(out_dir / 'index.html')} and {len(entries)} issue(s): {slugs}")
    click.echo(f"publish {shown(out_dir)}/ so that it answers at {settings.base_url}/")


@click.command()
@click.pass_context
def form(ctx: click.Context) -> None:
    """Print the sign-up form as HTML, to paste into a page of another website.

    A plain <form> that posts to <base_url>/subscribe, with the lists of [signup] lists,
    the consent wording and a hidden field against bots; no JavaScript. Style it with the
    site's CSS (class newsletter-signup), and list the site in [signup] embed_origins.

    \b
    Example:
      newsletter form > signup-snippet.html
    """
    from urllib.parse import urlsplit

    from ..audience.tokens import signer_for
    from ..errors import ConfigError
    from ..web.signupform import snippet

    settings = settings_for(ctx)
    if not settings.signup_lists:
        raise ConfigError("no sign-up form: set lists = [\"...\"] under [signup] in "
                          "newsletter.toml (the lists people may choose)")
    click.echo(snippet(settings, signer_for(settings)))
    if not settings.signup_embed_origins:
        click.echo("note: add the site that shows this form to embed_origins under [signup], "
                   "e.g. embed_origins = [\"https://www.example.org\"]; until then the form "
                   f"works on {urlsplit(settings.base_url).netloc} only", err=True)
