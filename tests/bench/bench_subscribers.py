"""Benchmark: import N generated CSV rows into a fresh store, again, then stream them back.

    python tests/bench/bench_subscribers.py [--rows 1000000]

Each phase runs in its own process, so that its peak memory (ru_maxrss) is its own.
Targets: import >= 50,000 rows/s; streaming a 1M list peaks under 100 MB.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOMAINS = [f"example{i}.org" for i in range(2000)] + ["gmail.com", "outlook.fr", "efus.eu"]
CITIES = ["Paris", "Lyon", "Liège", "Bruxelles", "Torino", "Barcelona", "Köln", "Gdańsk"]


def generate(path: Path, rows: int) -> None:
    """A Mailchimp-style export: address, first and last name, two extra fields, noise."""
    with open(path, "w", newline="", encoding="utf-8-sig") as file:
        writer = csv.writer(file)
        writer.writerow(["Email Address", "First Name", "Last Name", "City", "Organisation",
                         "MEMBER_RATING", "OPTIN_TIME"])
        for i in range(rows):
            writer.writerow([f"Person.{i}@{DOMAINS[i % len(DOMAINS)]}", f"First{i}", f"Last{i}",
                             CITIES[i % len(CITIES)], f"Org {i % 997}", "2",
                             "2019-03-01 10:00:00"])


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def phase_import(db: Path, source: Path) -> dict[str, float]:
    from newsletter.audience.csvio import import_csv
    from newsletter.audience.store import SubscriberStore

    start = time.perf_counter()
    with SubscriberStore(db) as store:
        summary = import_csv(store, source, "members")
    elapsed = time.perf_counter() - start
    rows = summary.added + summary.updated + summary.unchanged
    return {"rows": rows, "seconds": elapsed, "peak_mb": peak_mb()}


def phase_stream(db: Path) -> dict[str, float]:
    from newsletter.audience.store import SubscriberStore

    start = time.perf_counter()
    with SubscriberStore(db) as store:
        count = sum(1 for _ in store.stream(["members"]))
    elapsed = time.perf_counter() - start
    return {"rows": count, "seconds": elapsed, "peak_mb": peak_mb()}


def run_phase(*args: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--phase", *args], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        name, db, source = args.phase
        result = phase_import(Path(db), Path(source)) if name == "import" else phase_stream(
            Path(db))
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as tmp:
        source, db = Path(tmp) / "members.csv", Path(tmp) / "newsletter.db"
        generate(source, args.rows)
        size = source.stat().st_size / 1e6
        print(f"{args.rows:,} rows generated ({size:.0f} MB CSV)")
        for name, phase in (("import", "import"), ("re-import (unchanged)", "import"),
                            ("stream", "stream")):
            result = run_phase(phase, str(db), str(source))
            rate = result["rows"] / result["seconds"]
            print(f"{name}: {result['rows']:,.0f} rows in {result['seconds']:.1f} s = "
                  f"{rate:,.0f} rows/s, peak memory {result['peak_mb']:.0f} MB")
        print(f"database: {db.stat().st_size / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
