"""Sends through Amazon SES's v2 API to a local stand-in that checks every signature.

The stand-in (ses_server.py) runs on 127.0.0.1, recomputes each request's AWS Signature
Version 4 with botocore's signer, checks SendEmail and GetAccount against their documented
shapes and answers as SES does, or misbehaves on cue. First the transport on its own
(the exact bytes, credentials, quotas, what each SES error means), then `newsletter send` as
a subprocess, comparing the stand-in's own log with `newsletter status --json`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import ssl
import subprocess
from collections.abc import Callable, Iterator
from email import message_from_bytes
from pathlib import Path
from urllib.parse import quote

import pytest
import trustme
from conftest import REPO
from ses_server import Account, Answer, Behaviour, Keys, SesServer
from test_api_transports import configure, subscribe

from newsletter.audience.store import SubscriberStore
from newsletter.audience.tokens import Signer
from newsletter.compose.issue import load_issue
from newsletter.compose.render import compose
from newsletter.config import Settings, load_settings
from newsletter.delivery.message import MessageFactory
from newsletter.envelope import Personalised, Recipient
from newsletter.errors import (
    AuthenticationError,
    ConfigError,
    OutcomeUnknown,
    QuotaExhausted,
    TransportError,
    TransportUnavailable,
)
from newsletter.transports import Limits, Status, open_transport

Cli = Callable[..., subprocess.CompletedProcess[str]]
ISSUE = "issues/2020-01.yaml"
ACCESS = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYsecret-4e1"  # distinctive, so a leak is easy to find
TOKEN = "FwoGZXIvYXdzEXAMPLEtoken-77c1"
KEYS = Keys(ACCESS, SECRET_KEY, TOKEN)
ENV = {"AWS_ACCESS_KEY_ID": ACCESS, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
       "AWS_SESSION_TOKEN": TOKEN, "NEWSLETTER_SECRET": "a-secret-for-the-ses-tests-0123"}


# --- the transport on its own ----------------------------------------------------------

@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(REPO / "newsletter.toml", env=ENV)


@pytest.fixture(scope="module")
def factory(settings: Settings) -> MessageFactory:
    composed = compose(load_issue(REPO / ISSUE, ISSUE), settings)
    return MessageFactory(composed, settings, Signer(b"k" * 32), send_key="2020-01:1")


def message(factory: MessageFactory, email: str = "ana@example.org",
            name: str = "Ana López") -> Personalised:
    return factory.personalise(Recipient(1, email, name, "members"))


@pytest.fixture
def server() -> Iterator[SesServer]:
    with SesServer(KEYS) as running:
        yield running


def test_each_message_goes_as_its_exact_bytes_to_its_one_recipient_signed_for_ses(
        server: SesServer, settings: Settings, factory: MessageFactory) -> None:
    ana, jose = message(factory), message(factory, "jose@example.net", "José")
    with open_transport(server.url(configuration_set="newsletter"), settings) as transport:
        results = [transport.send([m])[0] for m in (ana, jose)]

    assert [r.status for r in results] == [Status.SENT] * 2
    assert all(re.fullmatch(r"200 Amazon SES MessageId 0102[0-9a-f]{32}-000000", r.reply)
               for r in results)
    first, second = server.received
    assert first.problems == [] and first.kind == ""  # botocore's signer agrees
    assert first.raw == ana.data  # List-Unsubscribe, List-Id, Message-ID: all ours, as is
    assert first.payload["ConfigurationSetName"] == "newsletter"  # type: ignore[index]
    assert first.recipients == ["ana@example.org"]
    assert second.recipients == ["jose@example.net"] and second.raw == jose.data


def test_with_a_return_path_each_message_carries_its_delivery_token_in_a_header_on_top(
        server: SesServer, settings: Settings, factory: MessageFactory) -> None:
    """SES's notifications give back the headers, not the envelope: the webhook reads it."""
    signer = Signer(b"k" * 32)
    bounced = dataclasses.replace(settings, return_path="bounces@news.efus.eu")
    sending = MessageFactory(factory.composed, bounced, signer, send_key="2020-01:7", send_id=7)
    ana = message(sending)
    with open_transport(server.url(), settings) as transport:
        assert transport.send([ana])[0].status is Status.SENT
    token = signer.verify_delivery(ana.token)
    assert token is not None and (token.send_id, token.subscriber_id) == (7, 1)
    assert server.received[0].raw == f"X-Newsletter-Delivery: {ana.token}\r\n".encode() + ana.data


