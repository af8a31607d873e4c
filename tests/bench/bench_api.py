"""Benchmark: recipients and requests per second handed to local mail-service API stand-ins.

    python tests/bench/bench_api.py [--subscribers 100000] [--providers sendgrid,mailgun,ses]
                                    [--ses-subscribers 10000] [--ses-rate 500]

For each provider format a stand-in (tests/api_server.py, or tests/ses_server.py for Amazon
SES, which parse and check every request as in the tests, SES's SigV4 signatures included)
runs in its own process, so that it does not share the client's GIL. Two figures per
provider:

- transport: MessageFactory.personalise and transport.send for every subscriber, in
  batches of the provider's default size, from 4 threads with a transport each (as the
  dispatcher runs them); no ledger. The CPU seconds of client and server show which side
  limits the rate.
- newsletter send: the whole command as a process (ledger, journal, rate limiter,
  4 connections) over a project of the same number of subscribers.

Target: at least 10,000 recipients/s handed over for SendGrid and Mailgun (Postmark takes
every message whole, so it is bounded by bytes: about HTML size x recipients). SES takes one
signed request per recipient, so it runs over fewer subscribers (--ses-subscribers), and
its stand-in advertises a MaxSendRate (--ses-rate) that `newsletter send` must keep to: the
line shows it beside the rate achieved. Not part of the test run.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench_send import make_project  # the same throwaway project and subscribers

REPO = Path(__file__).resolve().parents[2]
TARGET = 10_000
KEY = "bench-key-0123456789abcdef"
SECRET = "a-secret-for-the-benchmark-0123456789"
AWS = {"AWS_ACCESS_KEY_ID": "AKIDBENCHMARK0000000", "AWS_SECRET_ACCESS_KEY": KEY,
       "AWS_SESSION_TOKEN": ""}
CONNECTIONS = 4
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def credentials(provider: str) -> dict[str, str]:
    """The environment a transport of `provider` reads its secret from."""
    return AWS if provider == "ses" else {"NEWSLETTER_API_KEY": KEY}


class StandIn:
    """tests/api_server.py (or tests/ses_server.py) serving one provider in its own process."""

    def __init__(self, provider: str, ses_rate: float) -> None:
        self.port = free_port()
        command = [sys.executable, str(REPO / "tests" / "api_server.py"), provider, "--port",
                   str(self.port), "--key", KEY]
        if provider == "ses":
            command = [sys.executable, str(REPO / "tests" / "ses_server.py"), "--port",
                       str(self.port), "--access-key", AWS["AWS_ACCESS_KEY_ID"],
                       "--secret-key", KEY, "--max-send-rate", str(ses_rate)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.process.stdout.readline()  # "listening on ..."
        sys.path.insert(0, str(REPO / "tests"))
        from api_server import PROVIDERS

        url = f"ses://eu-west-1?endpoint=127.0.0.1:{self.port}" if provider == "ses" else \
            PROVIDERS[provider].url(self.port)
        self.url = url + ("&" if "?" in url else "?") + "tls=off"

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait()


def through_transport(url: str, subscribers: int, env: dict[str, str]) -> dict[str, float]:
    from newsletter.audience.tokens import Signer
    from newsletter.compose.issue import load_issue
    from newsletter.compose.render import compose
    from newsletter.config import load_settings
    from newsletter.delivery.message import MessageFactory
    from newsletter.envelope import Recipient
    from newsletter.transports import Status, open_transport, transport_class

    settings = load_settings(REPO / "newsletter.toml", env=env)
    composed = compose(load_issue(REPO / "issues" / "2020-01.yaml"), settings)
    factory = MessageFactory(composed, settings, Signer(SECRET.encode()), send_key="bench")
    size = transport_class(url).default_batch
    starts = iter(range(0, subscribers, size))
    lock = threading.Lock()
    requests = 0

    def work() -> None:
        nonlocal requests
        with open_transport(url, settings) as transport:
            while True:
                with lock:
                    start = next(starts, None)
                if start is None:
                    return
                batch = [factory.personalise(Recipient(n + 1, f"reader{n}@example.org",
                                                       f"Reader {n}", "members",
                                                       {"city": "Riga"}))
                         for n in range(start, min(start + size, subscribers))]
                results = transport.send(batch)
                assert all(r.status is Status.SENT for r in results), results[0]
                with lock:
                    requests += 1

    with open_transport(url, settings) as transport:  # the size of one full request
        one = [factory.personalise(Recipient(n + 1, f"reader{n}@example.org", f"Reader {n}",
                                             "members", {"city": "Riga"}))
               for n in range(size)]
        request_bytes = len(transport.build_request(one).body)  # type: ignore[attr-defined]
    threads = [threading.Thread(target=work) for _ in range(CONNECTIONS)]
    cpu, began = time.process_time(), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return {"seconds": elapsed, "requests": requests, "batch": size,
            "request_mb": request_bytes / 1e6, "client_cpu": time.process_time() - cpu}


def through_command(url: str, folder: Path, secrets: dict[str, str]) -> float:
    """Seconds of `newsletter send` as a process, start to exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(secrets, NEWSLETTER_SECRET=SECRET)
    began = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "newsletter", "send", "issues/2020-01.yaml",
                             "--list", "members", "--yes", "--transport", url], cwd=folder,
                            env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"newsletter send failed:\n{result.stderr}")
    return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--providers", default="postmark,sendgrid,mailgun,ses")
    parser.add_argument("--ses-subscribers", type=int, default=10_000)
    parser.add_argument("--ses-rate", type=float, default=500.0,
                        help="the MaxSendRate the SES stand-in advertises")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    print(f"python {sys.version.split()[0]}; {os.cpu_count()} CPUs; {args.subscribers:,} "
          f"subscribers ({args.ses_subscribers:,} for SES); {CONNECTIONS} connections; "
          "stand-in server in its own process")
    met = True
    with tempfile.TemporaryDirectory() as temporary:
        folders: dict[int, Path] = {}
        for provider in args.providers.split(","):
            n = min(args.subscribers, args.ses_subscribers) if provider == "ses" \
                else args.subscribers
            if n not in folders:
                folders[n] = Path(temporary) / str(n)
                folders[n].mkdir()
                make_project(folders[n], n)
            server = StandIn(provider, args.ses_rate)
            try:
                server_cpu = server.cpu()
                figures = through_transport(server.url, n, credentials(provider))
                server_cpu = server.cpu() - server_cpu
                command = through_command(server.url, folders[n], credentials(provider))
            finally:
                server.close()
            rate = n / figures["seconds"]
            ok = provider in ("postmark", "ses") or rate >= TARGET
            met = met and ok
            print(f"{provider:9} transport: {rate:8,.0f} recipients/s, "
                  f"{figures['requests'] / figures['seconds']:6.1f} requests/s "
                  f"({figures['batch']:.0f} a request, {figures['request_mb']:.2f} MB each); "
                  f"CPU client {figures['client_cpu']:.1f} s, server {server_cpu:.1f} s "
                  f"in {figures['seconds']:.1f} s"
                  + ("" if provider in ("postmark", "ses") else
                     f"; target {TARGET:,}/s {'met' if ok else 'NOT MET'}"))
            limit = f"; the stand-in's MaxSendRate {args.ses_rate:,.0f}/s" \
                if provider == "ses" else ""
            print(f"{'':9} newsletter send (ledger, whole process): {n / command:8,.0f} "
                  f"recipients/s ({command:.1f} s){limit}")
            reset_ledger(folders[n])
    return 0 if met else 1


def reset_ledger(folder: Path) -> None:
    """Forget the send, keep the subscribers: the next provider sends the issue again."""
    import sqlite3

    with sqlite3.connect(folder / "newsletter.db") as db:
        db.execute("DELETE FROM deliveries")
        db.execute("DELETE FROM sends")


if __name__ == "__main__":
    sys.exit(main())
