"""Sign-up with double opt-in on a real `newsletter serve`, mailing through a real SMTP server."""

from __future__ import annotations

import email
import email.policy
import html
import json
import re
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import altcha
import pytest
import requests
from conftest import REPO, run_cli
from smtp_server import Behaviour, SmtpServer
from test_web import Site, assert_plain_page, signer, start, store, subscribe

from newsletter.audience import consent

SIGNUP = {"email": "ana@example.org", "name": "Ana Lopez", "list:members": "1"}


def configure(project: Path, smtp: SmtpServer | None, **signup: object) -> None:
    """[signup] with `signup` on top of two public lists; mail to the SMTP server."""
    config = project / "newsletter.toml"
    text = re.sub(r"\n\[signup\]\n.*\Z", "", config.read_text(encoding="utf-8"), flags=re.S)
    if smtp is not None:
        text = re.sub(r'\ntransport = "[^"]*"',
                      f'\ntransport = "smtp://127.0.0.1:{smtp.port}?tls=off"', text)
    settings = {"lists": ["members", "partners"], **signup}
    text += "\n[signup]\n" + "".join(f"{key} = {json.dumps(value)}\n"
                                     for key, value in settings.items())
    config.write_text(text, encoding="utf-8")


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def served(project: Path, smtp: SmtpServer) -> Iterator[Site]:
    configure(project, smtp)
    running = start(project)
    yield running
    running.stop()


def form_token(site: Site) -> str:
    page = site.get("/subscribe")
    return re.search(r'name="form_token" value="([^"]+)"', page.text)[1]  # type: ignore[index]


def sign_up(site: Site, **fields: str) -> requests.Response:
    return site.post("/subscribe", {"form_token": form_token(site), **SIGNUP, **fields})


def mails(smtp: SmtpServer) -> list[email.message.EmailMessage]:
    with smtp.lock:
        return [email.message_from_bytes(m.data, policy=email.policy.default)  # type: ignore[misc]
                for m in smtp.accepted]


def confirm_path(message: email.message.EmailMessage) -> str:
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    [url] = re.findall(r"https://newsletter\.efus\.eu/confirm/\S+", text)
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert f'href="{url}"' in html
    return urlsplit(url).path


def footer_path(message: email.message.EmailMessage) -> str:
    """The preferences link of a received issue, the same in both parts, as a path."""
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    [url] = re.findall(r"https://newsletter\.efus\.eu/preferences/\S+", text)
    assert f'href="{url}"' in message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return urlsplit(url).path


def status(project: Path, address: str) -> str | None:
    with store(project) as subscribers:
        found = subscribers.get(address)
    return found.status if found else None


def members(project: Path, list_name: str) -> list[str]:
    with sqlite3.connect(project / "newsletter.db") as db:
        return [email for (email,) in db.execute(
            "SELECT email FROM active_recipients WHERE list_name = ? ORDER BY email",
            (list_name,))]


def test_the_form_offers_the_lists_and_the_wording_on_a_plain_page(served: Site) -> None:
    page = served.get("/subscribe")
    assert_plain_page(page, 200)
    assert 'name="list:members"' in page.text and 'name="list:partners"' in page.text
    assert "checked" not in page.text  # consent is never ticked in advance
    assert "I would like to receive this newsletter by email." in page.text
    assert 'name="website"' in page.text  # the field bots fill in
    assert "<script" not in page.text


def test_a_sign_up_mails_one_confirmation_and_only_its_button_subscribes(
        project: Path, served: Site, smtp: SmtpServer) -> None:
    answer = sign_up(served, **{"list:partners": "1"})
    assert_plain_page(answer, 200)
    assert "Please check your inbox" in answer.text
    [mail] = mails(smtp)
    assert mail["To"] == "Ana Lopez <ana@example.org>"
    assert mail["Subject"] == "Please confirm your subscription to Efus Newsletter"
    assert mail["Auto-Submitted"] == "auto-generated" and "List-Unsubscribe" not in mail
    assert "lists: members, partners" in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert status(project, "ana@example.org") == "pending"
    assert members(project, "members") == []

    path = confirm_path(mail)
    for _ in range(3):  # a mail scanner, a preview, the reader: none confirms
        page = served.get(path)
        assert_plain_page(page, 200)
        assert "Confirm my subscription" in page.text and "ana@example.org" in page.text
    assert status(project, "ana@example.org") == "pending"

    done = served.post(path)
    assert_plain_page(done, 200)
    assert "You are subscribed" in done.text and "members, partners" in done.text
    assert members(project, "members") == members(project, "partners") == ["ana@example.org"]
    assert re.search(r'href="\.\./preferences/[^"]+"', done.text)
    with store(project) as subscribers:
        ana = subscribers.get("ana@example.org")
        [record] = consent.of_subscriber(subscribers.connection, ana.id)  # type: ignore[union-attr]
    assert record.lists == ["members", "partners"]
    assert record.source == "sign-up form at https://newsletter.efus.eu/subscribe"
    assert record.text and record.text.startswith("I would like to receive")
    assert record.confirmed_at is not None and record.client_ip is None
    again = served.post(path)
    assert again.status_code == 200 and "You had already confirmed" in again.text
    assert len(mails(smtp)) == 1
    with store(project) as subscribers:
        subscribers.unsubscribe("ana@example.org", reason="changed her mind")
    assert served.post(path).status_code == 200  # an old link never undoes a later change
    assert status(project, "ana@example.org") == "unsubscribed"