def test_a_wrong_secret_fails_the_signature_check_and_never_shows_the_secret(
        server: SesServer, settings: Settings, factory: MessageFactory) -> None:
    wrong = dataclasses.replace(settings, env={**ENV, "AWS_SECRET_ACCESS_KEY": "x" + SECRET_KEY})
    with open_transport(server.url(), wrong) as transport, \
            pytest.raises(AuthenticationError) as caught:
        transport.send([message(factory)])
    assert server.received[0].kind == "InvalidSignatureException"
    text = str(caught.value) + caught.value.reply
    assert "refused the credentials from the environment (403" in text
    assert "secret access key does not belong to the access key" in text
    assert SECRET_KEY not in text and TOKEN not in text


def test_credentials_come_from_the_environment_then_the_shared_credentials_file(
        tmp_path: Path, server: SesServer, settings: Settings, factory: MessageFactory) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[default]\naws_access_key_id = AKIDOTHER\n"
                           f"aws_secret_access_key = other\n\n[newsletter]\n"
                           f"aws_access_key_id = {ACCESS}\naws_secret_access_key = {SECRET_KEY}"
                           f"\naws_session_token = {TOKEN}\n\n[sso]\nsso_session = work\n")
    base = {"NEWSLETTER_SECRET": ENV["NEWSLETTER_SECRET"],
            "AWS_SHARED_CREDENTIALS_FILE": str(credentials)}
    from_file = dataclasses.replace(settings, env={**base, "AWS_PROFILE": "newsletter"})
    with open_transport(server.url(), from_file) as transport:
        assert transport.send([message(factory)])[0].status is Status.SENT

    for env, problem in [
            ({**base, "AWS_PROFILE": "sso"}, "has no aws_access_key_id.*export-credentials "
                                             "--profile sso"),
            ({**base, "AWS_PROFILE": "nobody"}, r"no AWS credentials: set AWS_ACCESS_KEY_ID "
                                                r"and AWS_SECRET_ACCESS_KEY.*\[nobody\]"),
            ({**base, "AWS_ACCESS_KEY_ID": ACCESS}, "AWS_SECRET_ACCESS_KEY is not set")]:
        with pytest.raises(ConfigError, match=problem):
            open_transport(server.url(), dataclasses.replace(settings, env=env))
    for url in (f"ses://{ACCESS}:{quote(SECRET_KEY, safe='')}@eu-west-1",
                f"ses://{ACCESS}:{SECRET_KEY}@eu-west-1"):  # a / in the secret: no user part
        with pytest.raises(ConfigError, match="do not put AWS credentials in the URL|expected "
                                              "the AWS region") as caught:
            open_transport(url, settings)
        assert SECRET_KEY[:8] not in str(caught.value)


@pytest.mark.parametrize("url, problem", [
    ("ses://default", "expected the AWS region of your SES account"),
    ("ses://eu-west-1:443", "expected the AWS region"),
    ("ses://eu-west-1?configuration_set=news%20letter", "configuration_set='news letter'"),
    ("ses://eu-west-1?endpoint=email.example.net&tls=off", "without TLS"),
    ("ses://eu-west-1?endpoint=http://127.0.0.1:8025", "expected HOST or HOST:PORT"),
    ("ses://eu-west-1?profile=newsletter", "unknown option(s) profile"),
])
def test_transport_urls_are_checked_before_anything_is_sent(
        settings: Settings, url: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(problem)):
        open_transport(url, settings)


