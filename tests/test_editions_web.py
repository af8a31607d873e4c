"""Editions on the web: the archive's pages and hreflang links, the preview's switch, and a
right-to-left edition as Chromium renders it."""

from __future__ import annotations

import io
import json
import os
import select
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from test_editions import MAIN, lists, write

from newsletter.audience.tokens import signer_for
from newsletter.config import load_settings
from newsletter.web.app import WebApp
from newsletter.web.archive import Archive

Cli = Callable[..., subprocess.CompletedProcess[str]]
ISSUE = "issues/2020-02.yaml"
ARABIC = """\
subject: "نشرة Efus – فبراير 2020: ريغا"
preheader: "جمعيتنا العامة في ريغا، وزيارة دراسية إلى خنك."
intro: |
  مرحبًا بكم في عدد فبراير! هذا الشهر: جمعيتنا العامة في ريغا.
items:
  - title: "الجمعية العامة لـ Efus لعام 2020 في ريغا"
    image:
      alt: "أسطح مدينة ريغا القديمة"
    body: |
      ستُعقد الجمعية العامة يومي **26 و27 مارس** في ريغا (لاتفيا).

      يمكن للأعضاء التسجيل عبر الإنترنت حتى 1 مارس.
    link:
      label: "التسجيل في الجمعية العامة"
  - title: "BRIDGE: زيارة دراسية إلى خنك"
    body: يزور مشروع BRIDGE مدينة خنك (بلجيكا) للتحضير لمشروعه التجريبي.
highlights:
  - body: نشرت Efus للتو دليل PREPARE.
agenda:
  - event: اجتماع الجمعية العامة
    place: ريغا، لاتفيا
"""


def call(app: WebApp, path: str) -> tuple[str, dict[str, str], str]:
    answer: dict[str, object] = {}
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "wsgi.input": io.BytesIO()}
    body = b"".join(app(environ, lambda status, headers: answer.update(
        status=status, headers=dict(headers))))
    return answer["status"], answer["headers"], body.decode("utf-8", "replace")  # type: ignore[return-value]


def test_the_archive_publishes_each_edition_with_hreflang_links(project: Path, cli: Cli) -> None:
    write(project)
    added = cli("subscribers", "add", "ana@example.org", "--list", "members")
    assert added.returncode == 0, added.stderr
    sent = cli("send", ISSUE, "--list", "members", "--yes", "--to-file", "out")
    assert sent.returncode == 0, sent.stderr  # the archive shows what has been sent
    settings = load_settings(project / "newsletter.toml", env={})
    app = WebApp(settings, Archive(settings, project / "issues"), signer_for(settings))

    status, _, french = call(app, "/2020-02/fr/")
    assert status == "200 OK" and '<html lang="fr" dir="ltr"' in french
    assert "Bienvenue dans le numéro de février" in french
    for hreflang, url in (("en", "https://newsletter.efus.eu/2020-02/"),
                          ("fr", "https://newsletter.efus.eu/2020-02/fr/")):
        link = f'<link rel="alternate" hreflang="{hreflang}" href="{url}">'
        assert link in french and link in call(app, "/2020-02/")[2]
    status, headers, _ = call(app, "/2020-02/fr")
    assert (status, headers["Location"]) == ("301 Moved Permanently", "fr/")
    assert call(app, "/2020-02/2020-01/riga.png")[0] == "200 OK"  # ../2020-01/riga.png
    index = call(app, "/")[2]
    assert '<a href="2020-02/fr/" hreflang="fr" lang="fr">Français</a>' in index
    assert "2020-02.fr" not in index  # an edition is no issue of its own

    exported = cli("build-archive", "public")
    assert exported.returncode == 0, exported.stderr
    assert (project / "public" / "2020-02" / "fr" / "index.html").read_text() == french


