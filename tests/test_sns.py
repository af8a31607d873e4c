"""Amazon SES bounces and complaints over Amazon SNS, signed with a throwaway CA's key.

A local HTTPS server (its certificate from a trustme CA) stands in for the SNS host: it
serves the signing certificate and answers SubscribeURL. Messages are signed as SNS signs
them (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA over the canonical string), with
the key of a certificate the same CA issued for sns.eu-west-1.amazonaws.com. The tests
trust that host and CA only through an explicit Trust; production trusts neither.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from sns_host import TOPIC, SnsHost, certificates, notification

from newsletter.inbound.sns import (
    AWS_HOST,
    Rejected,
    SesEvent,
    Trust,
    parse_notification,
)

SES_ID = "0102018f2a7c0d1e-6b1f2a3c-4d5e-6f70-8192-a3b4c5d6e7f8-000000"
OURS = "<2020-01.5f0c2e9a@efus.eu>"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def sns_certificates(ca: trustme.CA) -> tuple[trustme.LeafCert, ssl.SSLContext]:
    return certificates(ca)


@pytest.fixture
def sns(sns_certificates: tuple[trustme.LeafCert, ssl.SSLContext]) -> Iterator[SnsHost]:
    host = SnsHost(*sns_certificates)  # a new port each time: a certificate URL not seen yet
    yield host
    host.close()


@pytest.fixture
def trust(ca: trustme.CA, tmp_path: Path) -> Trust:
    ca_file = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return Trust((TOPIC,), host=re.compile(r"127\.0\.0\.1:\d+"), ca_file=str(ca_file))


def mail(*recipients: str) -> dict[str, object]:
    return {"timestamp": "2020-01-15T09:00:01.000Z", "source": "newsletter@efus.eu",
            "messageId": SES_ID, "destination": list(recipients), "headersTruncated": False,
            "commonHeaders": {"from": ["Efus Newsletter <newsletter@efus.eu>"],
                              "messageId": OURS, "subject": "Efus Newsletter"},
            "tags": {"ses:configuration-set": ["newsletter"]}}


BOUNCE = {"notificationType": "Bounce", "mail": mail("jane@example.com", "ole@example.org"),
          "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                     "feedbackId": "0102018f-bounce-000000",
                     "timestamp": "2020-01-15T09:05:10.237Z",
                     "reportingMTA": "dsn; a27-33.smtp-out.eu-west-1.amazonses.com",
                     "bouncedRecipients": [
                         {"emailAddress": "jane@example.com", "action": "failed",
                          "status": "5.1.1",
                          "diagnosticCode": "smtp; 550 5.1.1 <jane@example.com>... User"},
                         {"emailAddress": "ole@example.org", "action": "failed",
                          "status": "5.1.1", "diagnosticCode": "smtp; 550 no such user"}]}}


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_bounce_becomes_one_event_per_recipient(
        sns: SnsHost, trust: Trust, version: str) -> None:
    events = parse_notification(sns.sign(notification(sns, BOUNCE), version), trust)
    assert [e.recipient for e in events] == ["jane@example.com", "ole@example.org"]
    jane = events[0]
    assert jane == SesEvent("Bounce", "jane@example.com", "Permanent", "General", "5.1.1",
                            "smtp; 550 5.1.1 <jane@example.com>... User", "",
                            "0102018f-bounce-000000", SES_ID, OURS,
                            {"ses:configuration-set": ("newsletter",)}, jane.occurred_at)
    assert jane.permanent and jane.occurred_at == pytest.approx(1579079110.237)
    assert sns.requests == ["/SimpleNotificationService-test.pem"]


def test_the_certificate_is_fetched_once_and_a_subject_is_signed_too(
        sns: SnsHost, trust: Trust) -> None:
    signed = notification(sns, BOUNCE, Subject="Amazon SES Email Event Notification")
    for _ in range(3):
        assert len(parse_notification(sns.sign(signed), trust)) == 2
    assert sns.requests == ["/SimpleNotificationService-test.pem"]
    tampered = json.loads(sns.sign(signed))
    tampered["Subject"] = "something else"
    with pytest.raises(Rejected, match="signature does not match") as caught:
        parse_notification(json.dumps(tampered).encode(), trust)
    assert caught.value.status == 403


def test_transient_bounces_and_complaints_say_what_they_are(sns: SnsHost,
                                                            trust: Trust) -> None:
    transient = {**BOUNCE, "bounce": {**BOUNCE["bounce"], "bounceType": "Transient",  # type: ignore[dict-item]
                                      "bounceSubType": "MailboxFull"}}
    [soft, _] = parse_notification(sns.sign(notification(sns, transient)), trust)
    assert (soft.bounce_type, soft.bounce_subtype, soft.permanent) == \
        ("Transient", "MailboxFull", False)
    complaint = {"eventType": "Complaint", "mail": mail("ana@example.org"),  # event publishing
                 "complaint": {"complainedRecipients": [{"emailAddress": "ana@example.org"}],
                               "complaintFeedbackType": "abuse",
                               "feedbackId": "0102018f-complaint-000000",
                               "timestamp": "2020-01-16T10:00:00Z"}}
    [event] = parse_notification(sns.sign(notification(sns, complaint)), trust)
    assert (event.kind, event.recipient, event.complaint_type, event.permanent) == \
        ("Complaint", "ana@example.org", "abuse", False)
    delivery = {"notificationType": "Delivery", "mail": mail("ana@example.org"),
                "delivery": {"recipients": ["ana@example.org"]}}
    assert parse_notification(sns.sign(notification(sns, delivery)), trust) == []


def test_a_tampered_message_is_refused(sns: SnsHost, trust: Trust) -> None:
    signed = json.loads(sns.sign(notification(sns, BOUNCE)))
    signed["Message"] = signed["Message"].replace("jane@example.com", "boss@efus.eu")
    with pytest.raises(Rejected, match="signature does not match"):
        parse_notification(json.dumps(signed).encode(), trust)


@pytest.mark.parametrize("url", [
    "http://{host}/SimpleNotificationService-test.pem",
    "https://evil.example.net/SimpleNotificationService-test.pem",
    "https://sns.eu-west-1.amazonaws.com.evil.net/SimpleNotificationService-test.pem",
    "https://user@{host}/SimpleNotificationService-test.pem",
])
def test_a_certificate_from_anywhere_but_an_sns_host_is_never_fetched(
        sns: SnsHost, trust: Trust, url: str) -> None:
    body = sns.sign(notification(sns, BOUNCE,
                                 SigningCertURL=url.format(host=sns.base[8:])))
    with pytest.raises(Rejected, match="SigningCertURL .*expected https on an SNS host") \
            as caught:
        parse_notification(body, trust)
    assert caught.value.status == 403 and sns.requests == []


def test_production_trusts_only_sns_hosts_of_aws() -> None:
    assert AWS_HOST.fullmatch("sns.eu-west-1.amazonaws.com")
    assert AWS_HOST.fullmatch("sns.cn-north-1.amazonaws.com.cn")
    for host in ("sns.eu-west-1.amazonaws.com.evil.net", "evil-sns.eu-west-1.amazonaws.com",
                 "sns.eu-west-1.amazonaws.com:8443", "127.0.0.1:8443", "amazonaws.com"):
        assert not AWS_HOST.fullmatch(host), host
    assert Trust((TOPIC,)).ca_file is None  # the system's CAs


def test_a_message_from_another_topic_is_refused_before_anything_is_fetched(
        sns: SnsHost, trust: Trust) -> None:
    other = notification(sns, BOUNCE, TopicArn="arn:aws:sns:eu-west-1:666666666666:theirs")
    with pytest.raises(Rejected, match="is not one of ours"):
        parse_notification(sns.sign(other), trust)
    assert sns.requests == []


def test_a_subscription_is_confirmed_by_visiting_its_subscribe_url(
        sns: SnsHost, trust: Trust) -> None:
    confirmation = {"Type": "SubscriptionConfirmation", "TopicArn": TOPIC,
                    "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b", "Token": "2336412f37",
                    "Message": f"You have chosen to subscribe to the topic {TOPIC}.",
                    "SubscribeURL": f"{sns.base}/?Action=ConfirmSubscription&TopicArn={TOPIC}"
                                    "&Token=2336412f37",
                    "Timestamp": "2020-01-10T12:00:00.000Z",
                    "SigningCertURL": f"{sns.base}/SimpleNotificationService-test.pem"}
    assert parse_notification(sns.sign(confirmation, "1"), trust) == []
    assert sns.requests == ["/SimpleNotificationService-test.pem",
                            f"/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336412f37"]

    elsewhere = {**confirmation, "SubscribeURL": "https://attacker.example/?Action=Confirm"}
    with pytest.raises(Rejected, match="SubscribeURL .*SNS host"):
        parse_notification(sns.sign(elsewhere, "1"), trust)
    assert len(sns.requests) == 2  # the attacker's URL was never visited


@pytest.mark.parametrize("change, problem", [
    ({"SignatureVersion": "3"}, "SignatureVersion '3': expected 1 or 2"),
    ({"Signature": "not base64!"}, "not base64"),
    ({"Type": "Something"}, "Type 'Something'"),
    ({"SigningCertURL": "https://{host}/missing.pem"}, "answered 404"),
])
def test_what_is_not_a_proper_sns_message_is_refused(
        sns: SnsHost, trust: Trust, change: dict[str, str], problem: str) -> None:
    signed = json.loads(sns.sign(notification(sns, BOUNCE)))
    signed.update({k: v.format(host=sns.base[8:]) for k, v in change.items()})
    with pytest.raises(Rejected, match=re.escape(problem)):
        parse_notification(json.dumps(signed).encode(), trust)