def test_the_default_endpoint_is_the_regions_and_a_vpc_endpoint_can_replace_it(
        settings: Settings) -> None:
    assert "https://email.eu-west-1.amazonaws.com (region eu-west-1)" in \
        open_transport("ses://eu-west-1", settings).description
    vpce = "vpce-0a1b2c3d.email.eu-west-1.vpce.amazonaws.com"
    assert f"https://{vpce} " in open_transport(f"ses://eu-west-1?endpoint=https://{vpce}",
                                                 settings).description


def test_limits_are_the_accounts_send_quota(server: SesServer, settings: Settings) -> None:
    server.account = Account(max_send_rate=14, max_24_hour_send=50_000,
                             sent_last_24_hours=49_000.0)
    with open_transport(server.url(), settings) as transport:
        assert transport.limits() == Limits(14, 1000, "")
        server.account = Account(max_send_rate=1, max_24_hour_send=-1, production=False)
        assert transport.limits() == Limits(1, None, "the account is in the SES sandbox of "
                                            "eu-west-1: only verified addresses receive mail; "
                                            "request production access in the SES console")
        server.account.sending_enabled = False
        with pytest.raises(TransportError, match="sending is disabled for this account"):
            transport.limits()
        server.behaviour.expire_token_at = 0
        with pytest.raises(AuthenticationError, match="session token has expired"):
            transport.limits()
    assert [r.method for r in server.received] == ["GET"] * 4


def test_a_user_without_permission_to_read_the_quota_is_warned_and_can_send(
        settings: Settings, factory: MessageFactory, caplog: pytest.LogCaptureFixture) -> None:
    keys = dataclasses.replace(KEYS, denied={"ses:GetAccount"})
    with SesServer(keys) as server, open_transport(server.url(), settings) as transport:
        with caplog.at_level(logging.WARNING, "newsletter"):
            assert transport.limits() == Limits()
        assert transport.send([message(factory)])[0].status is Status.SENT
    assert "cannot read the account's sending quota" in caplog.text
    assert "AccessDeniedException" in caplog.text and "Allow the IAM user" in caplog.text


@pytest.mark.parametrize("answer, raised, words", [
    (Answer(429, "TooManyRequestsException", "Maximum sending rate exceeded."),
     TransportUnavailable, "asks to slow down"),
    (Answer(400, "LimitExceededException", "Daily message quota exceeded."),
     QuotaExhausted, "24-hour sending quota is used up"),
    (Answer(400, "AccountSuspendedException", "Your account is suspended."),
     TransportError, "permanently restricted sending"),
    (Answer(400, "SendingPausedException", "Sending is paused for this account."),
     TransportError, "resume it in the SES console"),
    (Answer(400, "MailFromDomainNotVerifiedException", "MAIL FROM domain not verified."),
     TransportError, "MAIL FROM domain of the sender is not verified"),
    (Answer(403, "ExpiredTokenException", "The security token included in the request is "
            "expired"), AuthenticationError, "session token has expired"),
    (Answer(403, "AccessDeniedException", "not authorized to perform: ses:SendRawEmail"),
     AuthenticationError, "allow it ses:SendEmail"),
    (Answer(503, "InternalFailure", "Service unavailable."), TransportUnavailable,
     "will be retried"),
    (Answer(400, "BadRequestException", "Missing final '@domain'"), TransportError,
     "refused the request"),
])
def test_each_ses_error_means_what_the_api_reference_says(
        server: SesServer, settings: Settings, factory: MessageFactory, answer: Answer,
        raised: type[Exception], words: str) -> None:
    server.behaviour.answers = {0: answer}
    with open_transport(server.url(), settings) as transport, \
            pytest.raises(raised) as caught:
        transport.send([message(factory)])
    assert type(caught.value) is raised and words in str(caught.value)
    assert answer.kind in str(caught.value)  # SES's own words are kept
    throttled = getattr(caught.value, "throttled", False)
    assert throttled == (answer.status == 429)
    if throttled:
        assert caught.value.retry_after == 1.0  # type: ignore[attr-defined]


