"""Amazon SES's bounces and complaints, as SNS posts them to a running `newsletter serve`.

A send goes through the SES stand-in (ses_server.py); SES's notifications about it are
built from the messages the stand-in received, with SES's own Message-ID in place of ours,
and signed as SNS signs them with a certificate from a throwaway CA (sns_host.py). The
server trusts that stand-in only through the NEWSLETTER_TEST_ONLY_SNS_* variables.
"""

from __future__ import annotations

import dataclasses
import json
import signal
from collections.abc import Iterator
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

import pytest
import trustme
from sends import Sent, configure, record_send, status_of, subscribe
from ses_server import SesServer
from sns_host import TOPIC, SnsHost, certificates, notification
from test_ses import ENV, ISSUE, KEYS
from test_webhooks import Serve, events, start_serve

from newsletter.envelope import TOKEN_HEADER
from newsletter.errors import ConfigError
from newsletter.inbound.ses import trust_for
from newsletter.inbound.sns import AWS_HOST

ANA, BEN, CLEO = "ana@example.net", "ben@example.net", "cleo@example.net"
SES_MESSAGE_ID = "0102018f2a7c0d1e-6b1f2a3c-4d5e-6f70-8192-a3b4c5d6e7f8-000000"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def sns(ca: trustme.CA) -> Iterator[SnsHost]:
    host = SnsHost(*certificates(ca))
    yield host
    host.close()


@pytest.fixture
def serve(project: Path, ca: trustme.CA, sns: SnsHost) -> Iterator[Serve]:
    configure(project, sns_topics=[TOPIC])
    subscribe(project, ANA, BEN, CLEO)
    ca.cert_pem.write_to_path(str(project / "test-ca.pem"))
    running = start_serve(project, {"NEWSLETTER_SECRET": ENV["NEWSLETTER_SECRET"],
                                    "NEWSLETTER_TEST_ONLY_SNS_HOST": sns.netloc,
                                    "NEWSLETTER_TEST_ONLY_SNS_CA": str(project / "test-ca.pem")})
    yield running
    running.process.send_signal(signal.SIGINT)
    running.process.communicate(timeout=10)


def headers_of(raw: bytes) -> list[dict[str, str]]:
    """`mail.headers` as SES gives them back: the message's own, SES's Message-ID in ours'
    place."""
    parsed = BytesHeaderParser(policy=compat32).parsebytes(raw)
    return [{"name": name, "value": f"<{SES_MESSAGE_ID}@eu-west-1.amazonses.com>"
             if name.lower() == "message-id" else " ".join(str(value).split())}
            for name, value in parsed.items()]


