"""Test sends over real SMTP: `newsletter send ISSUE --test` as a user runs it.

The server is aiosmtpd on 127.0.0.1 with STARTTLS and AUTH, its certificate issued by a
throwaway CA made for the test (trustme). What reviewers receive is read back from the
server's own log, byte for byte: parsed with Python's email package, and its DKIM
signature checked by dkimpy against the test key.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import subprocess
from collections.abc import Callable, Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
import trustme
from smtp_server import Behaviour, SmtpServer

from newsletter.audience.store import SubscriberStore
from newsletter.audience.tokens import TEST_SUBSCRIBER_ID, Signer

Cli = Callable[..., subprocess.CompletedProcess[str]]
ISSUE = "issues/2020-01.yaml"
USER, PASSWORD = "reviewer", "correct-horse-battery-staple"
SECRET = "a-secret-for-the-smtp-tests-0123"
REVIEWERS = ["Communications <communications@efus.eu>", '"Müller, Zoë" <zoe@example.org>',
             "ed@example.org"]
MESSAGE_ID = re.compile(r"<[^<>@\s]+@[^<>@\s]+>")
LIST_ID = re.compile(r"(?:.+ )?<[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+>")
WEB_URL = "https://newsletter.efus.eu/2020-01/"


# --- fixtures: a CA, a server, a project that uses them --------------------------------------

@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    """A server context with a certificate from `ca` for `names`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def server(ca: trustme.CA) -> Iterator[SmtpServer]:
    """STARTTLS required, AUTH required, certificate for 127.0.0.1 from the test CA."""
    with SmtpServer(tls_context=tls_context(ca, "127.0.0.1"), require_starttls=True,
                    credentials=(USER, PASSWORD)) as running:
        yield running


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """A throwaway RSA private key (PEM) and the DNS TXT record publishing its public half."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def configure(project: Path, *, transport: str | None = None, reviewers: list[str] | None = None,
              send: dict[str, str] | None = None, dkim: dict[str, str] | None = None) -> None:
    """Edit the test project's newsletter.toml."""
    path = project / "newsletter.toml"
    text = path.read_text(encoding="utf-8")
    if transport is not None:
        text = re.sub(r"(?m)^transport = .*$", lambda _: f"transport = {json.dumps(transport)}",
                      text)
    if reviewers is not None:
        text = re.sub(r"(?m)^reviewers = .*$", lambda _: f"reviewers = {json.dumps(reviewers)}",
                      text)
    for key, value in (send or {}).items():
        text = text.replace("[send]\n", f"[send]\n{key} = {json.dumps(value)}\n")
    if dkim:
        text += "\n[dkim]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in dkim.items())
    path.write_text(text, encoding="utf-8")


def url(server: SmtpServer, ca_file: Path | None = None, user: str = USER) -> str:
    query = f"?ca_file={ca_file}" if ca_file else ""
    return f"smtp://{user}@127.0.0.1:{server.port}{query}"


def env(password: str = PASSWORD, **more: str) -> dict[str, str]:
    return {"NEWSLETTER_SMTP_PASSWORD": password, "NEWSLETTER_SECRET": SECRET, **more}


