"""Benchmark: recipients and requests per second handed to local mail-service API stand-ins.

    python tests/bench/bench_api.py [--subscribers 100000] [--providers sendgrid,mailgun]

For each provider format a stand-in (tests/api_server.py, which parses and checks every
request as in the tests) runs in its own process, so that it does not share the client's
GIL. Two figures per provider:

- transport: MessageFactory.personalise and transport.send for every subscriber, in
  batches of the provider's default size, from 4 threads with a transport each (as the
  dispatcher runs them); no ledger. The CPU seconds of client and server show which side
  limits the rate.
- newsletter send: the whole command as a process (ledger, journal, rate limiter,
  4 connections) over a project of the same number of subscribers.

Target: at least 10,000 recipients/s handed over for SendGrid and Mailgun (Postmark takes
every message whole, so it is bounded by bytes: about HTML size x recipients).
Not part of the test run.
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


class StandIn:
    """tests/api_server.py serving one provider in its own process."""

    def __init__(self, provider: str) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "api_server.py"), provider, "--port",
             str(self.port), "--key", KEY], stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.process.stdout.readline()  # "listening on ..."
        sys.path.insert(0, str(REPO / "tests"))
        from api_server import PROVIDERS

        url = PROVIDERS[provider].url(self.port)
        self.url = url + ("&" if "?" in url else "?") + "tls=off"

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait()


def through_transport(url: str, subscribers: int) -> dict[str, float]:
    from newsletter.audience.tokens import Signer
    from newsletter.compose.issue import load_issue
    from newsletter.compose.render import compose
    from newsletter.config import load_settings
    from newsletter.delivery.message import MessageFactory
    from newsletter.envelope import Recipient
    from newsletter.transports import Status, open_transport, transport_class

    settings = load_settings(REPO / "newsletter.toml", env={"NEWSLETTER_API_KEY": KEY})
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


def through_command(url: str, folder: Path) -> float:
    """Seconds of `newsletter send` as a process, start to exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(NEWSLETTER_API_KEY=KEY, NEWSLETTER_SECRET=SECRET)
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
    parser.add_argument("--providers", default="postmark,sendgrid,mailgun")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    n = args.subscribers
    print(f"python {sys.version.split()[0]}; {os.cpu_count()} CPUs; {n:,} subscribers; "
          f"{CONNECTIONS} connections; stand-in server in its own process")
    met = True
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        make_project(folder, n)
        for provider in args.providers.split(","):
            server = StandIn(provider)
            try:
                server_cpu = server.cpu()
                figures = through_transport(server.url, n)
                server_cpu = server.cpu() - server_cpu
                command = through_command(server.url, folder)
            finally:
                server.close()
            rate = n / figures["seconds"]
            ok = provider == "postmark" or rate >= TARGET
            met = met and ok
            print(f"{provider:9} transport: {rate:8,.0f} recipients/s, "
                  f"{figures['requests'] / figures['seconds']:6.1f} requests/s "
                  f"({figures['batch']:.0f} a request, {figures['request_mb']:.2f} MB each); "
                  f"CPU client {figures['client_cpu']:.1f} s, server {server_cpu:.1f} s "
                  f"in {figures['seconds']:.1f} s"
                  + ("" if provider == "postmark" else
                     f"; target {TARGET:,}/s {'met' if ok else 'NOT MET'}"))
            print(f"{'':9} newsletter send (ledger, whole process): {n / command:8,.0f} "
                  f"recipients/s ({command:.1f} s)")
            reset_ledger(folder)
    return 0 if met else 1


def reset_ledger(folder: Path) -> None:
    """Forget the send, keep the subscribers: the next provider sends the issue again."""
    import sqlite3

    with sqlite3.connect(folder / "newsletter.db") as db:
        db.execute("DELETE FROM deliveries")
        db.execute("DELETE FROM sends")


if __name__ == "__main__":
    sys.exit(main())
