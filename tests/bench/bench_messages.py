"""Benchmark: personalised messages built per second, CPU only (no network, no disk).

    python tests/bench/bench_messages.py [--recipients 100000] [--dkim 500]

Composes the sample issue once, then builds the complete wire bytes of one message per
recipient with MessageFactory.personalise (headers, signed unsubscribe token, stable
Message-ID, both quoted-printable parts). With --dkim N, also signs N messages with a
2048-bit RSA key (dkimpy), which costs far more than building them. Then the same through
an issue with a French edition, each recipient's edition chosen from their language.
Target: at least 20,000 messages per second without DKIM.
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
NAMES = ["Jeanne Dupont", "Zoë Müller", "Łukasz Żółć", "Anne-Marie O'Neil", "李小龙", "",
         "Dupont, Jean-Rémi", "Maximiliane Oberholzer-Lindqvist", "Ole & Kari <Nordmann>"]


LANGUAGES = [{"language": "fr"}, {"language": "en"}, {}, {"language": "fr-BE"}, {"language": "x"}]


def recipients(count: int, languages: bool = False):  # type: ignore[no-untyped-def]
    from newsletter.envelope import Recipient

    for i in range(count):
        yield Recipient(i + 1, f"person.{i}@example{i % 2000}.org", NAMES[i % len(NAMES)],
                        "members", LANGUAGES[i % len(LANGUAGES)] if languages else {})


def build(factory, count: int, languages: bool = False) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    """Seconds to build `count` messages, and their total size in bytes."""
    size = 0
    start = time.perf_counter()
    for recipient in recipients(count, languages):
        size += len(factory.personalise(recipient).data)
    return time.perf_counter() - start, size


def dkim_key(folder: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = folder / "bench.private"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="best of N runs")
    parser.add_argument("--dkim", type=int, default=500, metavar="N",
                        help="messages to sign with DKIM (0: skip)")
    args = parser.parse_args()

    from newsletter.audience.tokens import Signer
    from newsletter.compose.issue import load_issue
    from newsletter.compose.render import compose
    from newsletter.config import load_settings
    from newsletter.delivery.message import MessageFactory
    from newsletter.delivery.signing import DkimSigner

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
    best, size = min(runs)
    rate = args.recipients / best
    print(f"without DKIM: {args.recipients:,} messages in {best:.2f} s (best of {args.runs}; "
          f"median {statistics.median(r[0] for r in runs):.2f} s) = {rate:,.0f} messages/s, "
          f"{best / args.recipients * 1e6:.1f} us each, {size / args.recipients / 1000:.1f} KB "
          f"each; target {TARGET:,}/s: {'met' if rate >= TARGET else 'NOT MET'}")

    if args.dkim:
        with tempfile.TemporaryDirectory() as folder:
            dkim = DkimSigner("bench", settings.sender_domain, dkim_key(Path(folder)))
            signed = MessageFactory(composed, settings, signer, send_key="bench", dkim=dkim)
            seconds, _ = build(signed, args.dkim)
        print(f"with DKIM (RSA 2048, relaxed/relaxed): {args.dkim:,} messages in "
              f"{seconds:.2f} s = {args.dkim / seconds:,.0f} messages/s, "
              f"{seconds / args.dkim * 1e6:.0f} us each")

    from newsletter.delivery.editions import Editions

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
        runs = [build(editions, args.recipients, languages=True) for _ in range(args.runs)]
    seconds, _ = min(runs)
    print(f"two editions (en, fr), each recipient's chosen from their language: "
          f"{args.recipients / seconds:,.0f} messages/s, {seconds / args.recipients * 1e6:.1f} "
          f"us each ({(seconds - best) / args.recipients * 1e6:+.1f} us)")
    return 0 if rate >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
