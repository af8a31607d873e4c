"""The preferences page every email links to, on a real `newsletter serve`."""

from __future__ import annotations

import re
from pathlib import Path

from test_signup import configure, footer_path
from test_web import (
    ISSUE,
    assert_plain_page,
    membership,
    received,
    send,
    signer,
    snapshot,
    start,
    store,
    subscribe,
)

from newsletter.audience import consent


def test_the_footer_link_of_every_email_opens_that_persons_preferences(project: Path) -> None:
    configure(project, None, languages=["en", "fr"])
    ana, _ = subscribe(project, "members", "ana@example.org", "ben@example.org")
    subscribe(project, "partners", "ana@example.org")
    sent = send(project, ISSUE, "sent-01")
    site = start(project)
    try:
        path = footer_path(sent["ana@example.org"])
        assert path != footer_path(sent["ben@example.org"])
        before = snapshot(project)
        page = site.get(path)
        assert_plain_page(page, 200)
        assert snapshot(project) == before  # a GET changes nothing
        assert "ana@example.org" in page.text and "ben@example.org" not in page.text
        assert re.search(r'name="list:members" value="1" checked', page.text)
        assert re.search(r'name="list:partners" value="1" checked', page.text)

        saved = site.post(path, {"action": "save", "list:members": "1", "language": "fr"})
        assert_plain_page(saved, 200)
        assert 'value="fr" selected' in saved.text  # and the page now speaks French
        assert "Enregistré." in saved.text and '<html lang="fr" dir="ltr">' in saved.text
        assert membership(project, "ana@example.org", "partners") == "unsubscribed"
        assert membership(project, "ana@example.org", "members") == "active"
        with store(project) as subscribers:
            assert subscribers.get("ana@example.org").fields == {"language": "fr"}  # type: ignore[union-attr]

        back = site.post(path, {"action": "save", "list:members": "1", "list:partners": "1"})
        assert back.status_code == 200
        assert membership(project, "ana@example.org", "partners") == "active"
        with store(project) as subscribers:
            records = consent.of_subscriber(subscribers.connection, ana)
        assert (records[-1].lists, records[-1].source) == (["partners"], "preferences page")
        assert records[-1].confirmed_at is not None

        gone = site.post(path, {"action": "unsubscribe"})
        assert_plain_page(gone, 200)
        assert "Votre désabonnement est enregistré" in gone.text
        with store(project) as subscribers:
            assert subscribers.get("ana@example.org").status == "unsubscribed"  # type: ignore[union-attr]
        after = site.get(path)
        assert "ne reçoit rien" in after.text and "formulaire d’inscription" in after.text
        site.post(path, {"action": "save", "list:members": "1"})
        with store(project) as subscribers:  # only the sign-up form brings them back
            assert subscribers.get("ana@example.org").status == "unsubscribed"  # type: ignore[union-attr]
        assert membership(project, "ben@example.org", "members") == "active"
    finally:
        site.stop()


def test_bad_test_and_empty_preference_links_change_nothing(project: Path, cli) -> None:  # type: ignore[no-untyped-def]
    (ana,) = subscribe(project, "members", "ana@example.org")
    result = cli("send", ISSUE, "--test", "--to", "ana@example.org", "--to-file", "review")
    assert result.returncode == 0, result.stderr
    test_path = footer_path(received(project / "review")["ana@example.org"])
    site = start(project)
    try:
        before = snapshot(project)
        token = signer(project).preferences_token(ana)
        assert_plain_page(site.post(f"/preferences/{token[:-3]}", {"action": "unsubscribe"}),
                          400)
        test_page = site.get(test_path)
        assert test_page.status_code == 200 and "test message" in test_page.text
        assert site.post(test_path, {"action": "unsubscribe"}).status_code == 200
        nobody = site.get("/preferences/")  # the link of the web version belongs to nobody
        assert nobody.status_code == 200 and "preferences link at the bottom" in nobody.text
        assert site.http.put(f"{site.url}preferences/{token}", timeout=10).status_code == 405
        assert snapshot(project) == before
    finally:
        site.stop()


def test_the_language_chosen_on_the_preferences_page_picks_that_subscribers_edition(
        project: Path) -> None:
    from newsletter.compose.issue import load_issue
    from newsletter.compose.render import compose
    from newsletter.config import load_settings
    from newsletter.delivery.editions import Editions
    from newsletter.envelope import Recipient

    configure(project, None, languages=["en", "fr"])
    subscribe(project, "members", "ana@example.org")
    sent = send(project, ISSUE, "sent-01")
    site = start(project)
    try:
        saved = site.post(footer_path(sent["ana@example.org"]),
                          {"action": "save", "list:members": "1", "language": "fr"})
        assert saved.status_code == 200
    finally:
        site.stop()
    (project / "issues" / "2020-01.fr.yaml").write_text(
        "subject: \"Lettre de l'Efus – janvier 2020\"\n", encoding="utf-8")
    settings = load_settings(project / "newsletter.toml", env={})
    editions = Editions(compose(load_issue(project / ISSUE), settings), settings,
                        lambda edition: None)  # type: ignore[arg-type,return-value]
    with store(project) as subscribers:
        ana = subscribers.get("ana@example.org")
    assert ana is not None
    assert editions.choose(Recipient(ana.id, ana.email, ana.name, "members", ana.fields)) == "fr"