def test_an_edition_needs_no_catalog_to_be_sent_but_check_says_the_theme_stays_english(
        project: Path, cli: Cli) -> None:
    write(project, french=None)
    (project / "issues" / "2020-02.pt.yaml").write_text(
        'subject: "Boletim da Efus – fevereiro de 2020"\n', encoding="utf-8")
    lists(project)
    result = cli("check", ISSUE)
    assert result.returncode == 0, result.stderr
    assert "issues/2020-02.pt.yaml: warning: no message catalog for 'pt': the theme's own " \
           "words (greeting, links, footer) stay in English" in result.stderr


def start_preview(project: Path) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    process = subprocess.Popen([sys.executable, "-m", "newsletter", "preview", ISSUE,
                                "--port", "0"], cwd=project, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ready, _, _ = select.select([process.stdout], [], [], 30)
    line = process.stdout.readline() if ready else ""  # type: ignore[union-attr]
    assert line.startswith(f"Preview of {ISSUE} at http://127.0.0.1:"), line
    return process, line.split(" at ")[1].split()[0]


@pytest.mark.browser
def test_the_preview_shows_each_edition_by_its_switch(project: Path, browser) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    write(project)
    process, url = start_preview(project)
    try:
        with urllib.request.urlopen(url + "state?edition=fr", timeout=10) as answer:
            state = json.loads(answer.read())
        assert state["subject"] == "Lettre de l'Efus – février 2020 : Riga"
        assert state["editions"] == [{"language": "en", "name": "English"},
                                     {"language": "fr", "name": "Français"}]
        context = browser.new_context(viewport={"width": 1800, "height": 1000})
        page = context.new_page()
        page.goto(url)
        desktop = page.frame_locator("#desktop").locator("body")
        expect(desktop).to_contain_text("Efus General Assembly 2020 in Riga")
        page.select_option("#edition", "fr")
        expect(desktop).to_contain_text("Assemblée générale 2020 de l'Efus à Riga")
        expect(page.frame_locator("#phone").locator("html")).to_have_attribute("lang", "fr")
        expect(page.locator("#text")).to_contain_text("Bonjour à vous,")
        expect(page.locator(".inbox.narrow .subject")).to_have_text(state["subject"])
        page.reload()  # the choice is kept
        expect(desktop).to_contain_text("Assemblée générale 2020 de l'Efus à Riga")
        context.close()
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=10)


@pytest.mark.browser
def test_a_right_to_left_edition_reads_right_to_left_without_overflow_on_a_phone(
        project: Path, cli: Cli, browser) -> None:  # type: ignore[no-untyped-def]
    write(project, MAIN, french=None)
    (project / "issues" / "2020-02.ar.yaml").write_text(ARABIC, encoding="utf-8")
    lists(project)
    checked = cli("check", ISSUE)
    assert checked.returncode == 0 and "warning" not in checked.stderr, checked.stderr
    assert cli("build", ISSUE).returncode == 0
    page_file = project / "build" / "2020-02" / "ar" / "index.html"
    context = browser.new_context(viewport={"width": 375, "height": 812})
    page = context.new_page()
    page.goto(page_file.as_uri())
    html = page.locator("html")
    assert (html.get_attribute("lang"), html.get_attribute("dir")) == ("ar", "rtl")
    intro = page.get_by_text("مرحبًا بكم في عدد فبراير")
    assert intro.evaluate("e => getComputedStyle(e).direction") == "rtl"
    box, width = intro.bounding_box(), page.evaluate("document.documentElement.clientWidth")
    assert box and box["x"] + box["width"] > width - 40  # lines begin on the right
    greeting = page.get_by_text("مرحبًا قارئنا العزيز،")
    assert greeting.evaluate("e => getComputedStyle(e).textAlign") in ("right", "start")
    assert page.evaluate("document.documentElement.scrollWidth <= "
                         "document.documentElement.clientWidth"), "it scrolls sideways"
    assert page.locator("img").evaluate_all(  # every image loaded, none wider than the phone
        "imgs => imgs.every(i => i.complete && i.naturalWidth > 0 && "
        "i.getBoundingClientRect().right <= document.documentElement.clientWidth)")
    context.close()