def test_message_rejected_fails_that_recipient_unless_it_is_the_sender_that_is_unverified(
        server: SesServer, settings: Settings, factory: MessageFactory) -> None:
    server.account.production = False  # the sandbox: only verified recipients
    server.account.verified |= {"ana@example.org"}
    with open_transport(server.url(), settings) as transport:
        sent, [rejected] = transport.send([message(factory)]), \
            transport.send([message(factory, "ole@example.org")])
        assert sent[0].status is Status.SENT
        assert rejected.status is Status.FAILED and not rejected.suppress
        assert "MessageRejected: Email address is not verified" in rejected.reply
        assert "ole@example.org" in rejected.reply
        server.account.verified = {"ana@example.org"}  # and now not the sender either
        with pytest.raises(TransportError, match="has not verified the sender "
                                                 "newsletter@efus.eu"):
            transport.send([message(factory)])


def test_no_answer_after_the_request_left_means_unknown(
        server: SesServer, settings: Settings, factory: MessageFactory) -> None:
    server.behaviour.delay = 1.5
    fast = dataclasses.replace(settings, timeout=0.4)
    with open_transport(server.url(), fast) as transport, pytest.raises(OutcomeUnknown):
        transport.send([message(factory)])
    assert len(server.received) == 1


def test_tls_to_a_private_endpoint_is_verified_against_its_ca(
        tmp_path: Path, settings: Settings, factory: MessageFactory) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "vpce-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with SesServer(KEYS, tls=context) as server:
        with open_transport(server.url(), settings) as transport, \
                pytest.raises(TransportError, match="TLS certificate not trusted"):
            transport.send([message(factory)])
        with open_transport(server.url(ca_file=str(ca_file)), settings) as transport:
            assert transport.send([message(factory)])[0].status is Status.SENT
    assert len(server.received) == 1  # nothing signed went to the untrusted server


# --- newsletter send, end to end -------------------------------------------------------

def send(cli: Cli, server: SesServer, env: dict[str, str] | None = None,
         ) -> subprocess.CompletedProcess[str]:
    return cli("send", ISSUE, "--list", "members", "--yes", "--transport", server.url(),
               env=env or ENV)


def status(cli: Cli) -> dict:  # type: ignore[type-arg]
    result = cli("status", ISSUE, "--json", "--limit", "2000", env=ENV)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def project_with(project: Path) -> Callable[..., list[str]]:
    def make(count: int, **send: object) -> list[str]:
        configure(project, **{"retry_base": "0.2s", "retry_max_wait": "10s", "connections": 2,
                              **send})
        return subscribe(project, count)
    return make


def test_a_throttling_answer_on_the_second_request_of_1200_completes_with_each_once(
        cli: Cli, project_with: Callable[..., list[str]]) -> None:
    emails = project_with(1200, connections=4)
    throttle = Answer(429, "TooManyRequestsException", "Maximum sending rate exceeded.")
    with SesServer(KEYS, behaviour=Behaviour(answers={1: throttle}),
                   keep_payloads=False) as server:
        result = send(cli, server)
    assert result.returncode == 0, result.stderr
    assert "throttled by the server" in result.stderr
    assert server.received[0].method == "GET"  # the quota, read before anything is sent
    sends = [r for r in server.received if r.method == "POST"]
    assert sends[1].kind == "TooManyRequestsException"
    assert all(not r.problems for r in sends)
    assert sorted(server.accepted()) == sorted(emails)  # each exactly once
    assert status(cli)["counts"] == {"sent": 1200}


