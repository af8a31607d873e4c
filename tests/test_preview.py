"""`newsletter preview` as a real process: the page, live reload, broken input, screenshots."""

from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO, run_cli

ISSUE = "issues/2020-01.yaml"
RIGA = "Efus General Assembly 2020 in Riga"


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    issue: Path

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def state(self) -> dict:  # type: ignore[type-arg]
        return json.loads(self.get("state")[2])

    def wait_for(self, condition: Callable[[dict], bool], timeout: float = 10) -> dict:  # type: ignore[type-arg]
        """The first state that meets `condition`, looked at after each build the page's
        event stream announces (it announces the current one first); fails after
        `timeout` seconds."""
        deadline = time.monotonic() + timeout
        try:
            with urllib.request.urlopen(self.url + "events", timeout=timeout) as events:
                for line in events:
                    if not line.startswith(b"data:"):
                        continue
                    state = self.state()
                    if condition(state):
                        return state
                    assert time.monotonic() < deadline, \
                        f"no such state within {timeout}s: {state}"
        except TimeoutError:
            raise AssertionError(f"no build within {timeout}s: {self.state()}") from None
        raise AssertionError("the event stream ended")

    def until_watching(self) -> None:
        """Rewrite the issue unchanged until a rebuild shows that the watcher is running.

        The server answers before its watcher thread has started; a save in between would
        go unseen, so tests make sure before they edit anything.
        """
        before = self.state()["version"]
        for _ in range(5):
            self.issue.write_text(self.issue.read_text(encoding="utf-8"), encoding="utf-8")
            try:
                self.wait_for(lambda s: s["version"] != before, timeout=2)
                return
            except AssertionError:
                continue
        raise AssertionError("the preview never rebuilt after a save")

    def edit(self, old: str, new: str) -> None:
        text = self.issue.read_text(encoding="utf-8")
        assert old in text
        self.issue.write_text(text.replace(old, new), encoding="utf-8")


