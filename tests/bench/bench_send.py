"""Bulk send throughput against Postfix's smtp-sink, next to Postfix's own smtp-source.

    python tests/bench/bench_send.py [--subscribers 20000] [--runs 3] [--no-dkim]
        [--memory-subscribers 1000000]

Needs Debian's postfix package (/usr/sbin/smtp-sink, /usr/sbin/smtp-source; the postfix
daemon itself can stay stopped). Prints messages per second of `newsletter send` (with
its ledger, 4 connections) and of `smtp-source -s 4` for the same message size, their
ratio; the same send DKIM-signed (RSA 2048) next to the unsigned one, in the same run
(target: at least 0.8 of it); and the peak memory of a dry run over a large list
(--memory-subscribers 0 skips it). With --runs N, each send runs N times, alternating,
and the medians are shown. Not part of the test run.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SINK, SOURCE = Path("/usr/sbin/smtp-sink"), Path("/usr/sbin/smtp-source")
MEASURED = """
import resource, sys
from newsletter.cli import cli
try:
    cli.main(args=sys.argv[1:], prog_name="newsletter", standalone_mode=False)
finally:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_project(folder: Path, subscribers: int, *, dkim: bool = False) -> None:
    shutil.copytree(REPO / "issues", folder / "issues")
    shutil.copy(REPO / "newsletter.toml", folder / "newsletter.toml")
    if dkim:
        write_dkim_key(folder / "dkim.private")
        with (folder / "newsletter.toml").open("a", encoding="utf-8") as config:
            config.write('\n[dkim]\nselector = "bench"\nkey_file = "dkim.private"\n')
    sys.path.insert(0, str(REPO))
    from newsletter.audience.store import NewRow, SubscriberStore

    def rows():  # type: ignore[no-untyped-def]
        for n in range(subscribers):
            address = f"reader{n}@example.org"
            yield NewRow(n + 1, address, address, f"Reader {n}", {"city": "Riga"})

    with SubscriberStore(folder / "newsletter.db") as store:
        store.merge(rows(), "members")


def write_dkim_key(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


@dataclass(frozen=True)
class Run:
    rate: float  # messages per second of the whole process
    cpu: float  # CPU seconds (user + system) of `newsletter send`, per message
    sink_cpu: float  # and of smtp-sink, which shares the machine's CPUs


def cpu_seconds(pid: int) -> float:
    """User + system time of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def send_rate(pristine: Path, port: int, subscribers: int, sink: int) -> Run:
    """One whole `newsletter send` process, in a fresh copy of a project."""
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary) / "project"
        shutil.copytree(pristine, folder)
        before, sink_before = resource.getrusage(resource.RUSAGE_CHILDREN), cpu_seconds(sink)
        elapsed, _ = newsletter(folder, "send", "issues/2020-01.yaml", "--list", "members",
                                "--yes", "--transport", f"smtp://127.0.0.1:{port}?tls=off")
        after, sink_after = resource.getrusage(resource.RUSAGE_CHILDREN), cpu_seconds(sink)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return Run(subscribers / elapsed, cpu / subscribers, (sink_after - sink_before) / subscribers)


def describe(runs: list[Run]) -> str:
    """The median rate, each run's, and where the CPU went: the machine's ceiling."""
    rate = statistics.median(r.rate for r in runs)
    cpu = statistics.median(r.cpu for r in runs)
    sink = statistics.median(r.sink_cpu for r in runs)
    ceiling = (os.cpu_count() or 1) / (cpu + sink)
    return (f"{rate:8.0f} msg/s  (median of {len(runs)}: "
            + ", ".join(f"{r.rate:.0f}" for r in runs) + ")\n"
            f"    CPU per message: newsletter {cpu * 1e6:.0f} us, smtp-sink {sink * 1e6:.0f} us; "
            f"all {os.cpu_count()} CPUs busy would give {ceiling:.0f} msg/s")


def newsletter(folder: Path, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    command = [sys.executable, "-m", "newsletter", *args]
    if args[0] == "--measure-memory":  # report the process's own peak RSS (KB) on stderr
        command = [sys.executable, "-c", MEASURED, *args[1:]]
    began = time.perf_counter()
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"newsletter {' '.join(args)} failed:\n{result.stderr}")
    return time.perf_counter() - began, result


def message_size(folder: Path) -> int:
    newsletter(folder, "send", "issues/2020-01.yaml", "--test", "--to", "r@example.org",
               "--to-file", str(folder / "sample"))
    return next((folder / "sample").glob("*.eml")).stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=1, help="sends of each kind (median)")
    parser.add_argument("--no-dkim", action="store_true", help="skip the DKIM-signed send")
    parser.add_argument("--memory-subscribers", type=int, default=1_000_000)
    args = parser.parse_args()
    if not (SINK.exists() and SOURCE.exists()):
        sys.exit("needs Postfix's smtp-sink and smtp-source: apt-get install postfix")
    port = free_port()
    sink = subprocess.Popen([str(SINK), "-u", "nobody", f"127.0.0.1:{port}", "1000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    plain_runs: list[Run] = []
    signed_runs: list[Run] = []
    try:
        with tempfile.TemporaryDirectory() as temporary:
            plain, signed = Path(temporary) / "plain", Path(temporary) / "signed"
            make_project(plain, args.subscribers)
            if not args.no_dkim:
                make_project(signed, args.subscribers, dkim=True)
            size = message_size(plain)
            for _ in range(args.runs):  # alternating, so that both see the same machine
                plain_runs.append(send_rate(plain, port, args.subscribers, sink.pid))
                if not args.no_dkim:
                    signed_runs.append(send_rate(signed, port, args.subscribers, sink.pid))
            began = time.perf_counter()
            subprocess.run([str(SOURCE), "-s", "4", "-m", str(args.subscribers), "-l",
                            str(size), f"127.0.0.1:{port}"], check=True)
            theirs = args.subscribers / (time.perf_counter() - began)
    finally:
        sink.terminate()
        sink.wait()
    ours = statistics.median(r.rate for r in plain_runs)
    print(f"message size: {size / 1000:.1f} KB; {args.subscribers} subscribers; "
          f"{os.cpu_count()} CPUs")
    print(f"newsletter send (ledger, 4 connections): {describe(plain_runs)}")
    print(f"smtp-source -s 4 (C, same size):          {theirs:8.0f} msg/s")
    print(f"ratio: {ours / theirs:.2f} (target 0.40 or better)")
    if signed_runs:
        ratio = statistics.median(r.rate for r in signed_runs) / ours
        print(f"newsletter send, DKIM-signed (RSA 2048): {describe(signed_runs)}")
        print(f"signed / unsigned: {ratio:.2f} (target 0.80 or better: "
              f"{'met' if ratio >= 0.8 else 'NOT MET'})")
    if not args.memory_subscribers:
        return

    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        make_project(folder, args.memory_subscribers)
        elapsed, result = newsletter(folder, "--measure-memory", "send", "issues/2020-01.yaml",
                                     "--list", "members", "--dry-run")
    peak = int(result.stderr.strip().splitlines()[-1])
    print(f"dry run over {args.memory_subscribers} subscribers: {elapsed:.1f} s, peak memory "
          f"{peak / 1024:.0f} MB (target under 150 MB)")
    print(result.stdout.strip().splitlines()[0])


if __name__ == "__main__":
    main()
