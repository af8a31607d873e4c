"""Sign-ups under load on loopback: nothing lost, nothing twice, and a flood mails its victim once.

Pass/fail tests: the rate is printed (pytest -s shows it), never asserted.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from smtp_server import SmtpServer
from test_signup import configure, mails
from test_web import Site, start

CLIENTS = 8


@pytest.fixture
def loaded(project: Path) -> Iterator[tuple[Site, SmtpServer]]:
    with SmtpServer() as smtp:
        configure(project, smtp, per_client_per_hour=0)  # every client is 127.0.0.1 here
        site = start(project, "--threads", str(CLIENTS))
        try:
            yield site, smtp
        finally:
            site.stop()


def hammer(site: Site, count: int, fields: Callable[[int], dict[str, str]]) -> float:
    """POST /subscribe `count` times from CLIENTS threads; the seconds it took."""
    token = re.search(r'name="form_token" value="([^"]+)"',
                      site.get("/subscribe").text)[1]  # type: ignore[index]
    failures: list[str] = []

    def client(numbers: range) -> None:
        http = requests.Session()
        http.trust_env = False
        for n in numbers:
            answer = http.post(site.url + "subscribe", data={"form_token": token, **fields(n)},
                               timeout=30)
            if answer.status_code != 200 or "Please check your inbox" not in answer.text:
                failures.append(f"{n}: {answer.status_code}")

    threads = [threading.Thread(target=client, args=(range(k, count, CLIENTS),))
               for k in range(CLIENTS)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    assert failures == []
    return elapsed


def rows(project: Path, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    with sqlite3.connect(project / "newsletter.db") as db:
        return db.execute(sql).fetchall()


def test_1000_sign_ups_from_8_clients_each_get_one_confirmation(
        project: Path, loaded: tuple[Site, SmtpServer]) -> None:
    site, smtp = loaded
    addresses = [f"reader{n:04}@example.org" for n in range(1000)]
    elapsed = hammer(site, len(addresses), lambda n: {
        "email": addresses[n], "name": f"Reader {n}", "list:members": "1"})
    print(f"\n{len(addresses)} sign-ups from {CLIENTS} clients in {elapsed:.2f} s "
          f"({len(addresses) / elapsed:.0f} sign-ups/s, each with its confirmation mail)")
    recipients = [m.rcpt_tos[0] for m in smtp.accepted]
    assert sorted(recipients) == addresses  # every one once: none lost, none twice
    assert sorted(m["To"].addresses[0].addr_spec for m in mails(smtp)) == addresses
    assert rows(project, "SELECT count(*), count(DISTINCT key) FROM subscribers "
                         "WHERE status = 'pending'") == [(1000, 1000)]
    assert rows(project, "SELECT count(*), count(DISTINCT subscriber_id) FROM consents") == [
        (1000, 1000)]
    assert rows(project, "SELECT count(*) FROM signup_mails") == [(1000,)]


def test_a_flood_of_10000_posts_naming_one_victim_mails_them_once(
        project: Path, loaded: tuple[Site, SmtpServer]) -> None:
    site, smtp = loaded
    elapsed = hammer(site, 10_000, lambda n: {"email": "victim@example.org",
                                              "list:members": "1"})
    print(f"\n10000 sign-up POSTs naming one address in {elapsed:.2f} s "
          f"({10_000 / elapsed:.0f}/s)")
    assert [m.rcpt_tos for m in smtp.accepted] == [["victim@example.org"]]
    assert rows(project, "SELECT count(*) FROM subscribers") == [(1,)]
    assert rows(project, "SELECT count(*) FROM consents") == [(1,)]