def parse(data: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def check_received(data: bytes, name: str, address: str) -> EmailMessage:
    """What every reviewer's copy must be: the real message, marked as a test, theirs."""
    assert all(len(line) < 998 for line in data.split(b"\r\n"))
    message = parse(data)
    assert not message.defects
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    for header in ("From", "To", "Subject", "Date", "Message-ID", "Reply-To", "List-Id",
                   "List-Unsubscribe", "List-Unsubscribe-Post", "MIME-Version"):
        assert len(message.get_all(header, [])) == 1, header
    assert message["From"].addresses[0].addr_spec == "newsletter@efus.eu"
    to = message["To"].addresses
    assert [(a.display_name, a.addr_spec) for a in to] == [(name, address)]
    assert message["Subject"].startswith("[TEST] Efus Newsletter – January 2020")
    assert parsedate_to_datetime(str(message["Date"])).tzinfo is not None
    assert MESSAGE_ID.fullmatch(message["Message-ID"])
    assert LIST_ID.fullmatch(message["List-Id"])
    assert message["MIME-Version"] == "1.0"
    https, mailto = re.findall(r"<([^<>]+)>", message["List-Unsubscribe"])
    assert https.startswith("https://newsletter.efus.eu/unsubscribe/")
    assert mailto.startswith("mailto:unsubscribe@efus.eu?subject=unsubscribe%20")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = (p.get_content() for p in parts)
    assert text.startswith("*** TEST SEND: a review copy of 2020-01")
    assert "<strong>Test send</strong>" in html
    assert f"Dear {name or 'reader'}," in text and "Dear " in html
    assert https in text and f'href="{https}"' in html
    assert WEB_URL in text and f'href="{WEB_URL}"' in html  # real links, not placeholders
    assert "%%" not in text and "%%" not in html
    token = Signer(SECRET.encode()).verify_unsubscribe(https.rpartition("/")[2])
    assert token is not None  # a working link that unsubscribes nobody
    assert (token.subscriber_id, token.list_name) == (TEST_SUBSCRIBER_ID, "__test__")
    return message


# --- the test send arrives ---------------------------------------------------------------

def test_test_send_over_starttls_arrives_once_per_reviewer_signed_and_intact(
        cli: Cli, project: Path, server: SmtpServer, ca_file: Path,
        dkim_key: tuple[bytes, bytes]) -> None:
    import dkim

    pem, record = dkim_key
    (project / "keys").mkdir()
    (project / "keys" / "nl2020.private").write_bytes(pem)
    configure(project, transport=f"smtp://{USER}@127.0.0.1:{server.port}",
              reviewers=REVIEWERS, send={"ca_file": str(ca_file)},
              dkim={"selector": "nl2020", "key_file": "keys/nl2020.private",
                    "domain": "efus.eu"})

    result = cli("send", ISSUE, "--test", env=env())

    assert result.returncode == 0, result.stderr
    assert sorted(server.recipients()) == sorted(["communications@efus.eu", "zoe@example.org",
                                                  "ed@example.org"])
    assert server.connections == 1  # one connection carried every message
    assert server.auth_attempts == [USER]
    expected = {"communications@efus.eu": "Communications", "zoe@example.org": "Müller, Zoë",
                "ed@example.org": ""}
    ids = set()
    for accepted in server.accepted:
        assert accepted.mail_from == "newsletter@efus.eu"
        (address,) = accepted.rcpt_tos
        message = check_received(accepted.data, expected[address], address)
        ids.add(message["Message-ID"])

        def dns(name: bytes, timeout: int = 5) -> bytes:
            assert name == b"nl2020._domainkey.efus.eu."
            return record

        assert accepted.data.startswith(b"DKIM-Signature: ")
        assert dkim.verify(accepted.data, dnsfunc=dns)
        signature = message["DKIM-Signature"]
        signed = {h.strip().lower() for h in re.search(r"\bh=([^;]+)", signature)
                  .group(1).split(":")}
        assert {"from", "subject", "date", "message-id", "list-id", "list-unsubscribe",
                "list-unsubscribe-post"} <= signed
    assert len(ids) == 3
    # every reply code is reported, per recipient
    for address in expected:
        assert f"  {address}: sent (250 2.0.0 Ok: queued)" in result.stdout
    # nothing was recorded as sent to any list
    assert not (project / "newsletter.db").exists()
    assert not (project / "outbox").exists()


def test_to_replaces_the_configured_reviewers(cli: Cli, project: Path, server: SmtpServer,
                                              ca_file: Path) -> None:
    result = cli("send", ISSUE, "--test", "--to", "Jo Editor <jo@example.org>",
                 "--to", "proof@example.org", "--transport", url(server, ca_file), env=env())
    assert result.returncode == 0, result.stderr
    assert sorted(server.recipients()) == ["jo@example.org", "proof@example.org"]
    check_received(server.accepted[0].data, "Jo Editor", "jo@example.org")


def test_each_recipients_reply_code_is_kept_and_a_refusal_fails_the_run(
        cli: Cli, project: Path, ca: trustme.CA, ca_file: Path) -> None:
    refusing = Behaviour(rcpt_replies={"gone@example.org": "550 5.1.1 No such user here"})
    with SmtpServer(refusing, tls_context=tls_context(ca, "127.0.0.1"), require_starttls=True,
                    credentials=(USER, PASSWORD)) as server:
        result = cli("send", ISSUE, "--test", "--to", "ok@example.org", "--to",
                     "gone@example.org", "--to", "also@example.org",
                     "--transport", url(server, ca_file), env=env())
    assert result.returncode == 1
    assert "  ok@example.org: sent (250 2.0.0 Ok: queued)" in result.stdout
    assert "  gone@example.org: failed (550 5.1.1 No such user here)" in result.stdout
    assert "  also@example.org: sent (250 2.0.0 Ok: queued)" in result.stdout
    assert "not accepted" in result.stderr
    assert server.recipients() == ["ok@example.org", "also@example.org"]
    assert server.connections == 1  # the refusal did not cost a new connection


def test_environment_transport_overrides_the_file_and_tls_off_works_for_a_local_relay(
        cli: Cli, project: Path) -> None:
    with SmtpServer() as relay:  # no TLS, no AUTH: a relay on this machine
        result = cli("send", ISSUE, "--test", env={
            "NEWSLETTER_TRANSPORT": f"smtp://127.0.0.1:{relay.port}?tls=off",
            "NEWSLETTER_SECRET": SECRET})
    assert result.returncode == 0, result.stderr
    assert "(no TLS)" in result.stdout
    assert relay.recipients() == ["communications@efus.eu"]
    check_received(relay.accepted[0].data, "Communications", "communications@efus.eu")
    assert not (project / "outbox").exists()  # the configured outbox was overridden


def test_to_file_writes_the_exact_bytes_the_server_would_receive(
        cli: Cli, project: Path, server: SmtpServer, ca_file: Path) -> None:
    reviewers = ["Jo Editor <jo@example.org>", "proof@example.org"]
    to = [arg for reviewer in reviewers for arg in ("--to", reviewer)]
    written = cli("send", ISSUE, "--test", *to, "--to-file", "review", env=env())
    sent = cli("send", ISSUE, "--test", *to, "--transport", url(server, ca_file), env=env())
    assert written.returncode == 0 and sent.returncode == 0, written.stderr + sent.stderr

    files = sorted((project / "review").iterdir())
    assert [f.suffix for f in files] == [".eml", ".eml"]
    assert all(str(f) in written.stdout for f in files)
    on_disk = {parse(f.read_bytes())["To"].addresses[0].addr_spec: f.read_bytes()
               for f in files}
    received = {a.rcpt_tos[0]: a.data for a in server.accepted}
    assert sorted(on_disk) == sorted(received) == ["jo@example.org", "proof@example.org"]
    for address, data in on_disk.items():
        assert data.endswith(b"\r\n") and b"\n" not in data.replace(b"\r\n", b"")
        check_received(data, "Jo Editor" if address.startswith("jo") else "", address)
        # Only what each send makes anew differs: the date, the Message-ID, the boundary.
        assert _normalised(data) == _normalised(received[address])
    assert not (project / "newsletter.db").exists()


def _normalised(data: bytes) -> bytes:
    data = re.sub(rb"(?m)^Date: .*\r\n", b"Date: -\r\n", data)
    data = re.sub(rb"(?m)^Message-ID: .*\r\n", b"Message-ID: -\r\n", data)
    return re.sub(rb"=_nl_[0-9a-f]+", b"=_nl_-", data)


def test_test_send_leaves_no_ledger_and_keeps_the_secret_private(
        cli: Cli, project: Path) -> None:
    result = cli("send", ISSUE, "--test", "--to-file", "review")  # no NEWSLETTER_SECRET
    assert result.returncode == 0, result.stderr
    assert not (project / "newsletter.db").exists()
    secret = project / ".newsletter-secret"
    assert secret.stat().st_mode & 0o777 == 0o600
    (eml,) = (project / "review").iterdir()
    link = re.search(r"<(https://[^<>]+/unsubscribe/[^<>]+)>",
                     parse(eml.read_bytes())["List-Unsubscribe"]).group(1)
    token = Signer(secret.read_bytes().strip()).verify_unsubscribe(link.rpartition("/")[2])
    assert token is not None and token.is_test and token.list_name == "__test__"


# --- refusals: nothing is sent, the password never leaves ----------------------------------

def assert_refused(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_server_certificate_from_an_unknown_ca_is_refused_before_auth(
        cli: Cli, project: Path, server: SmtpServer, tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    for ca_option in (other_ca, None):  # another private CA, then the system's CAs
        result = cli("send", ISSUE, "--test", "--transport", url(server, ca_option), env=env())
        assert_refused(result, f"127.0.0.1:{server.port}: TLS certificate not trusted",
                       "nothing was sent", "ca_file")
    assert server.auth_attempts == []
    assert server.accepted == []


def test_server_certificate_for_another_host_name_is_refused_before_auth(
        cli: Cli, project: Path, ca: trustme.CA, ca_file: Path) -> None:
    with SmtpServer(tls_context=tls_context(ca, "mail.other.example"), require_starttls=True,
                    credentials=(USER, PASSWORD)) as server:
        result = cli("send", ISSUE, "--test", "--transport", url(server, ca_file), env=env())
    assert_refused(result, "TLS certificate not trusted", "127.0.0.1")
    assert server.auth_attempts == []
    assert server.accepted == []


def test_wrong_password_gives_a_clear_error_without_the_password(
        cli: Cli, project: Path, server: SmtpServer, ca_file: Path) -> None:
    wrong = "not-the-password-42"
    result = cli("send", ISSUE, "--test", "--transport", url(server, ca_file),
                 env=env(password=wrong))
    assert_refused(result, f"127.0.0.1:{server.port} refused the login of 'reviewer'", "535",
                   "NEWSLETTER_SMTP_PASSWORD")
    assert wrong not in result.stdout + result.stderr
    assert server.auth_attempts  # it did get as far as AUTH, over TLS
    assert server.accepted == []


def test_a_server_that_echoes_the_credentials_never_gets_them_shown_or_recorded(
        cli: Cli, project: Path, ca: trustme.CA, ca_file: Path) -> None:
    wrong = "wrong-pässwörd-4711"
    plain = base64.b64encode(f"\0{USER}\0{wrong}".encode()).decode()
    with SubscriberStore(project / "newsletter.db") as store:
        store.add("ana@example.org", "members", name="Ana")
    with SmtpServer(Behaviour(echo_credentials=True), credentials=(USER, PASSWORD),
                    tls_context=tls_context(ca, "127.0.0.1"), require_starttls=True,
                    smtputf8=True) as server:  # UTF-8 replies: it echoes the ä and ö as sent
        for args in (["--test"], ["--list", "members", "--yes"]):
            result = cli("send", ISSUE, *args, "--transport", url(server, ca_file),
                         env=env(password=wrong))
            assert_refused(result, "refused the login of 'reviewer': 535 5.7.8 Authentication "
                                   "failed for reviewer with password *** (***)")
            for secret in (wrong, plain, plain.rstrip("=")):
                assert secret not in result.stdout + result.stderr
    assert server.auth_attempts == [USER, USER]  # the echo really happened, twice
    stored = b"".join(path.read_bytes() for path in project.glob("newsletter.db*"))
    assert wrong.encode() not in stored and plain.encode() not in stored


def test_a_password_that_is_not_ascii_logs_in_as_utf8_with_auth_plain(
        cli: Cli, project: Path, ca: trustme.CA, ca_file: Path) -> None:
    password = "pässwörd-€-ß-4711"
    with SmtpServer(credentials=(USER, password), tls_context=tls_context(ca, "127.0.0.1"),
                    require_starttls=True) as server:
        result = cli("send", ISSUE, "--test", "--to", "ed@example.org", "--transport",
                     url(server, ca_file), env=env(password=password))
    assert result.returncode == 0, result.stderr
    assert server.auth_attempts == [USER]
    assert server.recipients() == ["ed@example.org"]


def test_a_password_that_is_not_ascii_is_refused_clearly_without_auth_plain(
        cli: Cli, project: Path, ca: trustme.CA, ca_file: Path) -> None:
    password = "pässwörd-€-ß-4711"
    with SmtpServer(credentials=(USER, password), tls_context=tls_context(ca, "127.0.0.1"),
                    require_starttls=True, auth_without=("PLAIN",)) as server:
        result = cli("send", ISSUE, "--test", "--transport", url(server, ca_file),
                     env=env(password=password))
    assert_refused(result, "offers AUTH LOGIN but not PLAIN", "NEWSLETTER_SMTP_PASSWORD needs "
                           "an ASCII password for this server")
    assert password not in result.stdout + result.stderr
    assert server.auth_attempts == [] and server.accepted == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_starttls_not_offered_is_refused_without_falling_back_to_plaintext(
        cli: Cli, project: Path) -> None:
    with SmtpServer(credentials=(USER, PASSWORD)) as plain:  # AUTH offered, STARTTLS not
        result = cli("send", ISSUE, "--test", "--transport", url(plain), env=env())
    assert_refused(result, "does not offer STARTTLS", "refusing to send in plaintext")
    assert plain.auth_attempts == []  # the password was never sent in the clear
    assert plain.accepted == []


def test_password_in_the_url_is_refused(cli: Cli, project: Path) -> None:
    result = cli("send", ISSUE, "--test", "--transport",
                 f"smtp://{USER}:{PASSWORD}@127.0.0.1:2525", env=env())
    assert_refused(result, "do not put the password in the URL", "NEWSLETTER_SMTP_PASSWORD")


def test_user_without_a_password_in_the_environment_is_refused(
        cli: Cli, project: Path, server: SmtpServer, ca_file: Path) -> None:
    result = cli("send", ISSUE, "--test", "--transport", url(server, ca_file),
                 env={"NEWSLETTER_SECRET": SECRET})
    assert_refused(result, "needs a password", "NEWSLETTER_SMTP_PASSWORD")
    assert server.connections == 0


def test_password_is_never_sent_without_tls_to_another_host(cli: Cli, project: Path) -> None:
    result = cli("send", ISSUE, "--test", "--transport",
                 f"smtp://{USER}@smtp.example.org:25?tls=off", env=env())
    assert_refused(result, "refusing to send a password without TLS")


# --- smtps:// (TLS from the first byte) ------------------------------------------------------

@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtps_with_implicit_tls_arrives_and_verifies_the_certificate(
        cli: Cli, project: Path, ca: trustme.CA, ca_file: Path, tmp_path: Path) -> None:
    with SmtpServer(implicit_tls=tls_context(ca, "127.0.0.1"),
                    credentials=(USER, PASSWORD)) as server:
        transport = f"smtps://{USER}@127.0.0.1:{server.port}"
        sent = cli("send", ISSUE, "--test", "--transport", f"{transport}?ca_file={ca_file}",
                   env=env())
        other_ca = tmp_path / "other-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(other_ca))
        refused = cli("send", ISSUE, "--test", "--transport",
                      f"{transport}?ca_file={other_ca}", env=env())
    assert sent.returncode == 0, sent.stderr
    assert "(TLS)" in sent.stdout
    check_received(server.accepted[0].data, "Communications", "communications@efus.eu")
    assert_refused(refused, "TLS certificate not trusted")
    assert server.auth_attempts == [USER]  # from the first send only
    assert len(server.accepted) == 1


def test_a_server_that_closes_the_connection_between_messages_still_gets_every_reviewer(
        cli: Cli, project: Path, ca: trustme.CA, ca_file: Path) -> None:
    closing = Behaviour(close_every=1)  # e.g. a relay allowing one message per connection
    with SmtpServer(closing, tls_context=tls_context(ca, "127.0.0.1"), require_starttls=True,
                    credentials=(USER, PASSWORD)) as server:
        result = cli("send", ISSUE, "--test", "--to", "a@example.org", "--to", "b@example.org",
                     "--to", "c@example.org", "--transport", url(server, ca_file), env=env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert server.recipients() == ["a@example.org", "b@example.org", "c@example.org"]
    assert server.connections == 3


# --- reviewers: one address each, checked before anything is sent ---------------------------

@pytest.mark.parametrize("bad", ["\r\n", "\n", "\x00", "\u2028", "\u2029"])
def test_reviewer_with_a_line_break_in_newsletter_toml_is_refused_before_sending(
        cli: Cli, project: Path, bad: str) -> None:
    configure(project, reviewers=["ok@example.org",
                                  f"Eve{bad}Bcc: victim@example.org <eve@example.org>"])
    result = cli("send", ISSUE, "--test", "--to-file", "review", env=env())
    assert_refused(result, "newsletter.toml reviewers: contains a line break")
    assert not (project / "review").exists()  # not even the good reviewer's copy


def test_to_with_a_line_break_or_two_addresses_is_refused(cli: Cli, project: Path) -> None:
    injected = cli("send", ISSUE, "--test", "--to", "Eve\r\nBcc: victim@example.org <e@x.org>",
                   "--to-file", "review", env=env())
    assert_refused(injected, "--to: contains a line break")
    two = cli("send", ISSUE, "--test", "--to", "a@example.org, b@example.org",
              "--to-file", "review", env=env())
    assert_refused(two, "expected one email address")
    assert not (project / "review").exists()


def test_to_file_takes_any_folder_name(cli: Cli, project: Path) -> None:
    result = cli("send", ISSUE, "--test", "--to-file", "review #2 at 100%?", env=env())
    assert result.returncode == 0, result.stderr
    (eml,) = (project / "review #2 at 100%?").iterdir()
    check_received(eml.read_bytes(), "Communications", "communications@efus.eu")