def test_the_answer_is_the_same_whatever_the_address_and_only_confirming_brings_one_back(
        project: Path, served: Site, smtp: SmtpServer, cli) -> None:  # type: ignore[no-untyped-def]
    subscribe(project, "members", "active@example.org", "gone@example.org",
              "dead@example.org")
    with store(project) as subscribers:
        subscribers.unsubscribe("gone@example.org", reason="asked")
        subscribers.mark_bounced("dead@example.org", "550 no such user")
    assert cli("subscribers", "erase", "erased@example.org", "--yes").returncode == 0
    sign_up(served, email="pending@example.org")
    addresses = ["new@example.org", "pending@example.org", "active@example.org",
                 "gone@example.org", "dead@example.org", "erased@example.org"]
    answers = {a: sign_up(served, email=a) for a in addresses}
    assert {(r.status_code, r.text) for r in answers.values()} == {
        (200, answers["new@example.org"].text)}
    recipients = [m["To"].addresses[0].addr_spec for m in mails(smtp)]
    assert sorted(recipients) == sorted(addresses)  # pending@ got one, not two
    assert status(project, "gone@example.org") == "unsubscribed"
    assert status(project, "dead@example.org") == "bounced"
    for message in mails(smtp):
        if message["To"].addresses[0].addr_spec in ("dead@example.org", "erased@example.org"):
            assert served.post(confirm_path(message)).status_code == 200
    assert status(project, "dead@example.org") == "active"
    assert sorted(members(project, "members")) == [
        "active@example.org", "dead@example.org", "erased@example.org"]
    (project / "again.csv").write_text("email\nerased@example.org\n", encoding="utf-8")
    imported = cli("subscribers", "import", "again.csv", "--list", "members")
    assert "1 unchanged" in imported.stdout  # back by their own choice: no longer erased


def test_bots_strangers_and_mistakes_send_nothing(project: Path, served: Site,
                                                  smtp: SmtpServer) -> None:
    token = form_token(served)
    honeypot = served.post("/subscribe", {"form_token": token, **SIGNUP, "website": "x"})
    assert honeypot.status_code == 200 and "Please check your inbox" in honeypot.text
    stale = served.post("/subscribe", {**SIGNUP, "form_token": signer(project).sign(
        "form", int(time.time()) - 2 * 86400)})
    assert stale.status_code == 400 and "press Subscribe once more" in stale.text
    assert 'value="ana@example.org"' in stale.text  # what they typed is still there
    forged = served.post("/subscribe", {**SIGNUP, "form_token": "eyJ9.abc"})
    assert forged.status_code == 400
    elsewhere = served.post("/subscribe", {"form_token": token, **SIGNUP},
                            headers={"Origin": "https://evil.example"})
    assert_plain_page(elsewhere, 403)
    unknown = served.post("/subscribe", {"form_token": token, **SIGNUP},
                          headers={"Origin": "null"})  # a site whose pages send no Referer
    assert unknown.status_code == 400 and "press Subscribe once more" in unknown.text
    for bad, says in (({"email": "ana@"}, "does not look complete"),
                      ({"email": "ana@example.org\r\nBcc: x@example.org"}, "does not look"),
                      ({"list:members": ""}, "at least one list"),
                      ({"name": "Ana\x1b[31m"}, "shorten the name")):
        answer = served.post("/subscribe", {"form_token": token, **SIGNUP, **bad})
        assert answer.status_code == 400 and says in answer.text, bad
    assert served.http.put(served.url + "subscribe", timeout=10).status_code == 405
    assert mails(smtp) == [] and status(project, "ana@example.org") is None


def test_a_client_may_sign_up_so_many_people_an_hour(project: Path, smtp: SmtpServer) -> None:
    configure(project, smtp, per_client_per_hour=3)
    site = start(project)
    try:
        answers = [sign_up(site, email=f"p{n}@example.org").status_code for n in range(5)]
    finally:
        site.stop()
    assert answers == [200, 200, 200, 429, 429]
    assert len(mails(smtp)) == 3


