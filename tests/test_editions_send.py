"""Each subscriber gets the edition in their language: through real SMTP and a mail API."""

from __future__ import annotations

import email
import email.policy
import json
import re
import subprocess
from collections import Counter
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

from api_server import ApiServer
from smtp_server import SmtpServer
from test_editions import MAIN, write

Cli = Callable[..., subprocess.CompletedProcess[str]]
ISSUE = "issues/2020-02.yaml"
MEMBERS = """\
Email Address,First Name,Last Name,Language
ana@example.org,Ana,Lopez,en
jean@example.org,Jean,Dupont,fr
marie@example.org,Marie,Peeters,fr-BE
kim@example.org,Kim,Kowalski,xx
lena@example.org,Lena,Weber,lb
ole@example.org,Ole,Hansen,
"""
FRENCH_READERS = {"jean@example.org", "marie@example.org", "lena@example.org",
                  "paul@example.org"}


def prepare(project: Path, cli: Cli) -> None:
    """The two-edition issue, Luxembourgish readers sent to French, and the subscribers."""
    write(project)
    config = project / "newsletter.toml"
    config.write_text(config.read_text().replace(
        'language = "en"\n', 'language = "en"\nlanguage_fallbacks = { lb = ["fr", "de"] }\n'))
    (project / "members.csv").write_text(MEMBERS, encoding="utf-8")
    imported = cli("subscribers", "import", "members.csv", "--list", "members")
    assert imported.returncode == 0, imported.stderr
    added = cli("subscribers", "add", "paul@example.org", "--list", "members", "--name",
                "Paul Martin", "--language", "French")
    assert added.returncode == 0, added.stderr
    assert "language=fr" in cli("subscribers", "show", "paul@example.org").stdout


def parts(message: EmailMessage) -> tuple[str, str]:
    return (message.get_body(("plain",)).get_content(),  # type: ignore[union-attr]
            message.get_body(("html",)).get_content())  # type: ignore[union-attr]


def assert_french(subject: str, text: str, html: str, name: str) -> None:
    assert subject == "Lettre de l'Efus – février 2020 : Riga"
    for words in (f"Bonjour {name},", "Bienvenue dans le numéro de février",
                  "Assemblée générale 2020 de l'Efus à Riga", "26\u201327 mars 2020",
                  "N°\u00a02 - 7 février 2020", "Se désabonner\u00a0:",
                  "Afficher cet e-mail dans votre navigateur\u00a0: "
                  "https://newsletter.efus.eu/2020-02/fr/",
                  "English: https://newsletter.efus.eu/2020-02/"):
        assert words in text, words
    assert "Dear" not in text and "The General Assembly" not in text
    assert '<html lang="fr" dir="ltr"' in html and "Le saviez-vous\u202f?" in html
    assert 'href="https://newsletter.efus.eu/2020-02/fr/"' in html  # view in browser


def assert_english(subject: str, text: str, html: str, name: str) -> None:
    assert subject == "Efus Newsletter – February 2020: Riga"
    for words in (f"Dear {name},", "Welcome to the February issue", "26\u201327 March 2020",
                  "No. 2 - 7 February 2020", "Unsubscribe:",
                  "Français: https://newsletter.efus.eu/2020-02/fr/"):
        assert words in text, words
    assert "Bonjour" not in text and '<html lang="en" dir="ltr"' in html


def test_each_subscriber_gets_their_edition_through_smtp_once(project: Path, cli: Cli) -> None:
    prepare(project, cli)
    with SmtpServer() as server:
        result = cli("send", ISSUE, "--list", "members", "--yes", "--transport",
                     f"smtp://127.0.0.1:{server.port}?tls=off")
        assert result.returncode == 0, result.stderr
        again = cli("send", ISSUE, "--list", "members", "--yes", "--transport",
                    f"smtp://127.0.0.1:{server.port}?tls=off")
        assert again.returncode == 0, again.stderr
    everyone = ["ana", "jean", "marie", "kim", "lena", "ole", "paul"]
    assert Counter(server.recipients()) == Counter(f"{n}@example.org" for n in everyone)
    for accepted in server.accepted:
        message = email.message_from_bytes(accepted.data, policy=email.policy.default)
        address, name = accepted.rcpt_tos[0], message["To"].addresses[0].display_name
        text, html = parts(message)  # type: ignore[arg-type]
        if address in FRENCH_READERS:
            assert_french(message["Subject"], text, html, name)
        else:  # en, xx (unknown), no language: the main edition
            assert_english(message["Subject"], text, html, name)

    report = cli("status", ISSUE, "--json")
    assert json.loads(report.stdout)["by_edition"] == {"en": {"sent": 3}, "fr": {"sent": 4}}
    assert json.loads(report.stdout)["counts"] == {"sent": 7}  # one ledger, each once
    assert "  editions: en 3 sent; fr 4 sent" in cli("status", ISSUE).stdout


