"""How long `check`'s rules take on the sample issue, the accessibility ones apart.

Run:  .venv/bin/python tests/bench/bench_check.py [--runs 50]

`check` runs after every compose: in `newsletter check`, before every send, and on every
save in the preview. Each run here lints a fresh copy of the HTML, so no cache helps.
Prints figures; not part of the test run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="lint runs (median)")
    args = parser.parse_args()

    from newsletter.compose.accessibility import check_accessibility
    from newsletter.compose.issue import load_issue
    from newsletter.compose.lint import check
    from newsletter.compose.render import compose
    from newsletter.config import load_settings

    settings = load_settings(REPO / "newsletter.toml", env={})
    composed = compose(load_issue(REPO / "issues" / "2020-01.yaml"), settings)

    def fresh(n: int):  # type: ignore[no-untyped-def]
        return replace(composed, html=composed.html + " " * n)  # a new string: no cache hit

    def median_ms(run) -> float:  # type: ignore[no-untyped-def]
        samples = []
        for n in range(1, args.runs + 1):
            copy = fresh(n)
            start = time.perf_counter()
            run(copy)
            samples.append((time.perf_counter() - start) * 1000)
        return statistics.median(samples)

    check(fresh(0), settings, "x")  # imports, compiled selectors
    whole = median_ms(lambda c: check(c, settings, "x"))
    accessibility = median_ms(lambda c: check_accessibility(c, "x"))
    print(f"check of the sample issue: {whole:.1f} ms (median of {args.runs}), of which "
          f"accessibility and contrast {accessibility:.1f} ms")


if __name__ == "__main__":
    main()