def test_an_expired_or_altered_link_changes_nothing(project: Path, served: Site,
                                                    smtp: SmtpServer) -> None:
    sign_up(served)
    path = confirm_path(mails(smtp)[0])
    consent_id, subscriber_id, _ = signer(project).verify("confirm", path.split("/")[-1], 3)  # type: ignore[misc]
    expired = signer(project).sign("confirm", consent_id, subscriber_id, int(time.time()) - 1)
    assert_plain_page(served.post(f"/confirm/{expired}"), 410)
    assert_plain_page(served.post(path[:-2] + "xx"), 400)
    assert status(project, "ana@example.org") == "pending"


def test_a_mail_that_could_not_leave_can_be_asked_for_again(project: Path) -> None:
    with SmtpServer(Behaviour(rcpt_replies={"ana@example.org": "451 4.3.0 try later"},
                              rcpt_reply_times=1)) as smtp:
        configure(project, smtp)
        site = start(project)
        try:
            first = sign_up(site)
            assert_plain_page(first, 503)
            assert mails(smtp) == []
            assert sign_up(site).status_code == 200
        finally:
            site.stop()
        assert len(mails(smtp)) == 1
    configure(project, SmtpServer())  # a relay that is not running: nothing listens there
    site = start(project)
    try:
        assert_plain_page(sign_up(site, email="ben@example.org"), 503)
    finally:
        site.stop()


def test_the_proof_of_work_is_checked_and_counts_once(project: Path, smtp: SmtpServer) -> None:
    configure(project, smtp, proof_of_work=True, proof_of_work_max=2000)
    site = start(project)
    try:
        page = site.get("/subscribe")
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert site.get("/subscribe/altcha.js").status_code == 200
        token = re.search(r'name="form_token" value="([^"]+)"', page.text)[1]  # type: ignore[index]
        challenge = json.loads(html.unescape(re.search(r'data-altcha="([^"]+)"',
                                                       page.text)[1]))  # type: ignore[index]
        unsolved = site.post("/subscribe", {"form_token": token, **SIGNUP, "altcha": ""})
        assert unsolved.status_code == 400 and "data-altcha" in unsolved.text
        solution = altcha.solve_challenge_v1(challenge["challenge"], challenge["salt"],
                                             challenge["algorithm"], challenge["maxNumber"])
        payload = altcha.PayloadV1(challenge["algorithm"], challenge["challenge"],
                                   solution.number, challenge["salt"],  # type: ignore[union-attr]
                                   challenge["signature"]).to_base64()
        solved = site.post("/subscribe", {"form_token": token, **SIGNUP, "altcha": payload})
        assert solved.status_code == 200, solved.text
        replayed = site.post("/subscribe", {"form_token": token, **SIGNUP,
                                            "email": "ben@example.org", "altcha": payload})
        assert replayed.status_code == 400
    finally:
        site.stop()
    assert [m["To"].addresses[0].addr_spec for m in mails(smtp)] == ["ana@example.org"]


def test_newsletter_form_prints_a_form_another_site_can_carry(project: Path,
                                                              smtp: SmtpServer) -> None:
    configure(project, smtp, embed_origins=["https://efus.eu"], welcome=True)
    printed = run_cli("form", cwd=project)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.startswith('<form method="post" '
                                     'action="https://newsletter.efus.eu/subscribe"')
    assert "<script" not in printed.stdout
    token = re.search(r'name="form_token" value="([^"]+)"', printed.stdout)[1]  # type: ignore[index]
    site = start(project)
    try:
        posted = site.post("/subscribe", {"form_token": token, **SIGNUP},
                           headers={"Origin": "https://efus.eu"})
        assert posted.status_code == 200, posted.text
        assert site.post(confirm_path(mails(smtp)[0])).status_code == 200
    finally:
        site.stop()
    confirmation, welcome = mails(smtp)
    assert welcome["Subject"] == "Welcome to Efus Newsletter"
    assert "/preferences/" in welcome.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    with sqlite3.connect(project / "newsletter.db") as db:
        assert db.execute("SELECT source FROM consents").fetchall() == [
            ("sign-up form on https://efus.eu",)]


