"""One-click unsubscribes per second through `newsletter serve`, on loopback.

    python tests/bench/bench_unsubscribe.py [--posts 2000] [--clients 8] [--threads 4]

Starts `newsletter serve` on a free 127.0.0.1 port over a fresh store of
`--subscribers` members (a third of them also on a second list), then POSTs
`List-Unsubscribe=One-Click` once per targeted subscriber from concurrent clients, each
with its own keep-alive connection. Prints the rate and the latency percentiles, then
checks the store: every target unsubscribed from `members`, no other row changed; exits 1
if not. tests/test_web.py runs the same check at 2,000 POSTs; this prints the figures.
"""

from __future__ import annotations

import argparse
import os
import re
import select
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]


def make_project(folder: Path, subscribers: int) -> list[int]:
    """A copy of the sample newsletter with `subscribers` members; their ids."""
    shutil.copytree(REPO / "issues", folder / "issues")
    shutil.copy(REPO / "newsletter.toml", folder / "newsletter.toml")
    sys.path.insert(0, str(REPO))
    from newsletter.audience.store import NewRow, SubscriberStore

    addresses = [f"reader{n}@example.org" for n in range(subscribers)]
    with SubscriberStore(folder / "newsletter.db") as store:
        store.merge((NewRow(n, a, a, f"Reader {n}", {}) for n, a in enumerate(addresses, 1)),
                    "members")
        store.merge((NewRow(n, a, a, "", {}) for n, a in enumerate(addresses[::3], 1)),
                    "partners")
        return [store.get(a).id for a in addresses]  # type: ignore[union-attr]


def tokens(folder: Path, ids: list[int]) -> list[str]:
    from newsletter.audience.tokens import signer_for
    from newsletter.config import load_settings

    signer = signer_for(load_settings(folder / "newsletter.toml", env={}))
    return [signer.unsubscribe_token(sid, "members") for sid in ids]


def rows(folder: Path) -> set[tuple]:  # type: ignore[type-arg]
    with sqlite3.connect(folder / "newsletter.db") as db:
        return set(db.execute("SELECT * FROM subscribers").fetchall()
                   + db.execute("SELECT * FROM memberships").fetchall())


def serve(folder: Path, threads: int) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    process = subprocess.Popen([sys.executable, "-m", "newsletter", "serve", "--port", "0",
                                "--threads", str(threads)], cwd=folder, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    ready, _, _ = select.select([process.stdout], [], [], 30)
    line = process.stdout.readline() if ready else ""  # type: ignore[union-attr]
    match = re.match(r"Serving on (\S+)", line)
    if not match:
        process.kill()
        sys.exit(f"newsletter serve did not start: {line!r}")
    return process, match[1]


def hammer(url: str, tokens: list[str], clients: int) -> tuple[float, list[float], list[str]]:
    """POST each token once from `clients` threads: seconds, latencies, failures."""
    latencies: list[float] = []
    failures: list[str] = []

    def client(share: list[str]) -> None:
        http = requests.Session()
        http.trust_env = False  # loopback, whatever proxy the environment names
        for token in share:
            began = time.perf_counter()
            answer = http.post(f"{url}unsubscribe/{token}",
                               data={"List-Unsubscribe": "One-Click"}, timeout=60)
            latencies.append(time.perf_counter() - began)
            if answer.status_code != 200:
                failures.append(f"{token}: {answer.status_code}")

    threads = [threading.Thread(target=client, args=(tokens[n::clients],))
               for n in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began, latencies, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--threads", type=int, default=4, help="of newsletter serve")
    parser.add_argument("--subscribers", type=int, default=2400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        ids = make_project(folder, max(args.subscribers, args.posts))
        targets = ids[:args.posts]
        before = rows(folder)
        process, url = serve(folder, args.threads)
        try:
            elapsed, latencies, failures = hammer(url, tokens(folder, targets), args.clients)
        finally:
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=10)
        with sqlite3.connect(folder / "newsletter.db") as db:
            unsubscribed = set(db.execute(
                "SELECT m.subscriber_id FROM memberships m JOIN lists l ON l.id = m.list_id "
                "WHERE m.status = 'unsubscribed' AND l.name = 'members'"))
            others = db.execute("SELECT count(*) FROM memberships m JOIN lists l ON "
                                "l.id = m.list_id WHERE m.status != 'active' AND "
                                "l.name != 'members'").fetchone()[0]
        changed = len(rows(folder) - before)
    ms = sorted(x * 1000 for x in latencies)
    print(f"{args.posts} one-click POSTs, {args.clients} clients, {args.threads} server "
          f"threads: {elapsed:.2f} s, {args.posts / elapsed:.0f} unsubscribes/s")
    print(f"latency ms: median {statistics.median(ms):.1f}, p95 {ms[int(len(ms) * .95)]:.1f}, "
          f"p99 {ms[int(len(ms) * .99)]:.1f}, max {ms[-1]:.1f}")
    lost = len(set(targets) - {sid for (sid,) in unsubscribed})
    print(f"errors {len(failures)}, lost updates {lost}, rows changed {changed} "
          f"(expected {len(targets)}), other lists changed {others}")
    if failures or lost or changed != len(targets) or others:
        sys.exit(1)


if __name__ == "__main__":
    main()
