"""The built email in a real browser: it fits a phone and a desktop pane, images show."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import REPO, run_cli

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.browser

LAYOUT = """() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    images: Array.from(document.images).map(img => ({
        src: img.getAttribute('src'), alt: img.getAttribute('alt'),
        complete: img.complete, naturalWidth: img.naturalWidth,
        width: img.getBoundingClientRect().width,
        right: img.getBoundingClientRect().right,
    })),
})"""


@pytest.fixture(scope="module")
def email_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("project")
    shutil.copy(REPO / "newsletter.toml", project / "newsletter.toml")
    shutil.copytree(REPO / "issues", project / "issues")
    result = run_cli("build", "issues/2020-01.yaml", cwd=project)
    assert result.returncode == 0, result.stderr
    return project / "build" / "2020-01" / "email.html"


@pytest.mark.parametrize("width", [375, 600])
def test_email_fits_the_screen_and_shows_every_image(browser: Browser, email_html: Path,
                                                     width: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": 800})
    try:
        page = context.new_page()
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(email_html.as_uri(), wait_until="load")
        layout = page.evaluate(LAYOUT)
    finally:
        context.close()

    assert layout["innerWidth"] == width
    assert layout["scrollWidth"] <= layout["innerWidth"], layout["scrollWidth"]
    assert len(layout["images"]) == 4
    for image in layout["images"]:
        assert image["complete"] and image["naturalWidth"] > 0, image
        assert (image["alt"] or "").strip(), image
        assert image["right"] <= width, image
    assert all(url.startswith("file://") for url in requests), requests  # nothing remote