def test_the_run_never_goes_faster_than_max_send_rate(
        cli: Cli, project_with: Callable[..., list[str]]) -> None:
    rate = 40
    project_with(120, connections=4)
    with SesServer(KEYS, Account(max_send_rate=rate)) as server:
        result = send(cli, server)
    assert result.returncode == 0, result.stderr
    assert "allows 40 messages a second" in result.stderr
    times = sorted(r.at for r in server.received if r.accepted)
    assert len(times) == 120
    # SES allows short bursts, not a sustained rate above MaxSendRate: a bucket of one
    # second's worth (and a few requests' worth of jitter on a busy machine).
    for i, early in enumerate(times):
        for j in range(i + 1, len(times)):
            assert j - i <= rate * (times[j] - early) + rate + 4


def test_a_daily_quota_reached_mid_send_pauses_cleanly_and_the_next_run_completes(
        cli: Cli, project_with: Callable[..., list[str]]) -> None:
    emails = project_with(80)
    with SesServer(KEYS, Account(max_24_hour_send=50)) as server:
        first = send(cli, server)
        assert first.returncode == 1
        assert "24-hour quota has 50 message(s) left, fewer than 80" in first.stderr
        assert "paused after Amazon SES's 24-hour sending quota is used up" in first.stderr
        assert "Daily message quota exceeded" in first.stderr
        assert "to resume" in first.stderr and "newsletter send issues/2020-01.yaml" in \
            first.stderr
        report = status(cli)
        assert report["state"] == "paused"
        assert report["counts"] == {"sent": 50, "pending": 30}
        assert len(server.accepted()) == len(set(server.accepted())) == 50

        server.account.sent_last_24_hours = 0  # the next day
        second = send(cli, server)
    assert second.returncode == 0, second.stderr
    assert sorted(server.accepted()) == emails  # each exactly once over both runs
    assert status(cli)["counts"] == {"sent": 80}


def test_an_expired_session_token_stops_the_run_with_nothing_sent(
        cli: Cli, project_with: Callable[..., list[str]]) -> None:
    emails = project_with(30)
    with SesServer(KEYS, behaviour=Behaviour(expire_token_at=0)) as server:
        result = send(cli, server)
    assert result.returncode == 1
    assert "Amazon SES refused the credentials from the environment (403" in result.stderr
    assert "ExpiredTokenException" in result.stderr and "session token has expired" in \
        result.stderr
    assert server.accepted() == [] and [r.method for r in server.received] == ["GET"]
    assert SECRET_KEY not in result.stdout + result.stderr and TOKEN not in result.stderr
    assert "never sent to a list" in cli("status", ISSUE, env=ENV).stdout  # nothing frozen

    renewed = {**ENV, "AWS_SESSION_TOKEN": TOKEN + "-renewed"}
    with SesServer(Keys(ACCESS, SECRET_KEY, renewed["AWS_SESSION_TOKEN"])) as server:
        again = send(cli, server, renewed)
    assert again.returncode == 0, again.stderr
    assert sorted(server.accepted()) == emails


def test_a_token_expiring_mid_send_marks_nothing_it_refused_as_sent(
        cli: Cli, project_with: Callable[..., list[str]]) -> None:
    emails = project_with(40)
    with SesServer(KEYS, behaviour=Behaviour(expire_token_at=12)) as server:
        result = send(cli, server)
    assert result.returncode == 1 and "session token has expired" in result.stderr
    accepted = server.accepted()
    assert len(accepted) == 12
    report = status(cli)
    assert report["counts"]["sent"] == 12 and "failed" not in report["counts"]
    assert set(report["counts"]) <= {"sent", "pending", "sending"}

    renewed = {**ENV, "AWS_SESSION_TOKEN": TOKEN + "-renewed"}
    with SesServer(Keys(ACCESS, SECRET_KEY, renewed["AWS_SESSION_TOKEN"])) as server:
        again = send(cli, server, renewed)
    assert again.returncode == 0, again.stderr
    assert sorted(accepted + server.accepted()) == emails  # each exactly once in all


