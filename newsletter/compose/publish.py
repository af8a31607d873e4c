"""What `build` writes: the email and its web version, with its images and calendar files.

Each edition is written below the main one (`2020-01/fr/`), and its page links to the
others with `hreflang`, so that search engines and readers find the right language.
"""

from __future__ import annotations

import html
from pathlib import Path

from ..config import Settings
from ..grammar import PLACEHOLDER
from .ics import calendar_files
from .render import ComposedEmail, web_url


def web_values(settings: Settings, composed: ComposedEmail) -> dict[str, str]:
    """Placeholder values for copies that belong to nobody: the web version, the build."""
    return {
        "name": composed.name_fallback or settings.name_fallback,
        "email": "",
        "web_url": web_url(settings, composed),
        "unsubscribe_url": settings.base_url.rstrip("/") + "/unsubscribe/",
        "preferences_url": settings.base_url.rstrip("/") + "/preferences/",
    }


def fill(template: str, values: dict[str, str], *, escape: bool) -> str:
    """Replace every `%%field%%`; unknown fields become empty. Slow path, not per recipient."""
    def value(match) -> str:  # type: ignore[no-untyped-def]
        text = values.get(match.group(1), "")
        return html.escape(text) if escape else text

    return PLACEHOLDER.sub(value, template)


def web_html(composed: ComposedEmail, settings: Settings, asset_base: str | None = None) -> str:
    """The issue as a web page: no personal data, images relative to the page (an edition's
    page is one folder down), `hreflang` links to the other editions."""
    if asset_base is None:
        asset_base = "../" * composed.web_path.count("/")
    page = fill(composed.html_with_assets(asset_base), web_values(settings, composed),
                escape=True)
    if not composed.alternates:
        return page
    links = "".join(f'<link rel="alternate" hreflang="{html.escape(a.language)}" '
                    f'href="{html.escape(a.url)}">' for a in composed.alternates)
    links += (f'<link rel="alternate" hreflang="x-default" '
              f'href="{html.escape(composed.alternates[0].url)}">')
    return page.replace("<head>", "<head>" + links, 1)


def published_files(composed: ComposedEmail, settings: Settings) -> dict[str, bytes]:
    """The files published beside an edition's web version besides images: the agenda's
    `.ics`, in the edition's words, at the addresses its email links to."""
    return calendar_files(composed.issue, settings, web_url(settings, composed))


def write_build(composed: ComposedEmail, settings: Settings, out_dir: Path) -> Path:
    """Write `<out_dir>/<slug>/` with email.html, email.txt, index.html, images, `.ics`, and
    the same for each edition in `<out_dir>/<slug>/<language>/`."""
    target = out_dir / composed.issue.slug
    for edition in composed.every_edition:
        folder = target / edition.web_path
        folder.mkdir(parents=True, exist_ok=True)
        page = web_html(edition, settings)
        (folder / "email.html").write_text(page, encoding="utf-8")
        (folder / "index.html").write_text(page, encoding="utf-8")
        text = fill(edition.text, web_values(settings, edition), escape=False)
        (folder / "email.txt").write_text(text, encoding="utf-8")
        for image in edition.images:
            destination = target / image.src
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(image.path.read_bytes())  # not shutil: 2 ms to import
        for name, body in published_files(edition, settings).items():
            destination = folder / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(body)
    return target
