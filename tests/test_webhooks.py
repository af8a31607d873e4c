"""Postmark, SendGrid and Mailgun webhooks sent to a running `newsletter serve` over HTTP,
signed with keys the tests generate: what is recorded, and what is refused untouched."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sends import Sent, configure, record_send, status_of, subscribe

ANA, BEN, CLEO = "ana@example.net", "ben@example.net", "cleo@example.net"
POSTMARK_PASSWORD = "postmark-hook-password-42"
MAILGUN_KEY = "key-mailgun-signing-0123456789abcdef"
SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())


@dataclass
class Serve:
    process: subprocess.Popen[str]
    url: str
    http: requests.Session

    def post(self, path: str, body: bytes, **kwargs: object) -> requests.Response:
        return self.http.post(self.url + path, data=body, timeout=10, **kwargs)  # type: ignore[arg-type]


def start_serve(project: Path, env: dict[str, str]) -> Serve:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    log = open(project / "serve.log", "w")  # noqa: SIM115 - written until the server stops
    process = subprocess.Popen([sys.executable, "-m", "newsletter", "serve", "--port", "0",
                                "--threads", "8"], cwd=project, env={**clean, **env},
                               text=True, stdout=subprocess.PIPE, stderr=log)
    log.close()
    ready, _, _ = select.select([process.stdout], [], [], 30)
    line = process.stdout.readline() if ready else ""  # type: ignore[union-attr]
    match = re.match(r"Serving on (http://127\.0\.0\.1:\d+)/", line)
    assert match, line + (project / "serve.log").read_text()
    http = requests.Session()
    http.trust_env = False
    return Serve(process, match[1], http)


def public_key_b64() -> str:
    der = SENDGRID_KEY.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


@pytest.fixture
def sent(project: Path) -> dict[str, Sent]:
    configure(project, sendgrid_public_key=public_key_b64(), webhook_max_age="5m")
    subscribe(project, ANA, BEN, CLEO)
    return record_send(project, "2020-01")


@pytest.fixture
def serve(project: Path, sent: dict[str, Sent]) -> Iterator[Serve]:
    running = start_serve(project, {"NEWSLETTER_POSTMARK_WEBHOOK_PASSWORD": POSTMARK_PASSWORD,
                                    "NEWSLETTER_MAILGUN_WEBHOOK_KEY": MAILGUN_KEY})
    yield running
    running.process.send_signal(signal.SIGINT)
    running.process.communicate(timeout=10)


def events(project: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(project / "newsletter.db") as db:
        return db.execute("SELECT d.email, e.kind, e.source FROM delivery_events e JOIN "
                          "deliveries d ON d.id = e.delivery_id ORDER BY e.id").fetchall()


# Postmark: basic auth, one event a request.

def postmark_bounce(sent: Sent, *, kind: str = "HardBounce", bounce_id: int = 4323372036,
                    metadata: bool = True) -> bytes:
    event = {"RecordType": "Bounce", "ID": bounce_id, "Type": kind, "TypeCode": 1,
             "Name": "Hard bounce", "Tag": "", "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
             "ServerID": 23, "MessageStream": "broadcast",
             "Description": "The server was unable to deliver your message (ex: unknown user, "
                            "mailbox not found).",
             "Details": "smtp;550 5.1.1 The email account that you tried to reach does not "
                        "exist.",
             "Email": sent.email, "From": "newsletter@efus.eu",
             "BouncedAt": "2020-01-16T16:09:19.6421112Z", "DumpAvailable": True,
             "Inactive": True, "CanActivate": True, "Subject": "Efus Newsletter"}
    if metadata:
        event["Metadata"] = {"nl_delivery": sent.token}
    return json.dumps(event).encode()


def test_postmark_bounce_and_complaint_with_basic_auth(project: Path, serve: Serve,
                                                       sent: dict[str, Sent]) -> None:
    auth = ("postmark", POSTMARK_PASSWORD)
    answer = serve.post("/webhooks/postmark", postmark_bounce(sent[ANA]), auth=auth)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"recorded": 1, "duplicate": 0, "unmatched": 0, "ignored": 0}
    assert status_of(project, ANA) == "bounced"
    again = serve.post("/webhooks/postmark", postmark_bounce(sent[ANA]), auth=auth)
    assert again.json()["duplicate"] == 1

    complaint = {"RecordType": "SpamComplaint", "ID": 42, "Type": "SpamComplaint",
                 "TypeCode": 100001, "Email": BEN, "BouncedAt": "2020-01-16T17:00:00Z",
                 "Metadata": {"nl_delivery": sent[BEN].token}}
    assert serve.post("/webhooks/postmark", json.dumps(complaint).encode(),
                      auth=auth).json()["recorded"] == 1
    assert status_of(project, BEN) == "complained"

    soft = serve.post("/webhooks/postmark", postmark_bounce(sent[CLEO], kind="SoftBounce",
                                                           bounce_id=7), auth=auth)
    assert soft.json()["recorded"] == 1 and status_of(project, CLEO) == "active"
    assert events(project) == [(ANA, "hard", "postmark"), (BEN, "complaint", "postmark"),
                               (CLEO, "soft", "postmark")]


def test_postmark_without_the_right_password_changes_nothing(project: Path, serve: Serve,
                                                             sent: dict[str, Sent]) -> None:
    for auth in (None, ("postmark", "wrong"), ("someone", POSTMARK_PASSWORD)):
        answer = serve.post("/webhooks/postmark", postmark_bounce(sent[ANA]), auth=auth)
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"].startswith("Basic")
    assert status_of(project, ANA) == "active" and events(project) == []


def test_an_event_for_an_unknown_message_is_acknowledged(project: Path, serve: Serve,
                                                        sent: dict[str, Sent]) -> None:
    answer = serve.post("/webhooks/postmark", postmark_bounce(sent[ANA], metadata=False),
                        auth=("postmark", POSTMARK_PASSWORD))
    assert answer.status_code == 200 and answer.json()["unmatched"] == 1
    assert status_of(project, ANA) == "active"
    assert "names no delivery of ours" in (project / "serve.log").read_text()


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff\xfe", b""])
def test_malformed_bodies_answer_400_without_a_traceback(project: Path, serve: Serve,
                                                        body: bytes) -> None:
    answer = serve.post("/webhooks/postmark", body, auth=("postmark", POSTMARK_PASSWORD))
    assert answer.status_code == 400 and "error" in answer.json()
    assert "Traceback" not in (project / "serve.log").read_text()


def test_webhooks_take_only_posts_and_only_configured_providers(project: Path,
                                                               serve: Serve) -> None:
    assert serve.http.get(serve.url + "/webhooks/postmark", timeout=10).status_code == 405
    assert serve.post("/webhooks/ses", b"{}").status_code == 404


# SendGrid: ECDSA signature over timestamp + body, a batch of events a request.

def sendgrid_events(sent: dict[str, Sent]) -> bytes:
    return json.dumps([
        {"email": ANA, "timestamp": 1579190000, "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd>",
         "event": "bounce", "category": "newsletter", "sg_event_id": "ZmFrZS1ib3VuY2UtMQ",
         "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
         "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
         "status": "5.1.1", "type": "bounce", "nl_delivery": sent[ANA].token},
        {"email": BEN, "timestamp": 1579190001, "event": "spamreport",
         "sg_event_id": "ZmFrZS1zcGFtLTE", "nl_delivery": sent[BEN].token},
        {"email": CLEO, "timestamp": 1579190002, "event": "bounce", "type": "blocked",
         "status": "5.7.1", "reason": "550 5.7.1 blocked by policy",
         "sg_event_id": "ZmFrZS1ibG9jay0x", "nl_delivery": sent[CLEO].token},
        {"email": CLEO, "timestamp": 1579190003, "event": "delivered", "response": "250 OK",
         "sg_event_id": "ZmFrZS1kZWxpdmVyZWQ", "nl_delivery": sent[CLEO].token},
    ]).encode()


def sendgrid_headers(body: bytes, *, stamp: int | None = None,
                     key: ec.EllipticCurvePrivateKey = SENDGRID_KEY) -> dict[str, str]:
    stamp = int(time.time()) if stamp is None else stamp
    signature = key.sign(str(stamp).encode() + body, ec.ECDSA(hashes.SHA256()))
    return {"Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": str(stamp)}


def test_sendgrid_signed_events_are_recorded(project: Path, serve: Serve,
                                            sent: dict[str, Sent]) -> None:
    body = sendgrid_events(sent)
    answer = serve.post("/webhooks/sendgrid", body, headers=sendgrid_headers(body))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"recorded": 3, "duplicate": 0, "unmatched": 0, "ignored": 1}
    assert (status_of(project, ANA), status_of(project, BEN), status_of(project, CLEO)) \
        == ("bounced", "complained", "active")
    assert events(project) == [(ANA, "hard", "sendgrid"), (BEN, "complaint", "sendgrid"),
                               (CLEO, "blocked", "sendgrid")]


def test_sendgrid_forged_replayed_or_stale_requests_are_refused(
        project: Path, serve: Serve, sent: dict[str, Sent]) -> None:
    body = sendgrid_events(sent)
    forged = sendgrid_headers(body, key=ec.generate_private_key(ec.SECP256R1()))
    assert serve.post("/webhooks/sendgrid", body, headers=forged).status_code == 403
    tampered = sendgrid_headers(body)
    assert serve.post("/webhooks/sendgrid", body.replace(b"5.1.1", b"5.1.2"),
                      headers=tampered).status_code == 403
    stale = sendgrid_headers(body, stamp=int(time.time()) - 3600)
    assert serve.post("/webhooks/sendgrid", body, headers=stale).status_code == 403
    unsigned = serve.post("/webhooks/sendgrid", body,
                          headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    assert events(project) == [] and status_of(project, ANA) == "active"

    good = sendgrid_headers(body)
    assert serve.post("/webhooks/sendgrid", body, headers=good).status_code == 200
    replay = serve.post("/webhooks/sendgrid", body, headers=good)
    assert replay.status_code == 403 and "replay" in replay.json()["error"]
    assert len(events(project)) == 3

    malformed = b'[{"event": "bounce"'
    assert serve.post("/webhooks/sendgrid", malformed,
                      headers=sendgrid_headers(malformed)).status_code == 400


# Mailgun: HMAC-SHA256 of timestamp + token in the body, a replay window.

def mailgun_body(sent: Sent, event: str, *, severity: str = "permanent", token: str = "",
                 stamp: int | None = None, key: str = MAILGUN_KEY, code: int = 550,
                 message: str = "5.1.1 The email account that you tried to reach does not "
                                "exist") -> bytes:
    stamp = int(time.time()) if stamp is None else stamp
    token = token or hashlib.sha256(f"{sent.email}{event}{stamp}".encode()).hexdigest()[:50]
    signature = hmac.new(key.encode(), f"{stamp}{token}".encode(), hashlib.sha256).hexdigest()
    data = {"event": event, "id": f"G9Bn5sl1TC6nu79C8C0bwg-{event}", "timestamp": stamp + 0.5,
            "log-level": "error", "recipient": sent.email, "recipient-domain": "example.net",
            "user-variables": {"nl_delivery": sent.token},
            "message": {"headers": {"message-id": sent.message_id.strip("<>"),
                                    "from": "newsletter@efus.eu", "to": sent.email}}}
    if event == "failed":
        data.update(severity=severity, reason="bounce", **{"delivery-status": {
            "attempt-no": 1, "code": code, "message": message, "description": "",
            "mx-host": "mx.example.net"}})
    return json.dumps({"signature": {"timestamp": str(stamp), "token": token,
                                     "signature": signature}, "event-data": data}).encode()


def test_mailgun_failed_and_complained_events_are_recorded(project: Path, serve: Serve,
                                                          sent: dict[str, Sent]) -> None:
    for body in (mailgun_body(sent[ANA], "failed"),
                 mailgun_body(sent[BEN], "complained"),
                 mailgun_body(sent[CLEO], "failed", severity="temporary", code=452,
                              message="4.2.2 The email account is over quota")):
        answer = serve.post("/webhooks/mailgun", body,
                            headers={"Content-Type": "application/json"})
        assert answer.status_code == 200 and answer.json()["recorded"] == 1, answer.text
    assert (status_of(project, ANA), status_of(project, BEN), status_of(project, CLEO)) \
        == ("bounced", "complained", "active")
    assert events(project) == [(ANA, "hard", "mailgun"), (BEN, "complaint", "mailgun"),
                               (CLEO, "soft", "mailgun")]


def test_mailgun_replays_stale_and_forged_requests_are_refused(
        project: Path, serve: Serve, sent: dict[str, Sent]) -> None:
    headers = {"Content-Type": "application/json"}
    forged = mailgun_body(sent[ANA], "failed", key="not-the-key")
    assert serve.post("/webhooks/mailgun", forged, headers=headers).status_code == 403
    stale = mailgun_body(sent[ANA], "failed", stamp=int(time.time()) - 3600)
    assert serve.post("/webhooks/mailgun", stale, headers=headers).status_code == 403
    assert serve.post("/webhooks/mailgun", b'{"event-data": {}}',
                      headers=headers).status_code == 401
    body = mailgun_body(sent[ANA], "failed")
    assert serve.post("/webhooks/mailgun", body, headers=headers).status_code == 200
    replay = serve.post("/webhooks/mailgun", body, headers=headers)
    assert replay.status_code == 403 and "replay" in replay.json()["error"]
    assert len(events(project)) == 1