def test_a_mail_api_gets_one_edition_per_request(project: Path, cli: Cli) -> None:
    """SendGrid takes one body per request: recipients of two editions need two requests."""
    prepare(project, cli)
    key = "SG.test-key-for-the-edition-tests"
    with ApiServer("sendgrid", key) as server:
        result = cli("send", ISSUE, "--list", "members", "--yes", "--transport", server.url,
                     env={"NEWSLETTER_API_KEY": key})
        assert result.returncode == 0, result.stderr
    assert sorted(len(r.recipients) for r in server.received) == [3, 4]
    assert all(not r.problems for r in server.received)
    for message in server.rendered():
        name = re.sub(r"\s*<.*", "", message.to).strip('"')
        check = assert_french if message.email in FRENCH_READERS else assert_english
        check(message.subject, message.text, message.html, name)


def test_reviewers_get_every_edition(project: Path, cli: Cli) -> None:
    write(project)
    result = cli("send", ISSUE, "--test", "--to", "ed@example.org", "--to-file", "review")
    assert result.returncode == 0, result.stderr
    assert "ed@example.org (en edition): sent" in result.stdout
    assert "ed@example.org (fr edition): sent" in result.stdout
    subjects = sorted(email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                      ["Subject"] for path in (project / "review").glob("*.eml"))
    assert subjects == ["[TEST] Efus Newsletter – February 2020: Riga",
                        "[TEST] Lettre de l'Efus – février 2020 : Riga"]


def test_an_issue_without_editions_sends_as_before(project: Path, cli: Cli) -> None:
    write(project, MAIN, french=None)
    (project / "members.csv").write_text(MEMBERS, encoding="utf-8")
    assert cli("subscribers", "import", "members.csv", "--list", "members").returncode == 0
    result = cli("send", ISSUE, "--list", "members", "--yes", "--to-file", "out")
    assert result.returncode == 0, result.stderr
    for path in (project / "out").glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert "Dear " in parts(message)[0] and "Also in" not in parts(message)[0]  # type: ignore[arg-type]
    assert "editions:" not in cli("status", ISSUE).stdout


def test_an_approval_covers_every_edition(project: Path, cli: Cli) -> None:
    """A translator's change after the approval needs a new one, as the editor's would."""
    prepare(project, cli)
    scheduled = "lists: [members]\nsend_at: 2020-02-07T09:00+01:00"
    main = (project / ISSUE).read_text().replace("lists: [members]", scheduled)
    (project / ISSUE).write_text(main, encoding="utf-8")
    config = project / "newsletter.toml"
    config.write_text(config.read_text() + "\n[schedule]\nrequire_approval = true\n")
    assert cli("approve", ISSUE, "--by", "Anna").returncode == 0
    french = project / "issues" / "2020-02.fr.yaml"
    french.write_text(french.read_text().replace("Bienvenue", "Bienvenue à toutes et à tous"))
    with SmtpServer() as server:
        due = ("send", "--due", "--now", "2020-02-07T09:01+01:00", "--transport",
               f"smtp://127.0.0.1:{server.port}?tls=off")
        refused = cli(*due)
        assert refused.returncode == 1 and "changed after Anna approved it" in refused.stderr
        assert server.accepted == []
        assert cli("approve", ISSUE, "--by", "Anna").returncode == 0
        sent = cli(*due)
        assert sent.returncode == 0, sent.stderr
    assert len(server.accepted) == 7
    for accepted in server.accepted:
        if accepted.rcpt_tos[0] in FRENCH_READERS:
            message = email.message_from_bytes(accepted.data, policy=email.policy.default)
            assert "Bienvenue à toutes et à tous" in parts(message)[0]  # type: ignore[arg-type]
