"""How long `newsletter check` takes, and how much memory, on hostile issue files.

Run:  .venv/bin/python tests/bench/bench_hostile.py

Targets: each file refused in under 1 s and 100 MB (peak resident memory of the whole
process), with its file:line. An alias bomb of nine levels of nine aliases would expand to
387 million values; it is refused without being expanded. Prints figures; not part of the
test run.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def alias_bomb() -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\ndate: 2020-01-10\nsubject: Hi\nitems: *i\n"


FILES = {
    "alias bomb (9 x 9 aliases)": alias_bomb(),
    "deep nesting (100,000 [)": "date: 2020-01-10\nsubject: Hi\nitems: " + "[" * 100_000 + "\n",
    "python tags": "date: !!python/object/apply:os.system [echo]\nsubject: !!binary aGk=\n",
    "one megabyte of text": "date: 2020-01-10\nsubject: Hi\nintro: " + "x" * 999_000 + "\n",
}


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        shutil.copy(REPO / "newsletter.toml", project)
        (project / "issues").mkdir()
        for title, text in FILES.items():
            path = project / "issues" / "hostile.yaml"
            path.write_text(text, encoding="utf-8")
            started = time.perf_counter()
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            result = subprocess.run([sys.executable, "-m", "newsletter", "check", str(path)],
                                    cwd=project, capture_output=True, text=True, timeout=600)
            elapsed = time.perf_counter() - started
            peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
            first = (result.stderr.splitlines() or [""])[0][:90]
            print(f"{title:<28} exit {result.returncode}  {elapsed:5.2f} s  peak {peak:5.0f} MB"
                  f"  {first}")


if __name__ == "__main__":
    main()
