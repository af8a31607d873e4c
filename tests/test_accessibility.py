"""`check`'s accessibility and dark-mode rules: each fires on an issue made to break it.

The sample issue stays quiet under all of them (tests/test_check.py: 0 warnings).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

from conftest import REPO
from PIL import Image, ImageDraw

Cli = Callable[..., subprocess.CompletedProcess[str]]
SHOWN = "issues/check.yaml"
ISSUE = """\
    date: 2020-01-10
    subject: Efus Newsletter - January 2020
    preheader: News from our projects
    items:
      - title: Efus General Assembly 2020 in Riga
        section: Efus news
        image:
          src: 2020-01/riga.png
          alt: Rooftops of Riga old town
        body: The General Assembly will be held on **26-27 March** in Riga.
        link:
          url: https://efus.eu/en/about-us/general-assembly/
          label: Register for the General Assembly
      - title: BRIDGE in Barcelona
        section: Efus news
        body: |
          The BRIDGE project met in **Barcelona**.
        link:
          url: https://efus.eu/en/bridge/
          label: Read about BRIDGE in Barcelona
"""


def check(project: Path, cli: Cli, text: str = ISSUE, theme: str | None = None) -> list[str]:
    """The warnings of `check` on `text`, optionally in a theme; the issue stays sendable."""
    if theme:
        text = text.replace("    items:", f"    template: {theme}\n    items:", 1)
    (project / SHOWN).write_text(textwrap.dedent(text), encoding="utf-8")
    result = cli("check", SHOWN)
    assert "Traceback" not in result.stderr
    assert result.returncode == 0, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith(SHOWN + ":")]


def line_of(project: Path, text: str) -> int:
    lines = (project / SHOWN).read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, 1) if text in line)


def theme(project: Path, name: str, *edits: tuple[str, str], css: tuple[str, str] = ("", "")
          ) -> str:
    """A copy of the default theme with `edits` made to its MJML (and its inline.css)."""
    folder = project / "templates" / name
    shutil.copytree(REPO / "templates" / "default", folder)
    template = folder / "newsletter.mjml.j2"
    source = template.read_text(encoding="utf-8")
    for old, new in edits:
        assert old in source, old
        source = source.replace(old, new)
    template.write_text(source, encoding="utf-8")
    if css[0]:
        sheet = folder / "inline.css"
        text = sheet.read_text(encoding="utf-8")
        assert css[0] in text
        sheet.write_text(text.replace(*css), encoding="utf-8")
    return name


def test_a_clean_issue_has_no_accessibility_findings(project: Path, cli: Cli) -> None:
    assert check(project, cli) == []


def test_low_contrast_text_in_the_light_rendering(project: Path, cli: Cli) -> None:
    name = theme(project, "pale", ('color="#1f2933"', 'color="#9aa5b1"'))
    found = check(project, cli, theme=name)
    assert len(found) == 1, found
    assert re.fullmatch(r"issues/check\.yaml: theme: warning: text in #9aa5b1 on #ffffff has "
                        r"a contrast of 2\.\d\d:1 in the light rendering, below the 4\.5:1 "
                        r"readers need \(WCAG AA\): 'Dear %%name%%,' and \d+ more; change "
                        r"the theme's colours", found[0]), found


def test_low_contrast_text_in_the_dark_rendering_only(project: Path, cli: Cli) -> None:
    name = theme(project, "murky", (".nl-card div, .nl-card p, .nl-card li { color: #e6eaef",
                                    ".nl-card div, .nl-card p, .nl-card li { color: #3e4c59"))
    found = check(project, cli, theme=name)
    assert len(found) == 1, found
    assert "text in #3e4c59 on #1b222c has a contrast of 1." in found[0]
    assert "in the dark rendering" in found[0]


def test_large_text_needs_3_to_1_only(project: Path, cli: Cli) -> None:
    # #8a96a3 on white: 3.0:1, enough for the 26 px masthead, not for body text
    name = theme(project, "big", ('<mj-section background-color="#0b2e59"',
                                  '<mj-section background-color="#ffffff"'),
                 css=("color: #ffffff; }", "color: #8a96a3; }"))
    found = check(project, cli, theme=name)
    assert [line for line in found if "#8a96a3" in line] == [], found
    assert any("text in #c9d6e8 on #ffffff" in line for line in found), found  # the 13 px kicker


def test_a_heading_that_skips_a_level(project: Path, cli: Cli) -> None:
    text = ISSUE.replace("The BRIDGE project met in **Barcelona**.",
                         "The BRIDGE project met in **Barcelona**.\n\n"
                         "          ##### What was decided\n\n          A pilot project.")
    found = check(project, cli, text)
    line = line_of(project, "body: |")
    assert found == [f"issues/check.yaml:{line}: items[1].body: warning: heading 'What was "
                     "decided' is h5 right after an h3: screen reader users move through an "
                     "email by its heading levels; make it an h4"]


def test_items_without_a_section_keep_heading_levels_in_order(project: Path, cli: Cli) -> None:
    text = ISSUE.replace("        section: Efus news\n", "")
    assert check(project, cli, text) == []


def test_a_layout_table_without_role_presentation(project: Path, cli: Cli) -> None:
    name = theme(project, "tables", (
        "  </mj-body>", '    <mj-raw><table width="100%"><tr><td>Contact us</td></tr></table>'
                       "</mj-raw>\n  </mj-body>"))
    found = check(project, cli, theme=name)
    assert found == ['issues/check.yaml: theme: warning: 1 layout table(s) without '
                     'role="presentation": screen readers announce their rows and columns; '
                     'add role="presentation" in the theme']


def test_alt_text_that_is_a_file_name(project: Path, cli: Cli) -> None:
    found = check(project, cli, ISSUE.replace("alt: Rooftops of Riga old town", "alt: riga.png"))
    line = line_of(project, "alt: riga.png")
    assert found == [f"issues/check.yaml:{line}: items[0].image.alt: warning: alt text "
                     "'riga.png' is a file name: say what the image shows"]
    found = check(project, cli, ISSUE.replace("alt: Rooftops of Riga old town", "alt: IMG_4031"))
    assert len(found) == 1 and "alt text 'IMG_4031' is a file name" in found[0]


def test_alt_text_that_repeats_the_heading(project: Path, cli: Cli) -> None:
    found = check(project, cli, ISSUE.replace("alt: Rooftops of Riga old town",
                                              "alt: Efus General Assembly 2020 in Riga"))
    line = line_of(project, "alt: Efus General")
    assert found == [f"issues/check.yaml:{line}: items[0].image.alt: warning: alt text 'Efus "
                     "General Assembly 2020 in Riga' repeats the heading beside the image: "
                     "screen readers say it twice; describe what the image shows instead"]


def test_the_same_link_text_for_two_places(project: Path, cli: Cli) -> None:
    found = check(project, cli, ISSUE.replace("label: Read about BRIDGE in Barcelona",
                                              "label: Register for the General Assembly"))
    line = len(textwrap.dedent(ISSUE).splitlines())  # the second label, the file's last line
    assert found == [f"issues/check.yaml:{line}: items[1].link.label: warning: link text "
                     "'Register for the General Assembly' leads to 2 different places: screen "
                     "readers list links by their text; say where each one goes"]


def test_the_same_link_text_in_a_body_for_two_places(project: Path, cli: Cli) -> None:
    text = ISSUE.replace("The BRIDGE project met in **Barcelona**.",
                         "The BRIDGE project [met](https://efus.eu/a) and [met](https://efus.eu/b).")
    found = check(project, cli, text)
    assert len(found) == 1 and "link text 'met' leads to 2 different places" in found[0]
    assert found[0].startswith(f"issues/check.yaml:{line_of(project, 'body: |')}: items[1].body:")


def test_body_text_below_14_px(project: Path, cli: Cli) -> None:
    name = theme(project, "small", ('<mj-text font-size="15px"', '<mj-text font-size="13px"'))
    assert check(project, cli, theme=name) == [
        "issues/check.yaml: theme: warning: the body text is 13 px; below 14 px it is hard to "
        "read on a phone; set a larger font-size on the theme's mj-text"]


def test_missing_language_and_direction(project: Path, cli: Cli) -> None:
    opening = """<mjml lang="{{ lang }}" dir="{{ dir }}">"""
    name = theme(project, "nolang", (opening, '<mjml dir="">'))
    found = check(project, cli, theme=name)
    assert found == [
        "issues/check.yaml: newsletter.toml: language: warning: the email has no language "
        "(<html lang>): screen readers guess how to pronounce it; set language in "
        "newsletter.toml, and keep lang= in the theme's <mjml>",
        "issues/check.yaml: theme: warning: the email has no text direction (<html dir>): set "
        "dir=\"ltr\" (or \"rtl\") on the theme's <mjml>"]


def test_a_right_to_left_language_gets_dir_rtl(project: Path, cli: Cli) -> None:
    toml = project / "newsletter.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('language = "en"',
                                                             'language = "ar"'), encoding="utf-8")
    result = cli("build", "issues/2020-01.yaml", "-o", "out")
    assert result.returncode == 0, result.stderr
    html = (project / "out/2020-01/email.html").read_text(encoding="utf-8")
    assert re.search(r'<html lang="ar" dir="rtl"', html)


def dark_logo(path: Path, *, background: tuple[int, int, int, int]) -> None:
    """A 300x120 logo: dark grey letters on `background` (transparent or not)."""
    image = Image.new("RGBA", (300, 120), background)
    draw = ImageDraw.Draw(image)
    draw.rectangle((20, 30, 280, 90), fill=(30, 30, 30, 255))
    image.save(path)


def test_a_dark_image_on_a_transparent_background(project: Path, cli: Cli) -> None:
    dark_logo(project / "issues/2020-01/logo.png", background=(0, 0, 0, 0))
    found = check(project, cli, ISSUE.replace("src: 2020-01/riga.png", "src: 2020-01/logo.png"))
    line = line_of(project, "src: 2020-01/logo.png")
    assert found == [f"issues/check.yaml:{line}: items[0].image: warning: 2020-01/logo.png is "
                     "dark on a transparent background: clients that invert colours (Gmail's "
                     "apps) show it on near-black, where it disappears; give the PNG a light "
                     "background of its own, or a light outline"]


def test_the_same_image_on_a_white_background_is_fine(project: Path, cli: Cli) -> None:
    dark_logo(project / "issues/2020-01/logo.png", background=(255, 255, 255, 255))
    assert check(project, cli, ISSUE.replace("src: 2020-01/riga.png",
                                             "src: 2020-01/logo.png")) == []
