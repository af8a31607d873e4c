"""How fast the sample issue builds, in process and as a command, next to Node's `mjml` CLI.

Run:  .venv/bin/python tests/bench/bench_compose.py [--runs 200] [--process-runs 15]
      [--mjml node_modules/.bin/mjml]

Targets: an in-process build under 40 ms; the whole `newsletter build` process at most 0.4
of the time of the reference `mjml` CLI (npm package mjml) alone rendering the same MJML;
`newsletter --help` and `newsletter status` under 150 ms. Process times are medians, the
build's of repeated builds of the unchanged issue (as when a user builds again), and once
with the build cache emptied before each run. The `mjml` CLI is looked for in --mjml,
$MJML_CLI, the PATH, then node_modules/.bin of the working folder and of the repository
(`npm install mjml@4` there). Prints figures; not part of the test run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ISSUE = "issues/2020-01.yaml"
IN_PROCESS_TARGET_MS = 40.0
RATIO_TARGET = 0.4
START_TARGET_MS = 150.0


def timed(run: Callable[[], object], times: int) -> list[float]:
    """Wall time of each of `times` calls, in milliseconds."""
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def find_mjml(given: str | None) -> Path | None:
    candidates = [given, os.environ.get("MJML_CLI"), shutil.which("mjml"),
                  Path.cwd() / "node_modules/.bin/mjml", REPO / "node_modules/.bin/mjml"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def newsletter_command() -> list[str]:
    """The installed `newsletter` script beside this Python, else `python -m newsletter`."""
    script = Path(sys.executable).parent / "newsletter"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "newsletter"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="in-process builds (median)")
    parser.add_argument("--process-runs", type=int, default=15, help="process runs (median)")
    parser.add_argument("--mjml", help="path of the Node mjml CLI")
    args = parser.parse_args()

    from newsletter.compose import render as composing
    from newsletter.compose.issue import load_issue
    from newsletter.compose.publish import write_build
    from newsletter.config import load_settings

    with tempfile.TemporaryDirectory(prefix="bench-compose-") as tmp:
        project = Path(tmp)
        shutil.copy(REPO / "newsletter.toml", project / "newsletter.toml")
        shutil.copytree(REPO / "issues", project / "issues")
        issue_path = project / ISSUE
        settings = load_settings(project / "newsletter.toml", env={})

        def build() -> object:
            composed = composing.compose(load_issue(issue_path), settings)
            return write_build(composed, settings, project / "out")

        first = timed(build, 1)[0]  # lazy imports of mjml, premailer, cssutils; template compile
        in_process = statistics.median(timed(build, args.runs))
        issue = load_issue(issue_path)
        composing.compose(issue, settings)
        html_kb = len((project / "out" / issue.slug / "email.html").read_bytes()) / 1000

        command = newsletter_command() + ["build", ISSUE, "-o", str(project / "cli-out")]
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
        cache = project / "cache"
        own_cache = dict(env, XDG_CACHE_HOME=str(cache))

        def run(arguments: list[str], **kwargs: object) -> Callable[[], object]:
            return lambda: subprocess.run(arguments, cwd=project, check=True,
                                          stdout=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload]

        def build_uncached() -> object:
            shutil.rmtree(cache, ignore_errors=True)
            return run(command, env=own_cache)()

        processes: dict[str, Callable[[], object]] = {
            "build": run(command, env=env), "uncached": build_uncached,
            "--help": run(newsletter_command() + ["--help"], env=env),
            "status": run(newsletter_command() + ["status", ISSUE], env=env)}

        # The MJML exactly as compose hands it to mjml-python.
        mjml_file = project / "issue.mjml"
        mjml_source = composing.mjml_source(issue, settings)
        mjml_file.write_text(mjml_source, encoding="utf-8")
        mjml_cli = find_mjml(args.mjml)
        node = shutil.which("node")
        node_line = ""
        if mjml_cli is None or node is None:
            missing = "Node" if node is None else "the mjml CLI (npm install mjml@4, or --mjml)"
            node_line = f"skipped: {missing} not found"
        else:
            processes["mjml"] = run([str(mjml_cli), str(mjml_file), "-o",
                                     str(project / "node.html")])
        # Interleaved, so that a burst of load elsewhere on the machine hits all alike.
        samples: dict[str, list[float]] = {name: [] for name in processes}
        for process in processes.values():
            process()  # warm the OS file cache, Jinja's bytecode cache, the build cache
        for _ in range(args.process_runs):
            for name, process in processes.items():
                samples[name] += timed(process, 1)
        median = {name: statistics.median(times) for name, times in samples.items()}
        whole, uncached, node_ms = median["build"], median["uncached"], median.get("mjml")
        if mjml_cli is not None and node is not None:
            versions = subprocess.run([str(mjml_cli), "--version"], capture_output=True,
                                      text=True).stdout.split()
            node_version = subprocess.run([node, "--version"], capture_output=True,
                                          text=True).stdout.strip()
            node_line = (f"{node_ms:8.1f} ms   (mjml {versions[-1] if versions else '?'}, "
                         f"Node {node_version}; median of {args.process_runs})")

    verdict = "met" if in_process < IN_PROCESS_TARGET_MS else "MISSED"
    print(f"sample issue {ISSUE}: email.html {html_kb:.1f} KB, {len(mjml_source) / 1000:.1f} KB "
          "of MJML")
    print(f"in-process build (load, compose, write)  {in_process:8.1f} ms   "
          f"(median of {args.runs}; first {first:.0f} ms; target < "
          f"{IN_PROCESS_TARGET_MS:.0f} ms: {verdict})")
    print(f"`newsletter build` whole process         {whole:8.1f} ms   "
          f"(median of {args.process_runs})")
    print(f"  the same, build cache emptied each time {uncached:8.1f} ms")
    for name in ("--help", "status"):
        ms = median[name]
        verdict = "met" if ms < START_TARGET_MS else "MISSED"
        print(f"`newsletter {name}`{' ' * (29 - len(name))}{ms:8.1f} ms   (median of "
              f"{args.process_runs}; target < {START_TARGET_MS:.0f} ms: {verdict})")
    print(f"Node `mjml` CLI, same MJML               {node_line}")
    if node_ms is not None:
        verdict = "met" if whole <= RATIO_TARGET * node_ms else "MISSED"
        print(f"whole `newsletter build` / `mjml` CLI alone: {whole / node_ms:.2f}x; "
              f"cache emptied: {uncached / node_ms:.2f}x (target <= {RATIO_TARGET}: {verdict})")


if __name__ == "__main__":
    main()
