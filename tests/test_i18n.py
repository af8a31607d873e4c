"""The theme's own words, dates and numbers in the newsletter's language.

The catalogs are checked against what Babel's extractor finds in the templates today, so a
string added to a template without its translations fails here, in every language.
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from newsletter.audience.store import NewRow, SubscriberStore, address_key
from newsletter.audience.tokens import signer_for
from newsletter.compose import i18n
from newsletter.compose.issue import load_issue
from newsletter.compose.publish import web_html
from newsletter.compose.render import compose
from newsletter.config import load_settings
from newsletter.web.app import WebApp
from newsletter.web.archive import Archive

REPO = Path(__file__).resolve().parent.parent
LOCALE = REPO / "templates" / "locale"
LANGUAGES = ("en", "fr", "de", "es", "it", "nl", "ar")  # ar: a right-to-left edition


def extracted() -> set[str]:
    """Every string the templates and the web pages mark, as `pybabel extract` finds it."""
    with (REPO / "babel.cfg").open(encoding="utf-8") as config:
        method_map, options_map = parse_mapping_cfg(config)
    return {message[2] if isinstance(message[2], str) else message[2][0]
            for message in extract_from_dir(str(REPO), method_map, options_map)}


def singular(message) -> str:  # type: ignore[no-untyped-def]
    """A message's msgid, the singular one of a plural message (as extraction gives it)."""
    return message.id if isinstance(message.id, str) else message.id[0]


def catalog(language: str):  # type: ignore[no-untyped-def]
    with (LOCALE / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=language)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_theme_string_is_translated_in_each_language(language: str) -> None:
    wanted = extracted()
    found = catalog(language)
    messages = {singular(m): m for m in found if m.id}
    missing = sorted(wanted - messages.keys())
    untranslated = sorted(key for key, m in messages.items() if m.fuzzy or not (
        m.string if isinstance(m.string, str) else all(m.string)))  # every plural form
    assert (missing, untranslated) == ([], []), f"{language}: run pybabel update (babel.cfg)"
    assert sorted(messages.keys() - wanted) == []  # no leftover from a removed string
    problems = [(m.id, [str(e) for e in errors]) for m, errors in found.check()]
    assert problems == []  # the same %(placeholders)s as the English


def test_every_bundled_catalog_is_checked() -> None:
    assert sorted(path.name for path in LOCALE.iterdir() if path.is_dir()) == sorted(LANGUAGES)


def test_the_message_template_lists_what_the_templates_mark() -> None:
    with (LOCALE / "messages.pot").open("rb") as handle:
        template = {singular(m) for m in read_po(handle) if m.id}
    assert template == extracted()


@pytest.mark.parametrize(("language", "start", "end", "expected"), [
    ("en", "2020-01-10", None, "10 January 2020"),
    ("fr", "2020-01-10", None, "10 janvier 2020"),
    ("de", "2020-01-10", None, "10. Januar 2020"),
    ("en", "2020-01-14", "2020-01-16", "14\u201316 January 2020"),
    ("fr", "2020-01-14", "2020-01-16", "14\u201316 janvier 2020"),
    ("de", "2020-03-26", "2020-03-27", "26.\u201327. M\u00e4rz 2020"),
    ("es", "2020-03-26", "2020-03-27", "26\u201327 de marzo de 2020"),
    ("nl", "2020-03-26", "2020-03-27", "26\u201327 maart 2020"),
    ("fr", "2020-01-30", "2020-02-02", "30 janvier\u2009\u2013\u20092 f\u00e9vrier 2020"),
    ("en", "2020-12-30", "2021-01-02", "30 December 2020\u2009\u2013\u20092 January 2021"),
    ("en-US", "2020-01-14", "2020-01-16", "January 14\u2009\u2013\u200916, 2020"),
])  # CLDR sets the dash between thin spaces (U+2009) when it separates more than digits
def test_dates_and_ranges_are_written_as_each_language_writes_them(
        language: str, start: str, end: str | None, expected: str) -> None:
    first = dt.date.fromisoformat(start)
    last = dt.date.fromisoformat(end) if end else None
    assert i18n.date_range(first, last, language) == expected


