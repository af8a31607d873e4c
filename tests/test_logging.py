"""One log for every command: -v shows the API requests with the key redacted, -q hides the
routine lines, and the core's log lines reach stderr with a timestamp."""

from __future__ import annotations

import re

from api_server import ApiServer
from test_api_transports import ENV, KEY, configure, subscribe

STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", re.M)


def test_verbose_shows_each_api_request_and_answer_without_the_key(project, cli) -> None:
    configure(project, reviewers=["Ana <ana@example.org>"])
    with ApiServer("postmark", KEY) as server:
        result = cli("-v", "send", "issues/2020-01.yaml", "--test", "--transport", server.url,
                     env=ENV)
    assert result.returncode == 0, result.stderr
    requests = [line for line in result.stderr.splitlines() if "POST http" in line]
    assert len(requests) == 1 and "/email/batch" in requests[0] and "ana@example.org" in \
        requests[0]
    assert any(re.search(r"(?i)postmark: answered 200", line) for line in
               result.stderr.splitlines())
    assert KEY not in result.stderr + result.stdout


def test_without_verbose_no_request_is_logged(project, cli) -> None:
    configure(project, reviewers=["ana@example.org"])
    with ApiServer("postmark", KEY) as server:
        result = cli("send", "issues/2020-01.yaml", "--test", "--transport", server.url,
                     env=ENV)
    assert result.returncode == 0, result.stderr
    assert "POST http" not in result.stderr


def test_quiet_keeps_the_summary_but_not_the_routine_log_lines(project, cli) -> None:
    subscribe(project, 3)
    loud = cli("send", "issues/2020-01.yaml", "--list", "members", "--yes", env=ENV)
    assert loud.returncode == 0, loud.stderr
    assert STAMP.search(loud.stderr), loud.stderr  # "2026-... Send 2020-01 ... via ..."
    (project / "newsletter.db").unlink()
    subscribe(project, 3)
    quiet = cli("-q", "send", "issues/2020-01.yaml", "--list", "members", "--yes", env=ENV)
    assert quiet.returncode == 0, quiet.stderr
    assert not STAMP.search(quiet.stderr), quiet.stderr
    assert "complete: this run sent 3" in quiet.stdout