def start(project: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    return subprocess.Popen([sys.executable, "-m", "newsletter", "preview", ISSUE, *args],
                            cwd=project, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


@pytest.fixture
def server(project: Path) -> Iterator[Server]:
    """`newsletter preview` on a free port, in the throwaway project."""
    process = start(project, "--port", "0")
    ready, _, _ = select.select([process.stdout], [], [], 30)
    line = process.stdout.readline() if ready else ""  # type: ignore[union-attr]
    assert line.startswith(f"Preview of {ISSUE} at http://127.0.0.1:"), line
    url = line.split(" at ")[1].split()[0]
    running = Server(process, url, project / ISSUE)
    running.until_watching()
    yield running
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=10)


@pytest.fixture
def requested() -> list[str]:
    """Every URL the preview page and its frames asked for."""
    return []


@pytest.fixture
def page(browser, server: Server, requested: list[str]):  # type: ignore[no-untyped-def]
    """The preview page, open in a window wide enough for the three views side by side."""
    context = browser.new_context(viewport={"width": 1800, "height": 1000})
    page = context.new_page()
    page.on("request", lambda request: requested.append(request.url))
    page.goto(server.url)
    yield page
    context.close()


def frame_text(page, frame: str):  # type: ignore[no-untyped-def]
    return page.frame_locator(f"#{frame}").locator("body")


@pytest.mark.browser
def test_page_shows_desktop_and_phone_frames_the_text_part_and_the_inbox_row(page, server,
                                                                           requested):
    from playwright.sync_api import expect

    for frame in ("desktop", "phone"):
        expect(frame_text(page, frame)).to_contain_text(RIGA)
    assert page.locator("#desktop").evaluate("e => e.clientWidth") == 640
    assert page.locator("#phone").evaluate("e => e.clientWidth") == 375
    phone = page.frame_locator("#phone").locator("html")
    assert phone.evaluate("e => e.scrollWidth <= e.clientWidth"), "the phone frame scrolls sideways"
    expect(page.locator("#text")).to_contain_text(
        "View this email in your browser: https://newsletter.efus.eu/2020-01/")
    state = server.state()
    expect(page.locator(".inbox.narrow .subject")).to_have_text(state["subject"])
    expect(page.locator(".inbox.narrow .preheader")).to_have_text(state["preheader"])
    expect(page.locator(".inbox.narrow .sender")).to_have_text("Efus Newsletter")
    expect(page.locator("#status")).to_contain_text("0 error(s), 0 warning(s)")
    offsite = [url for url in requested if not url.startswith((server.url, "data:"))]
    assert offsite == [], "the preview fetched something from outside"


@pytest.mark.browser
def test_saving_the_issue_updates_the_open_page_without_navigating(page, server):
    from playwright.sync_api import expect

    expect(frame_text(page, "desktop")).to_contain_text(RIGA)
    page.evaluate("window.notReloaded = true")
    server.edit(f'title: "{RIGA}"', 'title: "General Assembly moved to Tallinn"')
    for frame in ("desktop", "phone"):
        expect(frame_text(page, frame)).to_contain_text("General Assembly moved to Tallinn",
                                                        timeout=5000)
    expect(page.locator("#text")).to_contain_text("General Assembly moved to Tallinn")
    assert page.evaluate("window.notReloaded") is True


@pytest.mark.browser
def test_a_save_keeps_the_readers_place_in_both_frames(page, server):
    from playwright.sync_api import expect

    expect(frame_text(page, "desktop")).to_contain_text(RIGA)
    where = {"desktop": 1400, "phone": 2600}
    for frame, y in where.items():
        page.evaluate(f"(y) => {{ const w = document.getElementById('{frame}').contentWindow;"
                      " w.scrollTo(0, y); w.sameDocument = true; }", y)
    server.edit(f'title: "{RIGA}"', 'title: "General Assembly moved to Tallinn"')
    for frame, y in where.items():
        expect(frame_text(page, frame)).to_contain_text("General Assembly moved to Tallinn",
                                                        timeout=5000)
        window = f"document.getElementById('{frame}').contentWindow"
        # Within a pixel or two: Chromium's scroll anchoring may shift the place by a
        # rounding pixel while the new document's layout settles; the reader sees no jump.
        assert abs(page.evaluate(f"{window}.scrollY") - y) <= 2
        assert page.evaluate(f"{window}.sameDocument") is True  # updated in place


@pytest.mark.browser
def test_invalid_yaml_replaces_the_email_with_the_error_until_the_file_is_fixed(page, server):
    from playwright.sync_api import expect

    expect(frame_text(page, "desktop")).to_contain_text(RIGA)
    good = server.issue.read_text(encoding="utf-8")
    line = good.splitlines().index("date: 2020-01-10") + 1
    page.evaluate("window.notReloaded = true")
    server.edit("date: 2020-01-10", "date: 2020-01-10: oops")
    expect(page.locator("#problems")).to_contain_text(f"{ISSUE}:{line}: column 17: YAML syntax "
                                                      "error", timeout=5000)
    expect(page.locator("#email")).to_be_hidden()
    server.issue.write_text(good, encoding="utf-8")
    expect(page.locator("#problems")).to_be_hidden(timeout=5000)
    expect(frame_text(page, "desktop")).to_contain_text(RIGA)
    assert page.evaluate("window.notReloaded") is True


def test_a_burst_of_saves_rebuilds_once(server):
    original = server.issue.read_text(encoding="utf-8")
    before = server.state()["version"]
    for n in range(1, 6):  # as fast as an editor's "save all"
        server.issue.write_text(original.replace(RIGA, f"Riga, save {n}"), encoding="utf-8")
    state = server.wait_for(lambda s: "Riga, save 5" in s["text"])
    assert state["version"] == before + 1


def test_a_template_error_is_shown_with_its_line_and_the_server_stays_up(server, project):
    shutil.copytree(REPO / "templates" / "default", project / "templates" / "mine")
    before = server.state()["version"]
    server.edit("lists: [members]", "lists: [members]\ntemplate: mine")
    server.wait_for(lambda s: s["version"] > before)
    server.until_watching()  # it restarts to watch the new theme as well
    template = project / "templates" / "mine" / "newsletter.mjml.j2"
    good = template.read_text(encoding="utf-8")
    template.write_text(good.replace("<mj-body", "{% if %}<mj-body"), encoding="utf-8")
    state = server.wait_for(lambda s: bool(s["problems"]))
    line = next(n for n, text in enumerate(good.splitlines(), 1) if "<mj-body" in text)
    assert state["problems"][0].startswith(f"templates/mine/newsletter.mjml.j2:{line}: "
                                           "template error"), state["problems"]
    assert server.get("email.html")[0] == 404
    template.write_text(good.replace("Dear ", "Hello "), encoding="utf-8")
    server.wait_for(lambda s: not s["problems"])
    assert b"Hello reader" in server.get("email.html")[2]


def test_the_dark_view_applies_the_themes_dark_rules(server, project):
    shutil.copytree(REPO / "templates" / "default", project / "templates" / "dark")
    template = project / "templates" / "dark" / "newsletter.mjml.j2"
    template.write_text(template.read_text(encoding="utf-8").replace(
        "<mj-style>", "<mj-style>@media (prefers-color-scheme: dark) { h1 { color: #eee; } }"),
        encoding="utf-8")
    server.edit("lists: [members]", "lists: [members]\ntemplate: dark")
    assert server.wait_for(lambda s: s["dark_rules"])["problems"] == []
    assert b"@media (min-width: 0px)" in server.get("email.html?scheme=dark")[2]
    assert b"@media (max-width: 0px)" in server.get("email.html")[2]  # off in the light view


def image_url(server: Server, src: str) -> str:
    """Where the email in the preview takes an image from."""
    html = server.get("email.html")[2].decode()
    return next(url for url in re.findall(r'src="(assets/[^"]+)"', html) if url.endswith(src))


def test_replacing_an_image_rebuilds_and_serves_the_new_file_under_a_new_address(server):
    old_url = image_url(server, "2020-01/riga.png")
    status, headers, _ = server.get(old_url)
    assert status == 200 and "max-age" in headers["Cache-Control"]  # may be kept: see below
    before = server.state()["version"]
    image = server.issue.parent / "2020-01" / "riga.png"
    image.write_bytes(image.read_bytes() + b"\0")
    server.wait_for(lambda s: s["version"] > before)
    new_url = image_url(server, "2020-01/riga.png")
    assert new_url != old_url  # so no browser shows the old one from its cache
    status, headers, body = server.get(new_url)
    assert (status, headers["Content-Type"], body) == (200, "image/png", image.read_bytes())
    status, headers, body = server.get("assets/2020-01/riga.png")  # by its src alone
    assert (status, body, headers["Cache-Control"]) == (200, image.read_bytes(), "no-store")


def test_only_the_issues_images_are_served_and_the_email_may_fetch_nothing_else(server):
    assert server.get("assets/2020-01/conference.png")[0] == 200
    for path in ("assets/../newsletter.toml", "assets/%2e%2e/newsletter.toml",
                 "assets/2020-01.yaml", "assets//etc/passwd", "newsletter.toml"):
        assert server.get(path)[0] == 404, path
    status, headers, body = server.get("email.html")
    assert status == 200 and b"Efus General Assembly 2020 in Riga" in body
    assert headers["Content-Security-Policy"].startswith("default-src 'none'; img-src 'self'")


def test_ctrl_c_stops_the_server_cleanly(server):
    server.process.send_signal(signal.SIGINT)
    out, err = server.process.communicate(timeout=10)
    assert server.process.returncode == 0
    assert "Traceback" not in err
    assert out.rstrip().endswith("preview stopped")


def test_a_port_in_use_exits_1_and_suggests_the_next_one(project):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("preview", ISSUE, "--port", str(port), cwd=project, timeout=30)
    assert result.returncode == 1
    assert f"port {port} is in use; try --port {port + 1}" in result.stderr


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def colours(browser, path: Path) -> int:  # type: ignore[no-untyped-def]
    """How many distinct colours a sample of the image's pixels has, decoded by Chromium."""
    page = browser.new_page()
    data = base64.b64encode(path.read_bytes()).decode()
    page.set_content(f'<img src="data:image/png;base64,{data}">')
    count = page.evaluate("""() => {
        const img = document.querySelector("img"), canvas = document.createElement("canvas");
        [canvas.width, canvas.height] = [img.naturalWidth, img.naturalHeight];
        const context = canvas.getContext("2d");
        context.drawImage(img, 0, 0);
        const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
        const seen = new Set();
        for (let i = 0; i < pixels.length; i += 4 * 31) {
            seen.add((pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2]);
        }
        return seen.size;
    }""")
    page.close()
    return count


@pytest.mark.browser
def test_screenshot_writes_desktop_and_mobile_pngs(cli, project, browser):
    result = cli("preview", ISSUE, "--screenshot", "shots")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "wrote shots/2020-01-desktop.png, shots/2020-01-mobile.png"
    for view, width in (("desktop", 640), ("mobile", 375)):
        path = project / "shots" / f"2020-01-{view}.png"
        actual_width, height = png_size(path)
        assert actual_width == width and height > 1000, (path, actual_width, height)
        assert colours(browser, path) > 20, f"{path} is nearly blank"


def test_screenshot_without_chromium_says_how_to_install_it(cli):
    result = cli("preview", ISSUE, "--screenshot", "shots",
                 env={"NEWSLETTER_CHROMIUM": "/nonexistent/chromium"})
    assert result.returncode == 1
    assert "screenshots need headless Chromium, not found at /nonexistent/chromium" in result.stderr
    assert "apt-get install chromium" in result.stderr
