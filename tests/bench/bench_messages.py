"""Benchmark: personalised messages built per second, CPU only (no network, no disk).

    python tests/bench/bench_messages.py [--recipients 100000] [--dkim 5000] [--ed25519]

Composes the sample issue once, then builds the complete wire bytes of one message per
recipient with MessageFactory.personalise (headers, signed unsubscribe token, stable
Message-ID, both quoted-printable parts). With --dkim N, also builds N messages signed with
a 2048-bit RSA key (OpenSSL), and with --ed25519 a second, Ed25519 signature on each.
Rates are per second of this process's CPU time, on one core (the machine may be busy
with other work); the wall-clock time is shown beside them.
Then the same through an issue with a French edition, each recipient's edition chosen
from their language. Targets: at least 20,000 messages per second without DKIM, 3,000 with it.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGET = 20_000
DKIM_TARGET = 3_000
NAMES = ["Jeanne Dupont", "Zoë Müller", "Łukasz Żółć", "Anne-Marie O'Neil", "李小龙", "",
         "Dupont, Jean-Rémi", "Maximiliane Oberholzer-Lindqvist", "Ole & Kari <Nordmann>"]


LANGUAGES = [{"language": "fr"}, {"language": "en"}, {}, {"language": "fr-BE"}, {"language": "x"}]


def recipients(count: int, languages: bool = False):  # type: ignore[no-untyped-def]
    from newsletter.envelope import Recipient

    for i in range(count):
        yield Recipient(i + 1, f"person.{i}@example{i % 2000}.org", NAMES[i % len(NAMES)],
                        "members", LANGUAGES[i % len(LANGUAGES)] if languages else {})


def build(factory, count: int, languages: bool = False) -> tuple[float, int, float]:  # type: ignore[no-untyped-def]
    """CPU seconds to build `count` messages, their total size in bytes, wall seconds."""
    size = 0
    start, wall = time.process_time(), time.perf_counter()
    for recipient in recipients(count, languages):
        size += len(factory.personalise(recipient).data)
    return time.process_time() - start, size, time.perf_counter() - wall


def dkim_key(folder: Path, kind: str = "rsa") -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "rsa" \
        else ed25519.Ed25519PrivateKey.generate()
    path = folder / f"bench-{kind}.private"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="best of N runs")
    parser.add_argument("--dkim", type=int, default=5000, metavar="N",
                        help="messages to sign with DKIM (0: skip)")
    parser.add_argument("--ed25519", action="store_true",
                        help="add a second, Ed25519 signature to the DKIM-signed messages")
    args = parser.parse_args()

    from newsletter.audience.tokens import Signer
    from newsletter.compose.issue import load_issue
    from newsletter.compose.render import compose
    from newsletter.config import load_settings
    from newsletter.delivery.message import MessageFactory
    from newsletter.delivery.signing import DkimKey, DkimSigner

    settings = load_settings(REPO / "newsletter.toml", env={})
    start = time.perf_counter()
    composed = compose(load_issue(REPO / "issues" / "2020-01.yaml"), settings)
    composed_in = time.perf_counter() - start
    signer = Signer(b"a-secret-for-the-benchmark-0123456789")

    start = time.perf_counter()
    factory = MessageFactory(composed, settings, signer, send_key="bench")
    prepared_in = time.perf_counter() - start
    print(f"python {sys.version.split()[0]}; sample issue composed in {composed_in:.2f} s, "
          f"message factory prepared in {prepared_in * 1000:.1f} ms")

    runs = [build(factory, args.recipients) for _ in range(args.runs)]
    best, size, wall = min(runs)
    rate = args.recipients / best
    print(f"without DKIM: {args.recipients:,} messages in {best:.2f} s of CPU (best of "
          f"{args.runs}; median {statistics.median(r[0] for r in runs):.2f} s; wall {wall:.2f} s)"
          f" = {rate:,.0f} messages/s, {best / args.recipients * 1e6:.1f} us each, "
          f"{size / args.recipients / 1000:.1f} KB each; target {TARGET:,}/s: "
          f"{'met' if rate >= TARGET else 'NOT MET'}")
    editions_rate(settings, signer, args.recipients, args.runs, best)
    if not args.dkim:
        return 0 if rate >= TARGET else 1

    with tempfile.TemporaryDirectory() as folder:
        keys = [DkimKey.load("bench", dkim_key(Path(folder)), "key")]
        if args.ed25519:
            keys.append(DkimKey.load("bench-ed", dkim_key(Path(folder), "ed25519"), "key"))
        dkim = DkimSigner(settings.sender_domain, keys)
        signed = MessageFactory(composed, settings, signer, send_key="bench", dkim=dkim)
        runs = [build(signed, args.dkim) for _ in range(args.runs)]
    best, _, wall = min(runs)
    dkim_rate = args.dkim / best
    kind = "RSA 2048 and Ed25519" if args.ed25519 else "RSA 2048"
    print(f"with DKIM ({kind}, relaxed/relaxed): {args.dkim:,} messages in {best:.2f} s of "
          f"CPU (best of {args.runs}; median {statistics.median(r[0] for r in runs):.2f} s; "
          f"wall {wall:.2f} s) = {dkim_rate:,.0f} messages/s, {best / args.dkim * 1e6:.0f} us "
          f"each; target {DKIM_TARGET:,}/s: {'met' if dkim_rate >= DKIM_TARGET else 'NOT MET'}")
    ceiling(keys[0], size // args.recipients, dkim_rate)
    return 0 if rate >= TARGET and dkim_rate >= DKIM_TARGET else 1


def ceiling(key, size: int, dkim_rate: float) -> None:  # type: ignore[no-untyped-def]
    """What one core can do at best: OpenSSL's RSA signature and the body's SHA-256 alone."""
    import hashlib

    digest, body, count = hashlib.sha256(b"headers"), b"x" * size, 2000
    start = time.process_time()
    for _ in range(count):
        key.sign(digest)
    sign = (time.process_time() - start) / count
    start = time.process_time()
    for _ in range(count):
        hashlib.sha256(body).digest()
    hashed = (time.process_time() - start) / count
    print(f"one core's ceiling: an RSA 2048 signature alone {sign * 1e6:.0f} us "
          f"({1 / sign:,.0f}/s), with the body's SHA-256 {(sign + hashed) * 1e6:.0f} us "
          f"({1 / (sign + hashed):,.0f}/s); signed messages built at "
          f"{dkim_rate * (sign + hashed):.0%} of it")


def editions_rate(settings, signer, count: int, runs: int, best: float) -> None:  # type: ignore[no-untyped-def]
    from newsletter.compose.issue import load_issue
    from newsletter.compose.render import compose
    from newsletter.delivery.editions import Editions
    from newsletter.delivery.message import MessageFactory

    with tempfile.TemporaryDirectory() as folder:
        issues = Path(folder) / "issues"
        shutil.copytree(REPO / "issues", issues)
        (issues / "2020-01.fr.yaml").write_text(
            'subject: "Lettre de l\'Efus – janvier 2020"\nintro: Bonne année !\n',
            encoding="utf-8")
        two = compose(load_issue(issues / "2020-01.yaml"), settings)
        editions = Editions(two, settings,
                            lambda edition: MessageFactory(edition, settings, signer,
                                                           send_key="bench"))
        timings = [build(editions, count, languages=True) for _ in range(runs)]
    seconds = min(timings)[0]
    print(f"two editions (en, fr), each recipient's chosen from their language: "
          f"{count / seconds:,.0f} messages/s, {seconds / count * 1e6:.1f} us each "
          f"({(seconds - best) / count * 1e6:+.1f} us)")


if __name__ == "__main__":
    sys.exit(main())