def test_sandbox_rejections_fail_those_recipients_only_and_suppress_nobody(
        cli: Cli, project: Path, project_with: Callable[..., list[str]]) -> None:
    emails = project_with(10)
    account = Account(production=False, verified={"efus.eu", *emails[:7]})
    with SesServer(KEYS, account) as server:
        result = send(cli, server)
    assert "the account is in the SES sandbox of eu-west-1" in result.stderr
    report = status(cli)
    assert report["counts"] == {"sent": 7, "failed": 3}
    assert sorted(f["email"] for f in report["failed"]) == emails[7:]
    assert all("MessageRejected" in f["reply"] for f in report["failed"])
    with SubscriberStore(project / "newsletter.db") as store:
        assert {store.get(e).status for e in emails} == {"active"}  # type: ignore[union-attr]


def test_our_dkim_signature_survives_ses_replacing_message_id_and_date(
        cli: Cli, project: Path, project_with: Callable[..., list[str]],
        dkim_key: tuple[Path, bytes]) -> None:
    import dkim

    key_file, record = dkim_key
    with (project / "newsletter.toml").open("a", encoding="utf-8") as toml:
        toml.write(f'\n[dkim]\nselector = "nl2020"\nkey_file = "{key_file}"\n')
    project_with(3)
    with SesServer(KEYS) as server:
        result = send(cli, server)
    assert result.returncode == 0, result.stderr
    raws = [r.raw for r in server.received if r.accepted]
    assert len(raws) == 3
    for raw in raws:
        assert raw is not None and raw.startswith(b"DKIM-Signature: ")
        signature = message_from_bytes(raw)["DKIM-Signature"].replace("\r\n", "")
        signed = {h.strip().lower() for h in re.search(r"h=([^;]+)", signature)[1].split(":")}  # type: ignore[index]
        assert {"from", "to", "subject", "list-unsubscribe", "list-id"} <= signed
        assert not signed & {"message-id", "date"}
        # What SES does before delivery ("Amazon SES header fields"):
        delivered = re.sub(rb"(?m)^Message-ID: .*\r\n", b"Message-ID: <0102abc@eu-west-1."
                           b"amazonses.com>\r\n", raw)
        delivered = re.sub(rb"(?m)^Date: .*\r\n", b"Date: Wed, 15 Jan 2020 08:00:01 +0000\r\n",
                           delivered)
        assert delivered != raw
        assert dkim.verify(delivered, dnsfunc=lambda name, timeout=5: record)


def test_a_test_send_through_ses_logs_its_requests_without_any_secret(
        cli: Cli, project: Path) -> None:
    with SesServer(KEYS) as server:
        result = cli("-v", "send", ISSUE, "--test", "--to", "ana@efus.eu", "--transport",
                     server.url(), env=ENV)
    assert result.returncode == 0, result.stderr
    assert "ana@efus.eu: sent (200 Amazon SES MessageId" in result.stdout
    assert "Amazon SES: POST http://127.0.0.1" in result.stderr  # -v shows the request
    assert SECRET_KEY not in result.stdout + result.stderr
    assert TOKEN not in result.stdout + result.stderr
    [request] = server.received
    assert str(message_from_bytes(request.raw or b"")["Subject"]).startswith("=?utf-8?q?=5BTEST")


def test_an_unknown_configuration_set_stops_with_what_to_check(
        server: SesServer, settings: Settings, factory: MessageFactory) -> None:
    with open_transport(server.url(configuration_set="events"), settings) as transport, \
            pytest.raises(TransportError, match="check configuration_set=") as caught:
        transport.send([message(factory)])
    assert type(caught.value) is TransportError and "NotFoundException" in str(caught.value)