def ses_notification(kind: str, email: str, headers: list[dict[str, str]],
                     **report: object) -> dict[str, object]:
    mail = {"timestamp": "2020-01-15T09:00:01.000Z", "source": "newsletter@efus.eu",
            "messageId": SES_MESSAGE_ID, "destination": [email], "headersTruncated": False,
            "headers": headers,
            "commonHeaders": {"from": ["Efus Newsletter <newsletter@efus.eu>"], "to": [email],
                              "messageId": f"<{SES_MESSAGE_ID}@eu-west-1.amazonses.com>",
                              "subject": "Efus Newsletter"}}
    if kind == "Complaint":
        body = {"complainedRecipients": [{"emailAddress": email}],
                "feedbackId": f"0102018f-complaint-{email}", "complaintFeedbackType": "abuse",
                "timestamp": "2020-01-16T10:00:00.000Z", **report}
        return {"notificationType": "Complaint", "complaint": body, "mail": mail}
    body = {"bounceType": "Permanent", "bounceSubType": "General",
            "feedbackId": f"0102018f-bounce-{email}", "timestamp": "2020-01-15T09:05:10.237Z",
            "reportingMTA": "dsn; a27-33.smtp-out.eu-west-1.amazonses.com",
            "bouncedRecipients": [{"emailAddress": email, "action": "failed", "status": "5.1.1",
                                   "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
            **report}
    return {"notificationType": "Bounce", "bounce": body, "mail": mail}


def post(serve: Serve, sns: SnsHost, message: dict[str, object], version: str = "2",
         **fields: str) -> dict[str, object]:
    body = sns.sign(notification(sns, message, **fields), version)
    answer = serve.post("/webhooks/ses", body, headers={
        "Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": "Notification",
        "x-amz-sns-topic-arn": TOPIC})
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_bounces_and_complaints_of_a_send_through_ses_reach_its_subscribers(
        cli, project: Path, serve: Serve, sns: SnsHost) -> None:  # type: ignore[no-untyped-def]
    with SesServer(KEYS) as ses:
        result = cli("send", ISSUE, "--list", "members", "--yes", "--transport", ses.url(),
                     env=ENV)
    assert result.returncode == 0, result.stderr
    sent = {r.recipients[0]: r.raw for r in ses.received if r.accepted and r.raw}
    assert sorted(sent) == [ANA, BEN, CLEO]
    assert all(raw.startswith(f"{TOKEN_HEADER}: ".encode()) for raw in sent.values())

    assert post(serve, sns, ses_notification("Bounce", ANA, headers_of(sent[ANA]))) == \
        {"recorded": 1, "duplicate": 0, "unmatched": 0, "ignored": 0}
    assert post(serve, sns, ses_notification("Complaint", BEN, headers_of(sent[BEN])),
                version="1")["recorded"] == 1
    transient = ses_notification("Bounce", CLEO, headers_of(sent[CLEO]),
                                 bounceType="Transient", bounceSubType="MailboxFull")
    transient["bounce"]["bouncedRecipients"][0].update(  # type: ignore[index]
        status="4.2.2", diagnosticCode="smtp; 452 4.2.2 mailbox full")
    assert post(serve, sns, transient)["recorded"] == 1
    assert (status_of(project, ANA), status_of(project, BEN), status_of(project, CLEO)) == \
        ("bounced", "complained", "active")
    assert events(project) == [(ANA, "hard", "ses"), (BEN, "complaint", "ses"),
                               (CLEO, "soft", "ses")]

    again = ses_notification("Bounce", ANA, headers_of(sent[ANA]))  # SNS retries: once
    assert post(serve, sns, again, MessageId="another-delivery-attempt")["duplicate"] == 1
    assert len(events(project)) == 3


def our_headers(sent: Sent, *, token: bool = True) -> list[dict[str, str]]:
    headers = [{"name": "From", "value": "Efus Newsletter <newsletter@efus.eu>"},
               {"name": "To", "value": sent.email},
               {"name": "Message-ID", "value": sent.message_id}]
    return ([{"name": TOKEN_HEADER, "value": sent.token}] if token else []) + headers


def test_a_bad_signature_or_a_stranger_changes_nothing(project: Path, serve: Serve,
                                                       sns: SnsHost) -> None:
    sent = record_send(project, "2020-01")
    good = notification(sns, ses_notification("Bounce", ANA, our_headers(sent[ANA])))
    tampered = json.loads(sns.sign(good))
    tampered["Message"] = tampered["Message"].replace("Permanent", "Permanent ")
    other_topic = sns.sign({**good, "TopicArn": "arn:aws:sns:eu-west-1:666666666666:theirs"})
    elsewhere = sns.sign({**good, "SigningCertURL": "https://evil.example/cert.pem"})
    for body in (json.dumps(tampered).encode(), other_topic, elsewhere,
                 json.dumps({**good, "SignatureVersion": "2", "Signature": ""}).encode()):
        answer = serve.post("/webhooks/ses", body)
        assert answer.status_code == 403, answer.text
    assert serve.post("/webhooks/ses", b"{not json").status_code == 400
    assert status_of(project, ANA) == "active" and events(project) == []


def test_a_subscription_confirmation_is_confirmed(project: Path, serve: Serve,
                                                 sns: SnsHost) -> None:
    confirm = (f"/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336412f37")
    confirmation = {"Type": "SubscriptionConfirmation", "TopicArn": TOPIC,
                    "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b", "Token": "2336412f37",
                    "Message": f"You have chosen to subscribe to the topic {TOPIC}.",
                    "SubscribeURL": sns.base + confirm, "Timestamp": "2020-01-10T12:00:00.000Z",
                    "SigningCertURL": f"{sns.base}/SimpleNotificationService-test.pem"}
    answer = serve.post("/webhooks/ses", sns.sign(confirmation, "1"),
                        headers={"x-amz-sns-message-type": "SubscriptionConfirmation"})
    assert answer.status_code == 200, answer.text
    assert confirm in sns.requests
    assert f"confirmed the subscription to {TOPIC}" in (project / "serve.log").read_text()


def test_messages_not_ours_are_acknowledged_and_ours_matched_by_message_id(
        project: Path, serve: Serve, sns: SnsHost) -> None:
    sent = record_send(project, "2020-01")
    stranger = dataclasses.replace(sent[ANA], message_id="<elsewhere@example.com>")
    unknown = our_headers(stranger, token=False)
    assert post(serve, sns, ses_notification("Bounce", ANA, unknown))["unmatched"] == 1
    delivery = {"notificationType": "Delivery", "mail": ses_notification(
        "Bounce", ANA, [])["mail"], "delivery": {"recipients": [ANA]}}
    assert post(serve, sns, delivery)["ignored"] == 1
    assert status_of(project, ANA) == "active" and events(project) == []
    assert "names no delivery of ours" in (project / "serve.log").read_text()

    # No token (a send without return_path), but SES kept our Message-ID in the headers.
    by_id = ses_notification("Bounce", BEN, our_headers(sent[BEN], token=False))
    assert post(serve, sns, by_id)["recorded"] == 1 and status_of(project, BEN) == "bounced"


def test_the_test_only_trust_takes_a_local_host_and_its_ca_and_nothing_else(
        project: Path) -> None:
    settings = configure(project, sns_topics=[TOPIC])
    production = trust_for(settings)
    assert production.host is AWS_HOST and production.ca_file is None
    assert production.topics == (TOPIC,)
    local = {"NEWSLETTER_TEST_ONLY_SNS_HOST": "127.0.0.1:8443",
             "NEWSLETTER_TEST_ONLY_SNS_CA": "ca.pem"}
    assert trust_for(dataclasses.replace(settings, env=local)).host.fullmatch("127.0.0.1:8443")
    for env in ({"NEWSLETTER_TEST_ONLY_SNS_HOST": "127.0.0.1:8443"},
                {**local, "NEWSLETTER_TEST_ONLY_SNS_HOST": "sns.evil.example:443"}):
        with pytest.raises(ConfigError, match="for the test suite only"):
            trust_for(dataclasses.replace(settings, env=env))


def test_sns_topics_must_be_topic_arns(project: Path) -> None:
    with pytest.raises(ConfigError, match="bounces.sns_topics: expected a list of SNS topic"):
        configure(project, sns_topics=["newsletter-bounces"])


def test_a_refusal_by_policy_is_blocked_and_not_spam_feedback_changes_nothing(
        project: Path, serve: Serve, sns: SnsHost) -> None:
    sent = record_send(project, "2020-01")
    policy = ses_notification("Bounce", ANA, our_headers(sent[ANA]))
    policy["bounce"]["bouncedRecipients"][0].update(  # type: ignore[index]
        status="5.7.1", diagnosticCode="smtp; 550 5.7.1 rejected by policy")
    assert post(serve, sns, policy)["recorded"] == 1
    not_spam = ses_notification("Complaint", BEN, our_headers(sent[BEN]),
                                complaintFeedbackType="not-spam")
    assert post(serve, sns, not_spam)["ignored"] == 1
    assert (status_of(project, ANA), status_of(project, BEN)) == ("active", "active")
    assert events(project) == [(ANA, "blocked", "ses")]
