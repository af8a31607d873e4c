"""What `build` writes: the email and its web version, with its images and calendar files."""

from __future__ import annotations

import html
from pathlib import Path

from ..config import Settings
from ..grammar import PLACEHOLDER
from .ics import calendar_files
from .render import ComposedEmail, issue_url


def web_values(settings: Settings, composed: ComposedEmail) -> dict[str, str]:
    """Placeholder values for copies that belong to nobody: the web version, the build."""
    return {
        "name": settings.name_fallback,
        "email": "",
        "web_url": issue_url(settings, composed.issue),
        "unsubscribe_url": settings.base_url.rstrip("/") + "/unsubscribe/",
        "preferences_url": settings.base_url.rstrip("/") + "/preferences/",
    }


def fill(template: str, values: dict[str, str], *, escape: bool) -> str:
    """Replace every `%%field%%`; unknown fields become empty. Slow path, not per recipient."""
    def value(match) -> str:  # type: ignore[no-untyped-def]
        text = values.get(match.group(1), "")
        return html.escape(text) if escape else text

    return PLACEHOLDER.sub(value, template)


def web_html(composed: ComposedEmail, settings: Settings, asset_base: str = "") -> str:
    """The issue as a web page: no personal data, images relative to the page."""
    return fill(composed.html_with_assets(asset_base), web_values(settings, composed), escape=True)


def published_files(composed: ComposedEmail, settings: Settings) -> dict[str, bytes]:
    """The files published beside the web version besides images: the agenda's `.ics`."""
    return calendar_files(composed.issue, settings, issue_url(settings, composed.issue))


def write_build(composed: ComposedEmail, settings: Settings, out_dir: Path) -> Path:
    """Write `<out_dir>/<slug>/` with email.html, email.txt, index.html, images, `.ics`."""
    target = out_dir / composed.issue.slug
    target.mkdir(parents=True, exist_ok=True)
    page = web_html(composed, settings)
    (target / "email.html").write_text(page, encoding="utf-8")
    (target / "index.html").write_text(page, encoding="utf-8")
    text = fill(composed.text, web_values(settings, composed), escape=False)
    (target / "email.txt").write_text(text, encoding="utf-8")
    for image in composed.images:
        destination = target / image.src
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(image.path.read_bytes())  # not shutil: 2 ms to import
    for name, body in published_files(composed, settings).items():
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(body)
    return target
