"""Sends through the mail-service APIs (Postmark, SendGrid, Mailgun) to local stand-ins.

The stand-ins (api_server.py) run on 127.0.0.1, check every request against the provider's
documented shape and answer with its documented bodies, or misbehave on cue. First the
transports on their own (request shape, personalisation, how each answer maps to the
contract), then `newsletter send` as a subprocess, comparing the server's own log of
accepted requests with `newsletter status --json`.
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
import re
import signal
import sqlite3
import ssl
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
import trustme
from api_server import Answer, ApiServer, Behaviour
from conftest import REPO, configure

from newsletter.audience.store import NewRow, SubscriberStore, address_key
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
    TransportError,
    TransportUnavailable,
)
from newsletter.transports import Status, open_transport

Cli = Callable[..., subprocess.CompletedProcess[str]]
ISSUE = "issues/2020-01.yaml"
KEY = "key-5f0c2e9a7b3d4e18a6c1"  # distinctive, so that a leak is easy to find
SECRET = "a-secret-for-the-api-tests-01234"
ENV = {"NEWSLETTER_API_KEY": KEY, "NEWSLETTER_SECRET": SECRET}
PROVIDERS = ["postmark", "sendgrid", "mailgun"]
PEOPLE = [("ana@example.org", "Ana López", {}),
          ("jr@example.org", "Dupont, Jean-Rémi", {}),
          ("ole@example.org", "Ole & Kari <Nordmann>", {"city": "Liège"}),
          ("anon@example.org", "", {})]


# --- the transports on their own -------------------------------------------------------

@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(REPO / "newsletter.toml", env=ENV)


@pytest.fixture(scope="module")
def factory(settings: Settings) -> MessageFactory:
    composed = compose(load_issue(REPO / ISSUE, ISSUE), settings)
    return MessageFactory(composed, settings, Signer(SECRET.encode()), send_key="2020-01:1")


def batch(factory: MessageFactory, people: list[tuple[str, str, dict[str, str]]] = PEOPLE
          ) -> list[Personalised]:
    return [factory.personalise(Recipient(n + 1, email, name, "members", fields))
            for n, (email, name, fields) in enumerate(people)]


@pytest.fixture(params=PROVIDERS)
def server(request: pytest.FixtureRequest) -> Iterator[ApiServer]:
    with ApiServer(request.param, KEY) as running:
        yield running


def smtp_parts(message: Personalised) -> tuple[str, str]:
    """The text and HTML a recipient gets over SMTP, decoded from the wire bytes."""
    parsed = BytesParser(policy=policy.default).parsebytes(message.data)
    text, body = (part.get_content() for part in parsed.iter_parts())  # type: ignore[attr-defined]
    return text, body


def test_each_provider_gets_its_documented_request_and_personalises_as_smtp_does(
        server: ApiServer, settings: Settings, factory: MessageFactory) -> None:
    messages = batch(factory)
    with open_transport(server.url, settings) as transport:
        results = transport.send(messages)

    assert [r.status for r in results] == [Status.SENT] * 4
    assert all(re.search(r"MessageID|X-Message-Id|Queued", r.reply) for r in results)
    [request] = server.received
    assert request.problems == [] and request.status in (200, 202)
    assert request.recipients == [email for email, _, _ in PEOPLE]
    rendered = {m.email: m for m in server.rendered()}
    for message in messages:
        got = rendered[message.recipient.email]
        text, body = smtp_parts(message)
        assert got.text.rstrip() == text.replace("\r\n", "\n").rstrip()
        assert got.html.rstrip() == body.replace("\r\n", "\n").rstrip()
        name = message.recipient.name or "reader"
        assert f"Dear {name}," in got.text and f"Dear {html.escape(name)}," in got.html
        assert got.subject == factory.subject
        assert got.headers["List-Unsubscribe"] == message.headers["List-Unsubscribe"].replace(
            "\r\n ", " ")
        assert got.headers["Message-ID" if "Message-ID" in got.headers else "Message-Id"] \
            == message.message_id
        assert got.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert got.headers["List-Id"] == "Efus Newsletter <newsletter.efus.eu>"
        assert "newsletter@efus.eu" in got.headers["From"]
        assert "contact@efus.eu" in got.headers["Reply-To"]
        for part in (got.text, got.html, got.subject, *got.headers.values()):
            assert "%%" not in part and "%recipient." not in part
    assert "Ole &amp; Kari &lt;Nordmann&gt;" in rendered["ole@example.org"].html


def test_a_refused_key_stops_with_a_clear_message_that_never_shows_it(
        server: ApiServer, settings: Settings, factory: MessageFactory) -> None:
    wrong = "wrong-key-0000000000000000"
    other = dataclasses.replace(settings, env={**ENV, "NEWSLETTER_API_KEY": wrong})
    with open_transport(server.url, other) as transport, \
            pytest.raises(AuthenticationError) as caught:
        transport.send(batch(factory))
    assert server.received[0].status == 401
    message = str(caught.value)
    assert "refused the API key (401" in message and "NEWSLETTER_API_KEY" in message
    assert wrong not in message + caught.value.reply


@pytest.mark.parametrize("provider", ["sendgrid"])
def test_429_gives_the_wait_from_retry_after_or_the_rate_limit_reset(
        provider: str, settings: Settings, factory: MessageFactory) -> None:
    reset = str(int(time.time()) + 30)
    behaviour = Behaviour(answers={0: Answer(429, {"Retry-After": "2"}, "too many requests"),
                                   1: Answer(429, {"X-RateLimit-Reset": reset})})
    with ApiServer(provider, KEY, behaviour) as server, \
            open_transport(server.url, settings) as transport:
        for low, high in ((2, 2), (28, 30)):
            with pytest.raises(TransportUnavailable) as caught:
                transport.send(batch(factory))
            assert caught.value.throttled and low <= (caught.value.retry_after or 0) <= high


def test_a_server_error_is_retryable_and_an_echoed_key_is_redacted(
        server: ApiServer, settings: Settings, factory: MessageFactory) -> None:
    server.behaviour.answers = {0: Answer(503, message=f"overloaded, your key {KEY} is fine"),
                                1: Answer(422, message=f"bad request from {KEY}")}
    with open_transport(server.url, settings) as transport:
        with pytest.raises(TransportUnavailable) as unavailable:
            transport.send(batch(factory))
        with pytest.raises(TransportError) as refused:
            transport.send(batch(factory))
    assert not unavailable.value.throttled
    for exc in (unavailable.value, refused.value):
        assert KEY not in str(exc) + exc.reply and "***" in str(exc)
    assert type(refused.value) is TransportError and "422" in str(refused.value)


def test_a_read_timeout_after_the_request_left_means_unknown(
        server: ApiServer, settings: Settings, factory: MessageFactory) -> None:
    server.behaviour.delay = 1.5
    fast = dataclasses.replace(settings, timeout=0.4)
    with open_transport(server.url, fast) as transport, pytest.raises(OutcomeUnknown):
        transport.send(batch(factory))
    assert len(server.received) == 1  # it arrived: re-sending it blindly could send twice


def test_no_connection_means_nothing_was_sent(settings: Settings,
                                              factory: MessageFactory) -> None:
    with ApiServer("mailgun", KEY) as server:
        url = server.url
    with open_transport(url, settings) as transport, \
            pytest.raises(TransportUnavailable) as caught:
        transport.send(batch(factory))
    assert "cannot connect" in str(caught.value) and KEY not in str(caught.value)


def test_postmark_maps_each_error_code_to_its_recipient(
        settings: Settings, factory: MessageFactory) -> None:
    codes = {"jr@example.org": (406, "You tried to send to recipient(s) that have been marked "
                                     "as inactive. Found inactive addresses: jr@example.org."),
             "ole@example.org": (300, "Invalid 'To' address: 'ole@example.org'.")}
    with ApiServer("postmark", KEY, Behaviour(codes=codes)) as server, \
            open_transport(server.url, settings) as transport:
        results = transport.send(batch(factory))
    assert [(r.status, r.suppress) for r in results] == [
        (Status.SENT, False), (Status.FAILED, True), (Status.FAILED, True), (Status.SENT, False)]
    assert "ErrorCode 406" in results[1].reply and "Invalid 'To'" in results[2].reply


def test_postmark_stops_when_every_message_is_refused_for_the_same_account_reason(
        settings: Settings, factory: MessageFactory) -> None:
    reason = (400, "The 'From' address you supplied (newsletter@efus.eu) is not a Sender "
                   "Signature on your account.")
    codes = {email: reason for email, _, _ in PEOPLE}
    with ApiServer("postmark", KEY, Behaviour(codes=codes)) as server, \
            open_transport(server.url, settings) as transport, \
            pytest.raises(TransportError, match="refused every message.*Sender Signature"):
        transport.send(batch(factory))


def test_tls_is_verified_and_a_private_ca_can_be_trusted(
        tmp_path: Path, settings: Settings, factory: MessageFactory) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "private-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with ApiServer("sendgrid", KEY, tls=context) as server:
        assert server.url.startswith("sendgrid://127.0.0.1:") and "tls=off" not in server.url
        with open_transport(server.url, settings) as transport, \
                pytest.raises(TransportError, match="TLS certificate not trusted"):
            transport.send(batch(factory))
        with open_transport(f"{server.url}?ca_file={ca_file}", settings) as transport:
            assert [r.status for r in transport.send(batch(factory))] == [Status.SENT] * 4
    assert len(server.received) == 1  # the key never went to the untrusted server


@pytest.mark.parametrize("url, problem", [
    ("postmark://api.example.net?tls=off", "without TLS"),
    ("sendgrid://apikey:secret@default", "do not put the API key in the URL"),
    ("mailgun://default", "expected your sending domain"),
    ("mailgun://mg.example.org?region=asia", "region='asia'"),
    ("postmark://default?stream=broadcast&track=yes", "unknown option(s) track"),
])
def test_transport_urls_are_checked_before_anything_is_sent(
        settings: Settings, url: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(problem)):
        open_transport(url, settings)


def test_the_api_key_comes_from_the_environment_only(settings: Settings) -> None:
    without = dataclasses.replace(settings, env={"NEWSLETTER_SECRET": SECRET})
    with pytest.raises(ConfigError, match="set NEWSLETTER_API_KEY"):
        open_transport("sendgrid://default", without)
    assert "api.eu.mailgun.net" in open_transport("mailgun://mg.example.org?region=eu",
                                                  settings).description


# --- newsletter send, end to end -------------------------------------------------------

def subscribe(project: Path, count: int) -> list[str]:
    emails = [f"reader.{n:03d}@example.org" for n in range(count)]
    with SubscriberStore(project / "newsletter.db") as store:
        for n, email in enumerate(emails):
            store.add(email, "members", name=f"Reader {n}")
    return emails


def send(cli: Cli, server: ApiServer, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return cli("send", ISSUE, "--list", "members", "--yes", "--transport", server.url,
               env=ENV, **kwargs)


def status(cli: Cli) -> dict:  # type: ignore[type-arg]
    result = cli("status", ISSUE, "--json", "--limit", "1000", env=ENV)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def project_with(project: Path) -> Callable[..., list[str]]:
    def make(count: int, **send: object) -> list[str]:
        configure(project, **{"retry_base": "0.2s", "retry_max_wait": "10s", "connections": 2,
                              **send})
        return subscribe(project, count)
    return make


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_failed_request_is_retried_and_everyone_is_accepted_exactly_once(
        provider: str, cli: Cli, project_with: Callable[..., list[str]]) -> None:
    emails = project_with(30, batch_size=10)
    behaviour = Behaviour(answers={0: Answer(500, message="internal server error")})
    with ApiServer(provider, KEY, behaviour) as server:
        result = send(cli, server)
    assert result.returncode == 0, result.stderr
    first, *rest = server.received
    assert first.status == 500 and all(r.status == 202 or r.status == 200 for r in rest)
    assert all(len(r.recipients) <= 10 and not r.problems for r in server.received)
    assert sorted(server.accepted()) == emails  # the refused batch once more, not twice
    assert status(cli)["counts"] == {"sent": 30}


def test_429_waits_as_asked_and_sends_the_batch_once_more(
        cli: Cli, project_with: Callable[..., list[str]]) -> None:
    emails = project_with(20, batch_size=10, connections=1)
    behaviour = Behaviour(answers={0: Answer(429, {"Retry-After": "2"}, "too many requests")})
    with ApiServer("mailgun", KEY, behaviour) as server:
        result = send(cli, server)
    assert result.returncode == 0, result.stderr
    first, *rest = server.received
    assert first.status == 429
    again = [r for r in rest if set(r.recipients) & set(first.recipients)]
    assert all(r.at - first.at >= 2.0 for r in again)
    assert sorted(server.accepted()) == emails  # each of them once more, not twice
    assert "throttled by the server" in result.stderr


def test_postmark_error_codes_fail_and_suppress_exactly_those_recipients(
        cli: Cli, project: Path, project_with: Callable[..., list[str]]) -> None:
    emails = project_with(12, batch_size=12)
    dead = {emails[3]: (406, f"You tried to send to recipient(s) that have been marked as "
                             f"inactive. Found inactive addresses: {emails[3]}. Inactive "
                             "recipients are ones that have generated a hard bounce, a spam "
                             "complaint, or a manual suppression."),
            emails[7]: (300, f"Invalid 'To' address: '{emails[7]}'.")}
    with ApiServer("postmark", KEY, Behaviour(codes=dead)) as server:
        result = send(cli, server)
    assert result.returncode == 0, result.stderr
    assert "2 address(es) bounced permanently" in result.stdout
    report = status(cli)
    assert report["counts"] == {"sent": 10, "failed": 2}
    assert sorted(f["email"] for f in report["failed"]) == sorted(dead)
    assert sorted(server.accepted()) == sorted(set(emails) - set(dead))
    with SubscriberStore(project / "newsletter.db") as store:
        assert {e: store.get(e).status for e in emails  # type: ignore[union-attr]
                if store.get(e).status != "active"} == {e: "bounced" for e in dead}  # type: ignore[union-attr]


def test_a_refused_key_stops_the_run_sends_nothing_and_never_prints_the_key(
        cli: Cli, project_with: Callable[..., list[str]]) -> None:
    emails = project_with(20, batch_size=5)
    with ApiServer("sendgrid", "the-real-key-is-different-0000") as server:
        result = send(cli, server)
        assert result.returncode == 1
        assert "SendGrid refused the API key (401" in result.stderr
        assert "NEWSLETTER_API_KEY" in result.stderr
        assert "run the same command again" in result.stderr
        assert KEY not in result.stdout + result.stderr
        assert len(server.received) <= 2 and server.accepted() == []  # one per connection
        counts = status(cli)["counts"]
        assert set(counts) <= {"pending", "sending"} and sum(counts.values()) == 20

        server.key = KEY  # the officer fixes NEWSLETTER_API_KEY and runs it again
        again = send(cli, server)
    assert again.returncode == 0, again.stderr
    assert sorted(server.accepted()) == emails
    assert status(cli)["counts"] == {"sent": 20}


def test_a_read_timeout_marks_that_batch_unknown_and_the_rest_is_sent(
        cli: Cli, project_with: Callable[..., list[str]]) -> None:
    emails = project_with(15, batch_size=5, connections=1, timeout="1s")
    with ApiServer("postmark", KEY, Behaviour(delays={0: 2.0})) as server:
        result = send(cli, server)
    assert result.returncode == 1 and "unknown outcome" in result.stderr
    report = status(cli)
    assert report["counts"] == {"sent": 10, "unknown": 5}
    unknown = sorted(u["email"] for u in report["unknown"])
    assert unknown == sorted(server.received[0].recipients)
    assert Counter(server.accepted()) == Counter(emails)  # the server took them, once


def test_resend_after_a_crash_sends_each_recipient_in_exactly_one_accepted_request(
        cli: Cli, project: Path, project_with: Callable[..., list[str]]) -> None:
    batch_size, connections = 4, 2
    emails = project_with(48, batch_size=batch_size, connections=connections)
    with ApiServer("sendgrid", KEY, Behaviour(delay=0.4)) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
        sender = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "send", ISSUE, "--list", "members", "--yes",
             "--transport", server.url], cwd=project, env={**env, **ENV},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server.wait_for(lambda: len(server.received) >= 5, timeout=30)
        sender.send_signal(signal.SIGKILL)
        sender.wait()
        killed_after = len(server.received)
        assert 5 <= killed_after < len(emails) / batch_size
        server.behaviour.delay = 0.0
        result = send(cli, server)
    assert result.returncode == 1, result.stderr  # complete, with some outcomes unknown
    report = status(cli)
    unknown = {u["email"] for u in report["unknown"]}
    assert 0 < len(unknown) <= batch_size * connections
    assert report["counts"] == {"sent": len(emails) - len(unknown), "unknown": len(unknown)}
    seen = Counter(server.accepted())
    assert {e for e in emails if seen[e] != 1} <= unknown
    assert all(seen[e] <= 1 for e in emails)  # unknown ones are not re-sent on their own


def test_with_a_return_path_each_request_carries_the_delivery_token_back_to_its_webhook(
        settings: Settings, factory: MessageFactory) -> None:
    """Postmark Metadata, SendGrid custom_args, Mailgun v: variables: the webhooks return them."""
    signer = Signer(SECRET.encode())
    bounced = dataclasses.replace(settings, return_path="bounces@news.efus.eu")
    with_token = MessageFactory(factory.composed, bounced, signer, send_key="2020-01:7",
                                send_id=7)
    messages = batch(with_token)
    tokens = [signer.verify_delivery(m.token) for m in messages]
    assert [(t.send_id, t.subscriber_id) for t in tokens if t] == [(7, 1), (7, 2), (7, 3), (7, 4)]
    for url in ("postmark://default", "sendgrid://default", "mailgun://mg.efus.eu"):
        with open_transport(url, settings) as transport:
            body = transport.build_request(messages).body.decode()  # type: ignore[attr-defined]
        for message in messages:
            assert message.token in body, url
        if url.startswith("mailgun"):
            assert 'name="v:nl_delivery"' in body and "%recipient.nl_delivery%" in body
        else:
            assert '"nl_delivery":"' in body.replace(" ", "")


def subscribe_many(project: Path, count: int) -> list[str]:
    """`count` subscribers of members in one transaction (store.add one by one is slow)."""
    emails = [f"reader.{n:04d}@example.org" for n in range(count)]
    rows = [NewRow(n + 1, e, address_key(e), f"Reader {n}", {}) for n, e in enumerate(emails)]
    with SubscriberStore(project / "newsletter.db") as store:
        store.merge(rows, "members")
    return emails


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("trouble", ["429 with Retry-After", "two 503s in a row"])
def test_a_bad_minute_is_one_event_and_1200_recipients_go_out_in_one_run(
        provider: str, trouble: str, cli: Cli, project: Path) -> None:
    # The provider's default batch size, 4 connections, max_consecutive_errors 25: the
    # refused requests carry 100 or 500 recipients each, but each is one failure.
    configure(project, retry_base="0.5s")
    emails = subscribe_many(project, 1200)
    answers = {1: Answer(429, {"Retry-After": "1"}, "too many requests")} \
        if trouble.startswith("429") else {1: Answer(503, message="overloaded"),
                                           2: Answer(503, message="overloaded")}
    with ApiServer(provider, KEY, Behaviour(answers=answers)) as server:
        result = send(cli, server)
    assert result.returncode == 0, result.stderr
    assert "paused" not in result.stderr
    assert [r.status for r in server.received if r.number in answers] == \
        [a.status for a in answers.values()]
    assert Counter(server.accepted()) == Counter(emails)  # everyone once, in this one run
    report = status(cli)
    assert report["state"] == "complete" and report["counts"] == {"sent": 1200}
    if trouble.startswith("429"):
        refused = server.received[1]
        again = [r for r in server.received
                 if r.number > 1 and set(r.recipients) & set(refused.recipients)]
        assert again and all(r.at - refused.at >= 1.0 for r in again)  # Retry-After honoured
        assert result.stderr.count("throttled by the server") == 1  # slowed down once


def test_status_gives_the_rate_over_the_time_the_runs_took_not_the_instant_of_a_batch(
        cli: Cli, project: Path, project_with: Callable[..., list[str]]) -> None:
    # Six recipients in one request that the server answers after half a second: all six
    # are accepted at one instant, and yet the send went at most 12 a second.
    project_with(6, batch_size=10, connections=1)
    with ApiServer("postmark", KEY, Behaviour(delay=0.5)) as server:
        began = time.monotonic()
        assert send(cli, server).returncode == 0
        first_wall = time.monotonic() - began
    report = status(cli)
    assert 6 / first_wall - 0.1 <= report["rate_per_second"] <= 6 / 0.5
    assert report["counts"] == {"sent": 6} and report["runs"] == 1
    shown = cli("status", ISSUE, env=ENV).stdout
    assert "6 sent in" in shown and "of sending over 1 run," in shown

    # An hour later, three newcomers are added to the same send: the hour between the two
    # runs is not sending time.
    with sqlite3.connect(project / "newsletter.db") as db:
        db.execute("UPDATE send_runs SET started_at = started_at - 3600, "
                   "finished_at = finished_at - 3600")
        db.execute("UPDATE deliveries SET updated_at = updated_at - 3600")
    with SubscriberStore(project / "newsletter.db") as store:
        for n in range(3):
            store.add(f"newcomer.{n}@example.org", "members")
    with ApiServer("postmark", KEY, Behaviour(delay=0.5)) as server:
        began = time.monotonic()
        assert cli("send", ISSUE, "--list", "members", "--yes", "--include-new",
                   "--transport", server.url, env=ENV).returncode == 0
        second_wall = time.monotonic() - began
    report = status(cli)
    assert report["counts"] == {"sent": 9} and report["runs"] == 2
    assert 9 / (first_wall + second_wall) - 0.1 <= report["rate_per_second"] <= 9 / 1.0
    assert "over 2 runs," in cli("status", ISSUE, env=ENV).stdout
