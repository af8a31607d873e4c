"""Bounces and complaints taken in per second: DSNs parsed and recorded, webhook events
through `newsletter serve` from concurrent clients.

    python tests/bench/bench_bounces.py [--subscribers 20000] [--dsns 5000] [--events 4000]
                                        [--clients 8]

Makes a throwaway project with a recorded send to `--subscribers` members and a return
path, then:
1. parses and records `--dsns` reports (Postfix, Exim, Exchange and Gmail DSNs and Yahoo
   ARF complaints, one subscriber each), as `bounces receive` and `bounces fetch` do,
   through one Intake: the rate, and a check that every one became an event;
2. starts `newsletter serve --threads 8` and POSTs `--events` signed Mailgun events (one
   event a request, HMAC and replay check on each) from `--clients` clients with their
   own keep-alive connections, then the same number of SendGrid events in signed batches
   of 100: events per second, and a check that none was lost.
Targets: 2,000 DSNs a second, 1,000 webhook events a second. Exits 1 if an event is lost.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

MAILGUN_KEY = "key-bench-mailgun-signing-0123456789"


def make_project(folder: Path, subscribers: int) -> dict[str, object]:
    import sends

    from newsletter.audience.store import NewRow, SubscriberStore

    shutil.copytree(REPO / "issues", folder / "issues")
    shutil.copy(REPO / "newsletter.toml", folder / "newsletter.toml")
    addresses = [f"reader{n}@example.net" for n in range(subscribers)]
    with SubscriberStore(folder / "newsletter.db") as store:
        store.merge((NewRow(n, a, a, f"Reader {n}", {}) for n, a in enumerate(addresses, 1)),
                    "members")
    return {"settings": sends.configure(folder, sendgrid_public_key=public_key()),
            "sent": sends.record_send(folder, "2020-01"), "addresses": addresses}


def dsns(world: dict[str, object], count: int) -> list[bytes]:
    import reports
    import sends

    shapes = (reports.postfix_dsn, reports.exim_dsn, reports.exchange_ndr, reports.gmail_dsn)
    out = []
    body = ("<p>" + "The General Assembly will be held on 26-27 March in Riga. " * 12
            + "</p>\r\n") * 70  # about the 55 KB of a real issue, which DSNs often return
    for n, address in enumerate(world["addresses"][:count]):  # type: ignore[index]
        one = world["sent"][address]  # type: ignore[index]
        original = sends.original(one) + body.encode()
        if n % 10 == 9:
            out.append(reports.yahoo_arf(original, address, one.return_path))
        else:
            out.append(shapes[n % 4](original, address, one.return_path))
    return out


def bench_dsns(world: dict[str, object], data: list[bytes], folder: Path) -> bool:
    from newsletter.inbound.intake import Intake
    from newsletter.inbound.parse import parse_message
    from newsletter.states import Disposition, EventSource

    started, cpu = time.perf_counter(), time.process_time()
    recorded = 0
    with Intake(world["settings"]) as intake:  # type: ignore[arg-type]
        for message in data:
            verdicts = intake.record(parse_message(message, EventSource.PIPE))
            recorded += sum(v.disposition is Disposition.RECORDED for v in verdicts)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    stored = count_events(folder)
    print(f"DSNs: {len(data)} parsed and recorded in {elapsed:.2f} s: "
          f"{len(data) / elapsed:,.0f}/s (target 2,000/s; {len(data) / cpu:,.0f} per CPU "
          f"second, {os.getloadavg()[0]:.1f} load average); {stored} events stored")
    return recorded == len(data) == stored


def public_key() -> str:
    from cryptography.hazmat.primitives import serialization

    der = SENDGRID_KEY.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def mailgun_event(sent: object, n: int) -> bytes:
    stamp = str(int(time.time()))
    token = hashlib.sha256(f"bench-{n}".encode()).hexdigest()[:50]
    return json.dumps({"signature": {
        "timestamp": stamp, "token": token,
        "signature": hmac.new(MAILGUN_KEY.encode(), (stamp + token).encode(),
                              hashlib.sha256).hexdigest()},
        "event-data": {"event": "failed", "severity": "permanent", "reason": "bounce",
                       "id": f"bench-{n}", "timestamp": time.time(),
                       "recipient": sent.email,  # type: ignore[attr-defined]
                       "user-variables": {"nl_delivery": sent.token},  # type: ignore[attr-defined]
                       "delivery-status": {"code": 550, "message": "5.1.1 no such user"}}}
    ).encode()


def sendgrid_batch(sents: list[object], first: int) -> tuple[bytes, dict[str, str]]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    body = json.dumps([{"email": s.email, "timestamp": int(time.time()), "event": "bounce",  # type: ignore[attr-defined]
                        "type": "bounce", "status": "5.2.2", "reason": "552 5.2.2 full",
                        "sg_event_id": f"bench-{first + n}", "nl_delivery": s.token}  # type: ignore[attr-defined]
                       for n, s in enumerate(sents)]).encode()
    stamp = str(int(time.time()))
    signature = SENDGRID_KEY.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return body, {"Content-Type": "application/json",
                  "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                  "X-Twilio-Email-Event-Webhook-Timestamp": stamp}


def start_serve(folder: Path) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env["NEWSLETTER_MAILGUN_WEBHOOK_KEY"] = MAILGUN_KEY
    process = subprocess.Popen([sys.executable, "-m", "newsletter", "-q", "serve", "--port", "0",
                                "--threads", "8"], cwd=folder, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    ready, _, _ = select.select([process.stdout], [], [], 30)
    line = process.stdout.readline() if ready else ""  # type: ignore[union-attr]
    match = re.match(r"Serving on (http://127\.0\.0\.1:\d+)/", line)
    if not match:
        process.kill()
        raise SystemExit(f"serve did not start: {line!r}")
    return process, match[1]


def post_all(url: str, requests_to_send: list[tuple[bytes, dict[str, str]]], clients: int,
             events_each: int) -> tuple[float, list[int]]:
    failures: list[int] = []
    lock = threading.Lock()

    def client(share: list[tuple[bytes, dict[str, str]]]) -> None:
        http = requests.Session()
        http.trust_env = False
        for body, headers in share:
            answer = http.post(url, data=body, headers=headers, timeout=30)
            if answer.status_code != 200 or answer.json()["recorded"] != events_each:
                with lock:
                    failures.append(answer.status_code)
        http.close()

    threads = [threading.Thread(target=client, args=(requests_to_send[n::clients],))
               for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, failures


def count_events(folder: Path) -> int:
    with sqlite3.connect(folder / "newsletter.db") as db:
        return db.execute("SELECT count(*) FROM delivery_events").fetchone()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--dsns", type=int, default=5_000)
    parser.add_argument("--events", type=int, default=4_000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    if args.dsns + 2 * args.events > args.subscribers:
        raise SystemExit("--subscribers must be at least --dsns + 2 * --events")
    folder = Path(tempfile.mkdtemp(prefix="bench-bounces-"))
    ok = True
    try:
        world = make_project(folder, args.subscribers)
        ok &= bench_dsns(world, dsns(world, args.dsns), folder)
        addresses = world["addresses"]
        sent = world["sent"]
        mailgun = [(mailgun_event(sent[a], n), {"Content-Type": "application/json"})  # type: ignore[index]
                   for n, a in enumerate(addresses[args.dsns:args.dsns + args.events])]  # type: ignore[index]
        rest = [sent[a] for a in addresses[args.dsns + args.events:  # type: ignore[index]
                                           args.dsns + 2 * args.events]]  # type: ignore[index]
        sendgrid = [sendgrid_batch(rest[n:n + 100], n) for n in range(0, len(rest), 100)]
        process, url = start_serve(folder)
        try:
            before = count_events(folder)
            elapsed, failures = post_all(url + "/webhooks/mailgun", mailgun, args.clients, 1)
            stored = count_events(folder) - before
            print(f"Mailgun webhook, one signed event a request, {args.clients} clients: "
                  f"{len(mailgun)} in {elapsed:.2f} s: {len(mailgun) / elapsed:,.0f} events/s "
                  f"(target 1,000/s); {stored} stored, {len(failures)} failed requests")
            ok &= stored == len(mailgun) and not failures
            before = count_events(folder)
            elapsed, failures = post_all(url + "/webhooks/sendgrid", sendgrid, args.clients, 100)
            stored = count_events(folder) - before
            print(f"SendGrid webhook, signed batches of 100, {args.clients} clients: "
                  f"{len(rest)} events in {elapsed:.2f} s: {len(rest) / elapsed:,.0f} events/s; "
                  f"{stored} stored, {len(failures)} failed requests")
            ok &= stored == len(rest) and not failures
        finally:
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=20)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print("no event lost" if ok else "EVENTS LOST")
    return 0 if ok else 1


def _key():  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


SENDGRID_KEY = _key()

if __name__ == "__main__":
    sys.exit(main())
