"""Dark mode: the default theme's dark rules, and the preview's dark and inverted views."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import REPO
from PIL import Image
from test_preview import ISSUE, frame_text, page, requested, server  # noqa: F401 - fixtures


def pixel(path: Path, x: int, y: int) -> tuple[int, int, int]:
    with Image.open(path) as image:
        return image.convert("RGB").getpixel((x, y))  # type: ignore[return-value]


def brightness(path: Path) -> float:
    """Mean grey level of the image, 0 (black) to 255 (white)."""
    with Image.open(path) as image:
        grey = image.convert("L").resize((60, 600))
        values = grey.tobytes()
    return sum(values) / len(values)


def test_the_theme_declares_both_schemes_and_its_dark_rules(cli, project) -> None:  # type: ignore[no-untyped-def]
    result = cli("build", ISSUE, "-o", "out")
    assert result.returncode == 0, result.stderr
    html = (project / "out/2020-01/email.html").read_text(encoding="utf-8")
    assert '<meta name="color-scheme" content="light dark">' in html
    assert '<meta name="supported-color-schemes" content="light dark">' in html
    assert "@media (prefers-color-scheme: dark)" in html
    assert "[data-ogsc] .nl-card div" in html and "[data-ogsb] .nl-mast" in html


def test_the_preview_serves_light_dark_and_inverted_views(server) -> None:  # type: ignore[no-untyped-def] # noqa: F811
    assert server.state()["dark_rules"] is True
    light = server.get("email.html")[2].decode()
    dark = server.get("email.html?scheme=dark")[2].decode()
    inverted = server.get("email.html?scheme=inverted")[2].decode()
    assert "prefers-color-scheme" not in light + dark + inverted
    assert "@media (max-width: 0px)" in light  # off, whatever the viewer's own setting
    assert "@media (min-width: 0px)" in dark  # on
    assert "filter: invert(1) hue-rotate(180deg)" in inverted
    assert "@media (max-width: 0px)" in inverted  # Gmail's apps ignore the theme's rules


def test_a_theme_without_dark_rules_is_said_so(server, project) -> None:  # type: ignore[no-untyped-def] # noqa: F811
    folder = project / "templates" / "plain"
    shutil.copytree(REPO / "templates" / "default", folder)
    template = folder / "newsletter.mjml.j2"
    template.write_text(template.read_text(encoding="utf-8").replace(
        "prefers-color-scheme: dark", "max-width: 1px"), encoding="utf-8")
    server.edit("lists: [members]", "lists: [members]\ntemplate: plain")
    assert server.wait_for(lambda s: s["dark_rules"] is False)["problems"] == []


FRAME_COLOURS = """() => {
    const style = (selector) => getComputedStyle(document.querySelector(selector));
    return {
        page: style(".nl-page").backgroundColor,
        card: style(".nl-card > table").backgroundColor,
        text: style(".nl-card p").color,
        masthead: style(".nl-mast > table").backgroundColor,
        box: style(".nl-box > table").backgroundColor,
        filter: style("html").filter,
        image: style("img").filter,
    };
}"""


@pytest.mark.browser
def test_the_dark_view_keeps_the_navy_masthead_and_the_inverted_view_inverts(page) -> None:  # type: ignore[no-untyped-def] # noqa: F811
    from playwright.sync_api import expect

    expect(frame_text(page, "desktop")).to_contain_text("Efus General Assembly")
    frame = page.frame_locator("#desktop").locator("html")
    light = frame.evaluate(FRAME_COLOURS)
    assert (light["page"], light["card"], light["filter"]) == (
        "rgb(238, 241, 245)", "rgb(255, 255, 255)", "none")
    page.select_option("#scheme", "dark")
    expect(page.locator("#dark-note")).to_be_hidden()  # the theme has dark rules
    expect(frame.locator(".nl-page").first).to_have_css("background-color",
                                                        "rgb(16, 21, 28)")  # the new email
    expect(frame_text(page, "desktop")).to_contain_text("Efus General Assembly")
    dark = frame.evaluate(FRAME_COLOURS)
    assert dark == {**dark, "page": "rgb(16, 21, 28)", "card": "rgb(27, 34, 44)",
                    "text": "rgb(230, 234, 239)", "masthead": "rgb(11, 46, 89)",
                    "box": "rgb(59, 49, 16)", "filter": "none"}
    page.select_option("#scheme", "inverted")
    expect(frame).to_have_css("filter", "invert(1) hue-rotate(180deg)")  # the new email
    expect(frame_text(page, "desktop")).to_contain_text("Efus General Assembly")
    inverted = frame.evaluate(FRAME_COLOURS)
    assert inverted["card"] == "rgb(255, 255, 255)"  # the light colours, inverted as a whole
    assert inverted["filter"] == inverted["image"] == "invert(1) hue-rotate(180deg)"


@pytest.mark.browser
def test_screenshots_in_light_dark_and_inverted(cli, project, browser) -> None:  # type: ignore[no-untyped-def]
    result = cli("preview", ISSUE, "--screenshot", "shots", "--scheme", "light", "--scheme",
                 "dark", "--scheme", "inverted")
    assert result.returncode == 0, result.stderr
    shots = project / "shots"
    names = sorted(path.name for path in shots.iterdir())
    assert names == sorted(f"2020-01-{view}{suffix}.png" for view in ("desktop", "mobile")
                           for suffix in ("", "-dark", "-inverted"))
    light, dark, inverted = (shots / f"2020-01-mobile{s}.png" for s in ("", "-dark", "-inverted"))
    assert brightness(light) > 180 and brightness(dark) < 80 and brightness(inverted) < 80
    navy = (11, 46, 89)
    assert pixel(light, 5, 60) == navy and pixel(dark, 5, 60) == navy  # the masthead
    assert pixel(inverted, 5, 60) != navy
    # The picture under the masthead looks the same in all three: images are never inverted
    # (the inverted view's double filter rounds a little).
    x, y = 187, 370
    assert pixel(light, x, y) == pixel(dark, x, y)
    assert all(abs(a - b) <= 8 for a, b in zip(pixel(light, x, y), pixel(inverted, x, y),
                                               strict=True))