@pytest.mark.browser
def test_in_chromium_sign_up_confirm_and_open_the_next_issues_preferences_link(
        project: Path, smtp: SmtpServer, browser) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    configure(project, smtp)
    site = start(project)
    context = browser.new_context()
    try:
        page = context.new_page()
        requested: list[str] = []
        problems: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.on("console", lambda message: problems.append(message.text))
        page.goto(f"{site.url}subscribe")
        page.get_by_label("Email address").fill("ana@example.org")
        page.get_by_label("Name (optional)").fill("Ana Lopez")
        page.get_by_label("members").check()
        page.get_by_role("button", name="Subscribe").click()
        expect(page.locator("h1")).to_have_text("Please check your inbox")

        [confirmation] = mails(smtp)  # the mail has arrived at the SMTP server
        page.goto(site.url + confirm_path(confirmation).lstrip("/"))
        expect(page.locator("h1")).to_have_text("Confirm your subscription to Efus Newsletter")
        assert status(project, "ana@example.org") == "pending"
        page.get_by_role("button", name="Confirm my subscription").click()
        expect(page.locator("h1")).to_have_text("You are subscribed")
        assert members(project, "members") == ["ana@example.org"]

        sent = run_cli("send", "issues/2020-01.yaml", "--list", "members", "--yes",
                       "--transport", f"smtp://127.0.0.1:{smtp.port}?tls=off", cwd=project)
        assert sent.returncode == 0, sent.stderr
        issue = mails(smtp)[-1]
        assert issue["Subject"].startswith("Efus Newsletter") and "List-Id" in issue
        page.goto(site.url + footer_path(issue).lstrip("/"))
        expect(page.locator("h1")).to_have_text("Your preferences")
        expect(page.get_by_label("members")).to_be_checked()
        assert context.cookies() == []
        assert all(url.startswith(site.url) for url in requested), requested
        assert problems == [], problems  # e.g. a Content-Security-Policy violation
    finally:
        context.close()
        site.stop()


def test_behind_a_proxy_each_client_address_has_its_own_limit_and_may_be_kept(
        project: Path, smtp: SmtpServer) -> None:
    configure(project, smtp, per_client_per_hour=1, client_ip_header="X-Real-IP",
              record_client_ip=True)
    site = start(project)
    try:
        codes = [site.post("/subscribe", {"form_token": form_token(site), **SIGNUP,
                                          "email": f"p{n}@example.org"},
                           headers={"X-Real-IP": ip}).status_code
                 for n, ip in enumerate(["192.0.2.1", "192.0.2.2", "192.0.2.1"])]
    finally:
        site.stop()
    assert codes == [200, 200, 429]
    with sqlite3.connect(project / "newsletter.db") as db:
        assert db.execute("SELECT client_ip FROM consents ORDER BY id").fetchall() == [
            ("192.0.2.1",), ("192.0.2.2",)]


def test_the_language_chosen_picks_the_themes_mail_in_that_language(
        project: Path, smtp: SmtpServer) -> None:
    shutil.copytree(REPO / "templates" / "default", project / "templates" / "default")
    (project / "templates/default/signup/confirm.fr.txt.j2").write_text(
        '{% set subject = "Confirmez votre inscription" %}Bonjour {{ name }},\n'
        "confirmez ici : {{ confirm_url }}\n", encoding="utf-8")
    configure(project, smtp, languages=["en", "fr"])
    site = start(project)
    try:
        sign_up(site, language="fr")
        sign_up(site, email="ben@example.org", language="en")
    finally:
        site.stop()
    french, english = mails(smtp)
    assert french["Subject"] == "Confirmez votre inscription"
    assert "Bonjour Ana Lopez" in french.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert english["Subject"] == "Please confirm your subscription to Efus Newsletter"
    confirm_path(french)  # the HTML part falls back to the theme's confirm.html.j2
    with store(project) as subscribers:
        assert subscribers.get("ana@example.org").fields == {"language": "fr"}  # type: ignore[union-attr]


def test_sign_ups_never_confirmed_are_forgotten_after_the_link_expires(project: Path) -> None:
    from newsletter.audience import signup
    from newsletter.audience.store import SubscriberStore

    with SubscriberStore(project / "newsletter.db", signer(project).address_hash) as opened:
        signup.request(opened, signup.SignupRequest("ana@example.org", "Ana", ["members"], "",
                                                    "test", "wording", None),
                       interval=86400, now=time.time())
        opened.add("ben@example.org", "members")
        assert signup.purge_pending(opened, older_than=3600) == 0
        assert signup.purge_pending(opened, older_than=-60) == 1
        assert opened.get("ana@example.org") is None
        assert opened.get("ben@example.org") is not None
        assert consent.of_subscriber(opened.connection, 1) == []


def test_signup_languages_must_be_language_codes(project: Path) -> None:
    configure(project, None, languages=["en", "fr, de", "French"])
    result = run_cli("form", cwd=project)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "signup.languages: 'fr, de', 'French': expected language codes such as" \
        in result.stderr
    configure(project, None, languages=["en", "fr-BE", "zh-Hant"])
    assert run_cli("form", cwd=project).returncode == 0
