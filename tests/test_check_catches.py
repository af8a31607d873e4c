"""`newsletter check` catches what a send would regret, each at its file:line and field.

An unknown list, a mistyped placeholder, a text file named .png, an empty subject, no
postal address, a script link, a theme that fetches from the network, a newsletter.toml
that does not parse: each is an error before the send, not a surprise on the day.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

Cli = Callable[..., subprocess.CompletedProcess[str]]
REPO = Path(__file__).resolve().parent.parent
MEMBERS = str(REPO / "examples" / "members.csv")

ISSUE = """\
    date: 2020-01-10
    subject: Efus Newsletter - January 2020
    preheader: News from our projects
    lists: [members]
    items:
      - title: BRIDGE in Barcelona
        body: |
          The BRIDGE project met in **Barcelona**.
          Its next meeting is in Genk.
"""


def check(project: Path, cli: Cli, text: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    (project / "issues" / "check.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    result = cli("check", "issues/check.yaml", **kwargs)
    assert "Traceback" not in result.stderr
    return result


def lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return result.stderr.splitlines()


@pytest.fixture
def members(cli: Cli) -> None:
    """The sample subscribers (fields organisation and city) on the list members."""
    assert cli("subscribers", "import", MEMBERS, "--list", "members").returncode == 0


def test_a_list_the_store_does_not_have_is_an_error_with_a_did_you_mean(
        project: Path, cli: Cli, members: None) -> None:
    result = check(project, cli, ISSUE.replace("lists: [members]", "lists: [members, membres]"))
    assert result.returncode == 1
    assert "issues/check.yaml:4: lists[1]: no list 'membres' in newsletter.db (did you mean " \
           "'members'?); lists: members" in lines(result)


def test_lists_without_a_subscriber_database_are_an_error(project: Path, cli: Cli) -> None:
    result = check(project, cli, ISSUE)
    assert result.returncode == 1
    assert "issues/check.yaml:4: lists[0]: no list 'members': there is no subscriber database " \
           "yet (newsletter.db); import the list first: newsletter subscribers import FILE.csv " \
           "--list members" in lines(result)
    assert not (project / "newsletter.db").exists()


def test_a_placeholder_no_subscriber_has_is_an_error_at_its_line(
        project: Path, cli: Cli, members: None) -> None:
    text = ISSUE.replace("Its next meeting is in Genk.",
                         "Dear %%nmae%% of %%organisation%%, see you in Genk.")
    result = check(project, cli, text)
    assert result.returncode == 1
    found = [line for line in lines(result) if "%%" in line]
    assert found[0].startswith("issues/check.yaml:9: items[0].body: placeholder %%nmae%%: no "
                               "subscriber in newsletter.db has a 'nmae' field (did you mean "
                               "%%name%%?); known: %%city%%, %%email%%, %%name%%")
    assert found[1] == ("issues/check.yaml:9: items[0].body: warning: placeholder "
                        "%%organisation%% will be empty for subscribers without a "
                        "'organisation' field")


def test_a_text_file_named_png_is_not_an_image(project: Path, cli: Cli) -> None:
    (project / "issues" / "check").mkdir()
    (project / "issues" / "check" / "photo.png").write_text("not a picture\n")
    shutil.copy(project / "issues" / "2020-01" / "riga.png",
                project / "issues" / "check" / "riga.jpg")
    text = ISSUE + ("        image:\n          src: check/photo.png\n          alt: A photo\n"
                    "      - title: Riga\n        body: The General Assembly.\n"
                    "        image:\n          src: check/riga.jpg\n          alt: Rooftops\n")
    result = check(project, cli, text)
    assert result.returncode == 1
    found = lines(result)
    assert any(re.fullmatch(r"issues/check\.yaml:11: items\[0\]\.image\.src: 'photo\.png' is not "
                            r"a readable PNG image \(.*\); export it again from your image "
                            r"editor", line) for line in found), found
    assert "issues/check.yaml:16: items[1].image.src: 'riga.jpg' is a PNG image named like a " \
           "JPEG: rename it to match (mail clients trust the name)" in found


def test_every_image_width_and_height_in_the_html_is_whole_pixels(cli: Cli,
                                                                  project: Path) -> None:
    assert cli("build", "issues/2020-01.yaml").returncode == 0
    html = (project / "build" / "2020-01" / "email.html").read_text(encoding="utf-8")
    images = re.findall(r"<img\b[^>]*>", html)
    assert len(images) == 4
    for tag in images:
        width = int(re.search(r'\bwidth="([^"]*)"', tag).group(1))  # type: ignore[union-attr]
        height = int(re.search(r'\bheight="([^"]*)"', tag).group(1))  # type: ignore[union-attr]
        if "riga.png" in tag:  # 400 x 300 pixels, in a third of the 640 px column
            assert (width, height) == (185, 139)


def test_an_empty_subject_is_an_error(project: Path, cli: Cli) -> None:
    result = check(project, cli, ISSUE.replace("subject: Efus Newsletter - January 2020",
                                               'subject: ""'))
    assert result.returncode == 1
    assert "issues/check.yaml:2: subject: expected a subject line, got an empty one (it is " \
           "what the inbox shows)" in lines(result)


def test_no_postal_address_is_an_error(project: Path, cli: Cli, members: None) -> None:
    toml = project / "newsletter.toml"
    toml.write_text(re.sub(r"(?m)^postal_address = .*\n", "", toml.read_text()))
    result = check(project, cli, ISSUE)
    assert result.returncode == 1
    assert "issues/check.yaml: newsletter.toml: postal_address: no postal address: bulk mail " \
           "must carry the sender's postal address (CAN-SPAM, and the e-commerce rules of " \
           "most EU members); set postal_address under [newsletter]" in lines(result)


@pytest.mark.parametrize("url", ["javascript:alert(1)", "vbscript:msgbox(1)",
                                 "data:text/html;base64,PHNjcmlwdD4="])
def test_a_script_link_in_markdown_is_an_error_at_its_line(project: Path, cli: Cli,
                                                           members: None, url: str) -> None:
    text = ISSUE.replace("Its next meeting is in Genk.", f"Its next meeting: [Genk]({url}).")
    result = check(project, cli, text)
    assert result.returncode == 1
    assert any(line.startswith(f"issues/check.yaml:9: items[0].body: link [Genk]({url[:40]}) "
                               "runs a script or embeds data") for line in lines(result))


def test_generic_link_text_is_a_warning_in_the_issues_language(project: Path, cli: Cli,
                                                               members: None) -> None:
    toml = project / "newsletter.toml"
    toml.write_text(toml.read_text().replace('language = "en"', 'language = "fr"'))
    text = ISSUE.replace("Its next meeting is in Genk.",
                         "Programme [ici](https://efus.eu/genk), or [click here](https://efus.eu).")
    result = check(project, cli, text)
    assert result.returncode == 0, result.stderr
    found = [line for line in lines(result) if "link text" in line]
    assert found == [
        "issues/check.yaml:9: items[0].body: warning: link text 'ici' says nothing out of "
        "context (screen readers list links by their text): say where it goes",
        "issues/check.yaml:9: items[0].body: warning: link text 'click here' says nothing out "
        "of context (screen readers list links by their text): say where it goes"]


class _Recorder(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"h1 { color: red }")

    do_CONNECT = do_GET  # noqa: N815 - a proxy request

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that records every request (as a site or as a proxy)."""
    hits: list[str] = []
    handler = type("Recorder", (_Recorder,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


def test_a_theme_that_fetches_is_refused_and_composing_stays_offline(
        project: Path, cli: Cli, members: None, recorder: tuple[str, list[str]]) -> None:
    url, hits = recorder
    theme = project / "templates" / "fetching"
    shutil.copytree(REPO / "templates" / "default", theme)
    css = theme / "inline.css"
    css.write_text(f"@import url({url}/extra.css);\n" + css.read_text()
                   + f"h2 {{ background: url({url}/dot.png); }}\n")
    mjml = theme / "newsletter.mjml.j2"
    text = mjml.read_text().replace(
        "<mj-head>", f'<mj-head>\n    <mj-font name="Lato" href="{url}/lato.css" />', 1)
    text = re.sub(r"(<mj-body[^>]*>)", rf'\1\n<mj-section><mj-column><mj-image src="{url}/'
                  r'logo.png" alt="Logo" /></mj-column></mj-section>', text, count=1)
    mjml.write_text(text)
    issue = ISSUE.replace("lists: [members]", "lists: [members]\n    template: fetching")

    result = check(project, cli, issue, env={"HTTP_PROXY": url, "HTTPS_PROXY": url})
    assert result.returncode == 1, result.stderr
    found = [line for line in lines(result) if line.startswith("templates/fetching/")]
    assert "templates/fetching/inline.css:1: theme: @import loads a stylesheet from elsewhere: " \
           "the email must load nothing from elsewhere; put what it needs in the theme, or use " \
           "the issue's images" in found
    assert any(line.startswith("templates/fetching/inline.css:") and "CSS url() loads a file"
               in line for line in found[1:])
    font_line = text.splitlines().index(next(line for line in text.splitlines()
                                             if "<mj-font" in line)) + 1
    assert any(line.startswith(f"templates/fetching/newsletter.mjml.j2:{font_line}: theme: "
                               "<mj-font>") for line in found)
    assert any("a remote image" in line for line in found)
    built = cli("build", "issues/check.yaml", env={"HTTP_PROXY": url, "HTTPS_PROXY": url})
    assert built.returncode == 0, built.stderr
    assert hits == []


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux's unshare")
def test_building_needs_no_network(project: Path) -> None:
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("unshare -n is not permitted here")
    theme = project / "templates" / "importing"
    shutil.copytree(REPO / "templates" / "default", theme)
    (theme / "inline.css").write_text("@import url(https://fonts.example.org/x.css);\n"
                                      + (theme / "inline.css").read_text())
    (project / "issues" / "check.yaml").write_text(
        textwrap.dedent(ISSUE).replace("lists: [members]", "template: importing"))
    result = subprocess.run(["unshare", "-n", sys.executable, "-m", "newsletter", "build",
                             "issues/check.yaml"], cwd=project, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert (project / "build" / "check" / "email.html").is_file()


@pytest.mark.parametrize(("line", "expected"), [
    ("name = Efus Newsletter", 'newsletter.toml:2: put the text in double quotes: name = '
                               '"Efus Newsletter" (TOML: Invalid value)'),
    ('name = "Efus Newsletter', "newsletter.toml:2: this quoted value is never closed: add the "
                                "closing quote"),
    ('name: "Efus"', "newsletter.toml:2: write key = value (TOML uses '=', not ':')"),
])
def test_newsletter_toml_mistakes_say_what_to_do_at_their_line(project: Path, cli: Cli,
                                                               line: str, expected: str) -> None:
    (project / "newsletter.toml").write_text(f"[newsletter]\n{line}\n")
    result = cli("check", "issues/2020-01.yaml")
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
