"""`newsletter serve` as a real process: one-click unsubscribe, its page, and the archive."""

from __future__ import annotations

import email
import email.policy
import io
import os
import re
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from conftest import run_cli
from smtp_server import Behaviour, SmtpServer

from newsletter.audience.store import NewRow, SubscriberStore, address_key
from newsletter.audience.tokens import Signer, signer_for
from newsletter.config import load_settings
from newsletter.web.app import WebApp
from newsletter.web.archive import Archive

ISSUE = "issues/2020-01.yaml"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}
SECOND_ISSUE = """\
number: 2
date: 2020-02-07
title: "Efus Newsletter – February 2020"
subject: "Efus Newsletter – February 2020: Riga"
preheader: "Our General Assembly in Riga."
items:
  - title: "Efus General Assembly 2020 in Riga"
    image:
      src: 2020-01/riga.png
      alt: "Rooftops of Riga old town"
    body: The General Assembly will be held on **26-27 March** in Riga.
"""


@dataclass
class Site:
    """A running `newsletter serve` and an HTTP client that never goes through a proxy."""

    process: subprocess.Popen[str]
    url: str
    http: requests.Session

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return self.http.get(self.url + path.lstrip("/"), allow_redirects=False, timeout=10,
                             **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, data: object = None, **kwargs: object) -> requests.Response:
        return self.http.post(self.url + path.lstrip("/"), data=data, allow_redirects=False,
                              timeout=10, **kwargs)  # type: ignore[arg-type]

    def stop(self, how: signal.Signals = signal.SIGINT) -> str:
        """Ctrl-C, as a user stops it (or SIGTERM, as systemd does); what it printed."""
        self.process.send_signal(how)
        out, _ = self.process.communicate(timeout=10)
        assert self.process.returncode == 0, out
        return out


def start(project: Path, *args: str) -> Site:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    log = open(project / "serve.log", "w")  # noqa: SIM115 - the server writes it until stopped
    process = subprocess.Popen([sys.executable, "-m", "newsletter", "serve", "--port", "0",
                                *args], cwd=project, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=log)
    log.close()
    ready, _, _ = select.select([process.stdout], [], [], 30)
    line = process.stdout.readline() if ready else ""  # type: ignore[union-attr]
    match = re.match(r"Serving on (http://127\.0\.0\.1:\d+/\S*) \(Ctrl-C to stop\)", line)
    assert match, line + (project / "serve.log").read_text()
    http = requests.Session()
    http.trust_env = False  # loopback only, whatever proxy the environment names
    return Site(process, match[1], http)


@pytest.fixture
def site(project: Path) -> Iterator[Site]:
    running = start(project)
    yield running
    assert "stopped" in running.stop()


def store(project: Path) -> SubscriberStore:
    return SubscriberStore(project / "newsletter.db")


def subscribe(project: Path, list_name: str, *addresses: str) -> list[int]:
    with store(project) as subscribers:
        subscribers.merge([NewRow(n, a, address_key(a), a.split("@")[0].title(), {})
                           for n, a in enumerate(addresses, 1)], list_name)
        return [subscribers.get(a).id for a in addresses]  # type: ignore[union-attr]


def membership(project: Path, address: str, list_name: str) -> str:
    with store(project) as subscribers:
        subscriber = subscribers.get(address)
        assert subscriber is not None
        found = [m.status for m in subscribers.memberships(subscriber.id)
                 if m.list_name == list_name]
    return found[0] if found else "none"


def snapshot(project: Path) -> list[tuple]:  # type: ignore[type-arg]
    """Every row about people, to show that a request changed nothing."""
    with sqlite3.connect(project / "newsletter.db") as db:
        return (db.execute("SELECT * FROM subscribers ORDER BY id").fetchall()
                + db.execute("SELECT * FROM memberships ORDER BY 1, 2").fetchall())


def signer(project: Path) -> Signer:
    return signer_for(load_settings(project / "newsletter.toml", env={}))


def send(project: Path, issue: str, folder: str, *args: str) -> dict[str, email.message.Message]:
    """Send `issue` to members into outbox `folder`; the messages by recipient address."""
    result = run_cli("send", issue, "--list", "members", "--yes", "--to-file", folder, *args,
                     cwd=project)
    assert result.returncode == 0, result.stderr
    return received(project / folder)