def french(project: Path) -> None:
    config = project / "newsletter.toml"
    config.write_text(config.read_text().replace('language = "en"', 'language = "fr"'))


def test_a_french_newsletter_speaks_french_around_the_issue(project: Path) -> None:
    french(project)
    settings = load_settings(project / "newsletter.toml", env={})
    composed = compose(load_issue(project / "issues" / "2020-01.yaml"), settings)
    page, text = web_html(composed, settings), composed.text
    assert '<html lang="fr" dir="ltr"' in page
    for words in ("Afficher cet e-mail dans votre navigateur", "N°\u00a01 \u00b7 10 janvier 2020",
                  "Le saviez-vous\u202f?", ">Agenda<", "14\u201316 janvier 2020",
                  "Se désabonner", "Bonjour à vous,"):
        assert words in page, words
    assert "Bonjour %%name%%," in text and "Se désabonner\u00a0:" in text
    for english in ("Dear ", "View this email", "DID YOU KNOW", "Unsubscribe:", "No. 1",
                    "10 January", "16 January"):
        assert english not in text, english


def test_a_theme_overrides_and_adds_strings_in_its_own_catalog(project: Path) -> None:
    french(project)
    theme = project / "templates" / "mytheme"
    shutil.copytree(REPO / "templates" / "default", theme)
    source = theme / "newsletter.txt.j2"
    source.write_text(source.read_text() + '{{ _("Our partners") }}\n', encoding="utf-8")
    po = theme / "locale" / "fr" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    po.write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
                  'msgid "Dear %(name)s,"\nmsgstr "Chère lectrice, cher lecteur %(name)s,"\n\n'
                  'msgid "Our partners"\nmsgstr "Nos partenaires"\n', encoding="utf-8")
    config = project / "newsletter.toml"
    config.write_text(config.read_text().replace('template = "default"',
                                                 'template = "mytheme"'))
    settings = load_settings(config, env={})
    text = compose(load_issue(project / "issues" / "2020-01.yaml"), settings).text
    assert "Chère lectrice, cher lecteur %%name%%," in text  # overridden by the theme
    assert "Nos partenaires" in text  # added by the theme
    assert "Se désabonner\u00a0:" in text  # the rest: the bundled catalog


def call(app: WebApp, path: str) -> str:
    answer: dict[str, str] = {}
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "wsgi.input": io.BytesIO()}
    page = b"".join(app(environ, lambda status, headers: answer.update(status=status)))
    return page.decode("utf-8")


def test_the_unsubscribe_page_speaks_the_subscriber_language(project: Path) -> None:
    with SubscriberStore(project / "newsletter.db") as store:
        store.merge([NewRow(1, "jan@example.org", address_key("jan@example.org"), "Jan",
                            {"language": "de-AT"}),
                     NewRow(2, "ana@example.org", address_key("ana@example.org"), "Ana",
                            {"language": "pt"})], "members")
        jan, ana = store.get("jan@example.org").id, store.get("ana@example.org").id  # type: ignore[union-attr]
    settings = load_settings(project / "newsletter.toml", env={})
    signer = signer_for(settings)
    app = WebApp(settings, Archive(settings, project / "issues"), signer)
    german = call(app, "/unsubscribe/" + signer.unsubscribe_token(jan, "members"))
    assert '<html lang="de" dir="ltr">' in german  # de-AT reads the German pages
    assert "Von Efus Newsletter abmelden?" in german and ">Abmelden</button>" in german
    other = call(app, "/unsubscribe/" + signer.unsubscribe_token(ana, "members"))
    assert '<html lang="en"' in other and "Unsubscribe from Efus Newsletter?" in other