def received(folder: Path) -> dict[str, email.message.Message]:
    messages = {}
    for path in folder.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        messages[message["To"].addresses[0].addr_spec] = message
    return messages


def unsubscribe_path(message: email.message.Message) -> str:
    """The path of the https URL in List-Unsubscribe, as a mailbox provider reads it."""
    header = " ".join(str(message["List-Unsubscribe"]).split())
    urls = re.findall(r"<(https://[^>]+)>", header)
    assert len(urls) == 1 and "<mailto:" in header, header
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    return urlsplit(urls[0]).path


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src", "action") and value is not None:
                self.found.append((tag, value))


def links(html: str) -> list[tuple[str, str]]:
    parser = Links()
    parser.feed(html)
    return parser.found


def assert_plain_page(response: requests.Response, status: int) -> None:
    """No cookie, no redirect, the security headers; private pages are never cached."""
    assert response.status_code == status, response.text
    assert "Set-Cookie" not in response.headers and "Location" not in response.headers
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none';")
    assert response.headers["Cache-Control"] == "no-store"
    assert "<script" not in response.text


def test_one_click_post_from_a_sent_message_unsubscribes_and_the_next_send_skips_them(
        project: Path, site: Site) -> None:
    subscribe(project, "members", "ana@example.org", "ben@example.org", "cleo@example.org")
    subscribe(project, "partners", "ben@example.org")
    first = send(project, ISSUE, "sent-01")
    assert sorted(first) == ["ana@example.org", "ben@example.org", "cleo@example.org"]

    answer = site.post(unsubscribe_path(first["ben@example.org"]), data="List-Unsubscribe="
                       "One-Click", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_plain_page(answer, 200)
    assert "You are unsubscribed" in answer.text and "members" in answer.text
    assert membership(project, "ben@example.org", "members") == "unsubscribed"
    assert membership(project, "ben@example.org", "partners") == "active"
    assert membership(project, "ana@example.org", "members") == "active"

    (project / "issues/2020-02.yaml").write_text(SECOND_ISSUE, encoding="utf-8")
    second = send(project, "issues/2020-02.yaml", "sent-02")
    assert sorted(second) == ["ana@example.org", "cleo@example.org"]


def test_repeating_the_one_click_post_is_harmless_and_keeps_the_first_date(
        project: Path, site: Site) -> None:
    (ben,) = subscribe(project, "members", "ben@example.org")
    path = "/unsubscribe/" + signer(project).unsubscribe_token(ben, "members")
    assert site.post(path, ONE_CLICK).status_code == 200
    with sqlite3.connect(project / "newsletter.db") as db:  # as if it were long ago, so that
        db.execute("UPDATE memberships SET changed_at = '2020-01-10T09:00:00Z'")  # a new date
    after_first = snapshot(project)  # would show whatever the clock's resolution
    again = site.post(path, ONE_CLICK)
    assert_plain_page(again, 200)
    assert snapshot(project) == after_first
    assert site.get(path).status_code == 200  # and the page says so, with no second button
    assert "You were already unsubscribed" in site.get(path).text


def test_get_shows_the_list_and_a_confirm_form_and_changes_nothing(project: Path,
                                                                   site: Site) -> None:
    (ana,) = subscribe(project, "members", "ana@example.org")
    path = "/unsubscribe/" + signer(project).unsubscribe_token(ana, "members")
    before = snapshot(project)
    for _ in range(3):  # a link scanner, a preview pane, the reader
        page = site.get(path)
        assert_plain_page(page, 200)
        assert site.http.head(site.url + path.lstrip("/"), timeout=10).status_code == 200
    assert snapshot(project) == before
    assert "ana@example.org" in page.text and "<strong>members</strong>" in page.text
    assert re.search(r'<form method="post">\s*<input type="hidden" name="List-Unsubscribe" '
                     r'value="One-Click">', page.text), page.text


@pytest.mark.parametrize("spoil", [
    pytest.param(lambda token, other: token[:-1] + ("A" if token[-1] != "A" else "B"),
                 id="tampered-mac"),
    pytest.param(lambda token, other: token[:len(token) // 2], id="truncated"),
    pytest.param(lambda token, other: token.split(".")[0], id="no-mac"),
    pytest.param(lambda token, other: other.split(".")[0] + "." + token.split(".")[1],
                 id="other-subscribers-payload"),
    pytest.param(lambda token, other: Signer(b"another-secret-0123456789")
                 .unsubscribe_token(2, "members"), id="other-secret"),
])
def test_bad_tokens_answer_400_and_change_nothing(project: Path, site: Site,
                                                  spoil: Callable[[str, str], str]) -> None:
    ana, ben = subscribe(project, "members", "ana@example.org", "ben@example.org")
    tokens = signer(project)
    spoiled = spoil(tokens.unsubscribe_token(ana, "members"),
                    tokens.unsubscribe_token(ben, "members"))
    before = snapshot(project)
    assert_plain_page(site.post("/unsubscribe/" + spoiled, ONE_CLICK), 400)
    assert_plain_page(site.get("/unsubscribe/" + spoiled), 400)
    assert snapshot(project) == before


def test_a_token_for_another_list_changes_only_that_list_or_nothing(project: Path,
                                                                    site: Site) -> None:
    ana, ben = subscribe(project, "members", "ana@example.org", "ben@example.org")
    subscribe(project, "partners", "ben@example.org")
    tokens = signer(project)
    before = snapshot(project)
    for token in (tokens.unsubscribe_token(ana, "partners"),  # a list she is not on
                  tokens.unsubscribe_token(ana, "nosuchlist"),
                  tokens.unsubscribe_token(9999, "members")):  # nobody has that id
        assert_plain_page(site.post("/unsubscribe/" + token, ONE_CLICK), 404)
        assert_plain_page(site.get("/unsubscribe/" + token), 404)
    assert snapshot(project) == before
    assert site.post("/unsubscribe/" + tokens.unsubscribe_token(ben, "partners"),
                     ONE_CLICK).status_code == 200
    assert membership(project, "ben@example.org", "partners") == "unsubscribed"
    assert membership(project, "ben@example.org", "members") == "active"


def test_a_post_without_the_one_click_body_or_too_large_changes_nothing(
        project: Path, site: Site) -> None:
    (ana,) = subscribe(project, "members", "ana@example.org")
    path = "/unsubscribe/" + signer(project).unsubscribe_token(ana, "members")
    before = snapshot(project)
    assert_plain_page(site.post(path), 400)
    assert_plain_page(site.post(path, {"List-Unsubscribe": "Yes"}), 400)
    too_large = site.post(path, "List-Unsubscribe=One-Click&x=" + "x" * 20_000)
    assert too_large.status_code == 413
    assert site.http.put(site.url + path.lstrip("/"), data=ONE_CLICK, timeout=10
                         ).status_code == 405
    assert snapshot(project) == before
    multipart = site.post(path, files={"List-Unsubscribe": (None, "One-Click")})
    assert_plain_page(multipart, 200)  # RFC 8058 allows multipart/form-data too
    assert membership(project, "ana@example.org", "members") == "unsubscribed"


def assert_security_headers(headers: Mapping[str, str]) -> None:
    assert headers["Content-Security-Policy"].startswith("default-src 'none';")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"


def test_the_answers_waitress_gives_itself_carry_the_security_headers_too(
        project: Path, site: Site) -> None:
    # A body over the webhooks' megabyte is refused by waitress before the app sees it.
    too_large = site.http.post(site.url + "webhooks/postmark", data=b"x" * (1 << 21),
                               timeout=30)
    assert too_large.status_code == 413
    assert_security_headers(too_large.headers)
    # A request line that is not HTTP: waitress's own 400.
    host, port = urlsplit(site.url).hostname, urlsplit(site.url).port
    with socket.create_connection((host, port), timeout=10) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nNo colon in this header\r\n\r\n")
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    head, _, _ = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    assert status.split()[1] == "400"
    assert_security_headers(dict(line.split(": ", 1) for line in lines))

def test_test_messages_carry_a_working_link_that_unsubscribes_nobody(
        project: Path, site: Site) -> None:
    subscribe(project, "members", "ana@example.org")
    result = run_cli("send", ISSUE, "--test", "--to", "ana@example.org", "--to-file", "tests",
                     cwd=project)
    assert result.returncode == 0, result.stderr
    path = unsubscribe_path(received(project / "tests")["ana@example.org"])
    before = snapshot(project)
    page = site.get(path)
    assert_plain_page(page, 200)
    assert "test message" in page.text
    done = site.post(path, ONE_CLICK)
    assert_plain_page(done, 200)
    assert "this was a test" in done.text
    assert site.post(path.replace("/unsubscribe/", "/resubscribe/")).status_code == 200
    assert snapshot(project) == before


def test_resubscribe_undoes_a_list_unsubscribe_but_never_a_bounce_or_complaint(
        project: Path, site: Site) -> None:
    ana, ben, cleo = subscribe(project, "members", "ana@example.org", "ben@example.org",
                               "cleo@example.org")
    tokens = signer(project)
    for sid in (ana, ben, cleo):
        assert site.post(f"/unsubscribe/{tokens.unsubscribe_token(sid, 'members')}",
                         ONE_CLICK).status_code == 200
    with store(project) as subscribers:
        subscribers.mark_bounced("ben@example.org", "550 no such user")
        subscribers.mark_complained("cleo@example.org", "spam report")
    back = site.post(f"/resubscribe/{tokens.unsubscribe_token(ana, 'members')}")
    assert_plain_page(back, 200)
    assert "subscribed again" in back.text
    assert membership(project, "ana@example.org", "members") == "active"
    before = snapshot(project)
    for sid in (ben, cleo):
        refused = site.post(f"/resubscribe/{tokens.unsubscribe_token(sid, 'members')}")
        assert_plain_page(refused, 409)
        assert "contact@efus.eu" in refused.text
    assert snapshot(project) == before
    with store(project) as subscribers:
        assert subscribers.get("ben@example.org").status == "bounced"  # type: ignore[union-attr]
        assert subscribers.get("cleo@example.org").status == "complained"  # type: ignore[union-attr]
    assert site.get(f"/resubscribe/{tokens.unsubscribe_token(ana, 'members')}"
                    ).status_code == 405  # a GET never changes anything


def test_unsubscribing_during_a_send_skips_that_subscriber_from_the_next_batch(
        project: Path, site: Site) -> None:
    """The send checks the store before each batch it claims, not only when it starts."""
    addresses = [f"reader{n:03}@example.org" for n in range(1, 121)]
    ids = subscribe(project, "members", *addresses)
    config = project / "newsletter.toml"
    config.write_text(config.read_text().replace("connections = 4", "connections = 1"))
    target = addresses[99]  # in the second claim of 50, after the slow first message
    with SmtpServer(Behaviour(data_delay=3.0, slow_recipients={addresses[0]})) as smtp:
        sending = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "send", "issues/2020-01.yaml", "--list",
             "members", "--yes", "--transport", f"smtp://127.0.0.1:{smtp.port}?tls=off"],
            cwd=project, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        smtp.wait_for(lambda: smtp.connections > 0, timeout=20)  # the send is under way
        token = signer(project).unsubscribe_token(ids[99], "members")
        assert site.post(f"/unsubscribe/{token}", ONE_CLICK).status_code == 200
        out, err = sending.communicate(timeout=60)
        assert sending.returncode == 0, err
        recipients = smtp.recipients()
    assert target not in recipients and len(recipients) == 119
    with sqlite3.connect(project / "newsletter.db") as db:
        assert db.execute("SELECT state, reply FROM deliveries WHERE email = ?",
                          (target,)).fetchone() == ("skipped", "no longer subscribed")


def test_archive_lists_sent_issues_newest_first_and_every_link_resolves(
        project: Path, site: Site) -> None:
    subscribe(project, "members", "ana@example.org")
    (project / "issues/2020-02.yaml").write_text(SECOND_ISSUE, encoding="utf-8")
    (project / "issues/2020-03.yaml").write_text(SECOND_ISSUE.replace("2020-02-07",
                                                 "2020-03-06"), encoding="utf-8")  # a draft
    (project / "issues/broken.yaml").write_text("date: [\n", encoding="utf-8")
    assert "No issue has been sent yet" in site.get("/").text
    send(project, ISSUE, "sent-01")
    send(project, "issues/2020-02.yaml", "sent-02")

    index = site.get("/")
    assert index.status_code == 200 and index.headers["Cache-Control"] == "public, max-age=300"
    hrefs = [value for tag, value in links(index.text) if tag == "a"]
    assert hrefs == ["2020-02/", "2020-01/"]
    assert "2020-03" not in index.text and site.get("/2020-03/").status_code == 404
    for href in hrefs:
        page = site.get(href)
        assert page.status_code == 200 and "Efus General Assembly 2020 in Riga" in page.text
        assert "ana@example.org" not in page.text and "%%" not in page.text
        for tag, value in links(page.text):
            url = urljoin(site.url + href, value)
            if value.startswith("https://newsletter.efus.eu/"):  # our base_url: this server
                url = site.url + urlsplit(value).path.lstrip("/")
            if url.startswith(site.url):
                answer = site.get(url[len(site.url):])
                assert answer.status_code == 200, (href, tag, value)
                if tag == "img":
                    assert answer.headers["Content-Type"] == "image/png"
    assert site.get("/2020-01").headers["Location"] == "2020-01/"
    assert site.get("/2020-01/issues/2020-01.yaml").status_code == 404
    assert site.get("/2020-01/../newsletter.db").status_code == 404


def test_build_archive_writes_the_served_pages_as_static_files(project: Path, site: Site,
                                                               cli) -> None:  # type: ignore[no-untyped-def]
    subscribe(project, "members", "ana@example.org")
    (project / "issues/2020-02.yaml").write_text(SECOND_ISSUE, encoding="utf-8")
    send(project, ISSUE, "sent-01")
    send(project, "issues/2020-02.yaml", "sent-02")
    result = cli("build-archive", "public")
    assert result.returncode == 0, result.stderr
    assert "2 issue(s): 2020-02/, 2020-01/" in result.stdout
    public = project / "public"
    assert (public / "index.html").read_text(encoding="utf-8") == site.get("/").text
    for slug in ("2020-01", "2020-02"):
        page = (public / slug / "index.html").read_text(encoding="utf-8")
        assert page == site.get(f"/{slug}/").text
        for tag, value in links(page):
            if tag == "img":
                assert (public / slug / value).is_file(), value
    for _, href in links((public / "index.html").read_text(encoding="utf-8")):
        assert (public / href / "index.html").is_file()


def test_url_prefix_serves_the_same_site_below_a_path(project: Path) -> None:
    running = start(project, "--url-prefix", "/newsletter")
    try:
        assert running.url.endswith("/newsletter/")
        index = running.get("")
        assert index.status_code == 200 and "past issues" in index.text
        bare = running.http.get(running.url.rstrip("/"), allow_redirects=False, timeout=10)
        assert bare.headers["Location"] == "newsletter/"
    finally:
        assert "stopped" in running.stop(signal.SIGTERM)


def test_a_database_locked_for_too_long_answers_503_with_retry_after(project: Path) -> None:
    """In process, with a short busy timeout: a long import holds the write lock."""
    (ana,) = subscribe(project, "members", "ana@example.org")
    toml = project / "newsletter.toml"
    toml.write_text(toml.read_text().replace("[send]\n", "[send]\nbusy_timeout = 0.2\n"))
    settings = load_settings(toml, env={})
    assert settings.busy_timeout == 0.2
    app = WebApp(settings, Archive(settings, project / "issues"), signer_for(settings))
    path = "/unsubscribe/" + signer(project).unsubscribe_token(ana, "members")
    importing = sqlite3.connect(project / "newsletter.db", isolation_level=None)
    importing.execute("BEGIN IMMEDIATE")
    try:
        status, headers, page = call(app, "POST", path, b"List-Unsubscribe=One-Click")
    finally:
        importing.execute("ROLLBACK")
        importing.close()
    assert status == "503 Service Unavailable" and headers["Retry-After"] == "60"
    assert b"Nothing was changed yet" in page
    assert membership(project, "ana@example.org", "members") == "active"
    assert call(app, "POST", path, b"List-Unsubscribe=One-Click")[0] == "200 OK"
    assert membership(project, "ana@example.org", "members") == "unsubscribed"


def call(app: WebApp, method: str, path: str, body: bytes) -> tuple[str, dict[str, str], bytes]:
    """One request to the WSGI app, without a server."""
    answer: dict[str, object] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer.update(status=status, headers=dict(headers))

    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "CONTENT_LENGTH": str(len(body)),
               "CONTENT_TYPE": "application/x-www-form-urlencoded",
               "wsgi.input": io.BytesIO(body)}
    page = b"".join(app(environ, start_response))
    return answer["status"], answer["headers"], page  # type: ignore[return-value]


@pytest.mark.browser
def test_the_confirm_button_and_the_resubscribe_button_work_in_chromium(
        project: Path, site: Site, browser) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    (ana,) = subscribe(project, "members", "ana@example.org")
    token = signer(project).unsubscribe_token(ana, "members")
    context = browser.new_context()
    page = context.new_page()
    requested: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda message: problems.append(message.text))
    page.goto(f"{site.url}unsubscribe/{token}")
    expect(page.locator("h1")).to_have_text("Unsubscribe from Efus Newsletter?")
    assert membership(project, "ana@example.org", "members") == "active"
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.locator("h1")).to_have_text("You are unsubscribed")
    assert page.url == f"{site.url}unsubscribe/{token}"  # answered in place, no redirect
    assert membership(project, "ana@example.org", "members") == "unsubscribed"
    with store(project) as subscribers:
        reason = subscribers.memberships(ana)[0].reason
    assert reason == "unsubscribe page"
    page.get_by_role("button", name="Subscribe again").click()
    expect(page.locator("h1")).to_have_text("You are subscribed again")
    assert membership(project, "ana@example.org", "members") == "active"
    assert context.cookies() == []
    assert all(url.startswith(site.url) for url in requested), requested
    assert problems == [], problems  # e.g. a Content-Security-Policy violation
    context.close()


def test_2000_one_click_posts_from_8_clients_lose_no_update(project: Path, site: Site) -> None:
    """Every targeted subscriber ends unsubscribed and nobody else changes; rate printed."""
    everyone = [f"person{n:05}@example.org" for n in range(2400)]
    ids = subscribe(project, "members", *everyone)
    subscribe(project, "partners", *everyone[::3])
    tokens = signer(project)
    targets = ids[:2000]
    paths = [f"unsubscribe/{tokens.unsubscribe_token(sid, 'members')}" for sid in targets]
    before = snapshot(project)
    failures: list[str] = []

    def client(share: list[str]) -> None:
        http = requests.Session()
        http.trust_env = False
        for path in share:
            answer = http.post(site.url + path, data=ONE_CLICK, timeout=30)
            if answer.status_code != 200:
                failures.append(f"{path}: {answer.status_code}")

    threads = [threading.Thread(target=client, args=(paths[n::8],)) for n in range(8)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    print(f"\n{len(paths)} one-click POSTs from 8 clients in {elapsed:.2f} s "
          f"({len(paths) / elapsed:.0f}/s)")
    assert failures == []
    with sqlite3.connect(project / "newsletter.db") as db:
        unsubscribed = set(db.execute("SELECT m.subscriber_id, l.name FROM memberships m "
                                      "JOIN lists l ON l.id = m.list_id "
                                      "WHERE m.status = 'unsubscribed'"))
    assert unsubscribed == {(sid, "members") for sid in targets}
    changed = set(snapshot(project)) - set(before)
    assert len(changed) == len(targets)  # those memberships, and no other row


def test_the_archive_index_names_the_language_of_its_words_and_of_the_titles(
        project: Path, cli) -> None:  # type: ignore[no-untyped-def]
    config = project / "newsletter.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        'language = "en"', 'language = "pt"', 1), encoding="utf-8")  # no catalog speaks it
    subscribe(project, "members", "ana@example.org")
    send(project, ISSUE, "sent-01")
    assert cli("build-archive", "public").returncode == 0
    index = (project / "public" / "index.html").read_text(encoding="utf-8")
    assert '<html lang="en" dir="ltr">' in index and "past issues" in index  # English words
    assert '<a href="2020-01/" lang="pt" dir="ltr">' in index  # over a Portuguese issue
