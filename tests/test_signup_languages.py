"""The sign-up pages, their mails and the preferences page in the reader's language, on a
real `newsletter serve` mailing through a real SMTP server."""

from __future__ import annotations

import email.message
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_cli
from smtp_server import SmtpServer
from test_signup import configure, confirm_path, mails, sign_up
from test_web import assert_plain_page, signer, start, store

from newsletter.audience import consent
from newsletter.audience.store import NewRow, address_key


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


CONSENT_FR = ("Je souhaite recevoir cette lettre d’information par e-mail. Je peux me "
              "désabonner à tout moment grâce au lien en bas de chaque e-mail.")


def newsletter_language(project: Path, language: str) -> None:
    config = project / "newsletter.toml"
    text = config.read_text(encoding="utf-8")
    assert 'language = "en"' in text
    config.write_text(text.replace('language = "en"', f'language = "{language}"', 1),
                      encoding="utf-8")


def speaks(page: str, lang: str, *words: str) -> None:
    """`page` says it is in `lang` (right to left for Arabic) and carries each of `words`."""
    assert f'<html lang="{lang}" dir="{"rtl" if lang == "ar" else "ltr"}">' in page
    for sentence in words:
        assert sentence in page, sentence


def parts(message: email.message.EmailMessage) -> tuple[str, str]:
    """The plain-text and HTML parts of a received mail."""
    return (message.get_body(("plain",)).get_content(),  # type: ignore[union-attr]
            message.get_body(("html",)).get_content())  # type: ignore[union-attr]


def test_a_french_newsletter_signs_people_up_and_welcomes_them_in_french(
        project: Path, smtp: SmtpServer) -> None:
    configure(project, smtp, welcome=True)
    newsletter_language(project, "fr")
    site = start(project)
    try:
        form = site.get("/subscribe")
        assert_plain_page(form, 200)
        speaks(form.text, "fr", "S’inscrire à Efus Newsletter", "Adresse e-mail",
               "Nom (facultatif)", "Listes", ">S’inscrire</button>", CONSENT_FR,
               '<input type="hidden" name="consent_language" value="fr">')
        assert "Email address" not in form.text and ">Subscribe<" not in form.text

        sent = sign_up(site, consent_language="fr")
        assert_plain_page(sent, 200)
        speaks(sent.text, "fr", "Consultez votre boîte de réception")

        [confirmation] = mails(smtp)
        text, page = parts(confirmation)
        assert confirmation["Subject"] == "Merci de confirmer votre inscription à Efus Newsletter"
        assert "Bonjour Ana Lopez," in text and "Le lien est valable 7 jours." in text
        assert "(listes\u00a0: members)" in text
        speaks(page, "fr", "Confirmer mon inscription")
        assert "Dear" not in text + page and "Please confirm" not in text + page

        path = confirm_path(confirmation)
        button = site.get(path)
        assert_plain_page(button, 200)
        speaks(button.text, "fr", "Confirmez votre inscription à Efus Newsletter",
               ">Confirmer mon inscription</button>")

        done = site.post(path)
        assert_plain_page(done, 200)
        speaks(done.text, "fr", "Votre inscription est confirmée",
               "reçoit les envois de la liste", "Vos préférences")
        sign_up(site, email="ben@example.org")  # a snippet printed before forms said
    finally:
        site.stop()
    snippet = run_cli("form", cwd=project)  # the form for another site speaks French too
    assert snippet.returncode == 0, snippet.stderr
    assert 'lang="fr"' in snippet.stdout and "Adresse e-mail" in snippet.stdout
    welcome = mails(smtp)[1]
    text, page = parts(welcome)
    assert welcome["Subject"] == "Bienvenue dans Efus Newsletter"
    assert "Bonjour Ana Lopez," in text and "Votre inscription à Efus Newsletter" in text
    speaks(page, "fr", "Choisir vos listes")
    assert "Welcome" not in text + page and "Dear" not in text + page
    with store(project) as subscribers:  # each consent kept in the words the person read
        ana, ben = (subscribers.get(a) for a in ("ana@example.org", "ben@example.org"))
        [agreed] = consent.of_subscriber(subscribers.connection, ana.id)  # type: ignore[union-attr]
        [old] = consent.of_subscriber(subscribers.connection, ben.id)  # type: ignore[union-attr]
    assert agreed.text == CONSENT_FR
    assert old.text is not None and old.text.startswith("I would like to receive")


def test_a_visitor_who_chooses_spanish_gets_the_pages_and_the_mail_in_spanish(
        project: Path, smtp: SmtpServer) -> None:
    configure(project, smtp, languages=["en", "es"], welcome=True)
    site = start(project)
    try:
        form = site.get("/subscribe")  # before a choice: the newsletter's language
        speaks(form.text, "en", "Email address", '<option value="es" lang="es">Español</option>')

        mistake = sign_up(site, language="es", **{"list:members": ""})
        assert mistake.status_code == 400
        speaks(mistake.text, "es", "Elija al menos una lista.",
               "Dirección de correo electrónico", 'value="es" selected')  # the choice is kept

        sent = sign_up(site, language="es")
        speaks(sent.text, "es", "Revise su bandeja de entrada")
        [confirmation] = mails(smtp)
        text, page = parts(confirmation)
        assert confirmation["Subject"] == "Confirme su suscripción a Efus Newsletter, por favor"
        assert "Hola, Ana Lopez:" in text and "El enlace es válido durante 7 días." in text
        speaks(page, "es", "Confirmar mi suscripción")

        path = confirm_path(confirmation)  # the choice is theirs from now on
        speaks(site.get(path).text, "es", "Confirme su suscripción a Efus Newsletter")
        speaks(site.post(path).text, "es", "Su suscripción está confirmada")
    finally:
        site.stop()
    _, welcome = mails(smtp)
    assert welcome["Subject"] == "Le damos la bienvenida a Efus Newsletter"
    speaks(parts(welcome)[1], "es", "Elija sus listas")


def test_a_subscriber_whose_language_is_german_sees_the_preferences_page_in_german(
        project: Path) -> None:
    configure(project, None, languages=["fr", "de"])
    newsletter_language(project, "fr")
    people = {"jonas@example.org": {"language": "de"}, "marie@example.org": {},
              "joao@example.org": {"language": "pt"}, "amal@example.org": {"language": "ar"}}
    with store(project) as subscribers:
        subscribers.merge([NewRow(n, address, address_key(address), address.split("@")[0],
                                  fields) for n, (address, fields) in enumerate(people.items())],
                          "members")
        ids = {address: subscribers.get(address).id for address in people}  # type: ignore[union-attr]

    def preferences(address: str) -> str:
        return f"/preferences/{signer(project).preferences_token(ids[address])}"

    site = start(project)
    try:
        page = site.get(preferences("jonas@example.org"))
        assert_plain_page(page, 200)
        speaks(page.text, "de", "Ihre Einstellungen", "Die Listen, die Sie erhalten",
               ">Speichern<", "Von allem abmelden",
               '<option value="de" selected lang="de">Deutsch',
               "Ich möchte diesen Newsletter per E-Mail erhalten.")  # the default wording
        assert "Your preferences" not in page.text and ">Save<" not in page.text
        gone = site.post(preferences("jonas@example.org"), {"action": "unsubscribe"})
        speaks(gone.text, "de", "Diese Adresse erhält nichts mehr von Efus Newsletter.")

        for who in ("marie@example.org", "joao@example.org"):  # none, or no catalog: French
            speaks(site.get(preferences(who)).text, "fr", "Vos préférences")
        speaks(site.get(preferences("amal@example.org")).text, "ar", "تفضيلاتك")
    finally:
        site.stop()


def test_a_language_without_a_catalog_gets_english_words_marked_as_english(
        project: Path, smtp: SmtpServer) -> None:
    configure(project, smtp)
    newsletter_language(project, "pt")  # no bundled catalog speaks Portuguese
    site = start(project)
    try:
        speaks(site.get("/subscribe").text, "en", "Email address")
        speaks(sign_up(site).text, "en", "Please check your inbox")
        speaks(site.get(confirm_path(mails(smtp)[0])).text, "en", "Confirm my subscription")
    finally:
        site.stop()
    text, page = parts(mails(smtp)[0])
    assert "Dear Ana Lopez," in text
    speaks(page, "en", "Confirm my subscription")


def test_the_robot_check_speaks_the_pages_language(project: Path, smtp: SmtpServer) -> None:
    configure(project, smtp, proof_of_work=True)
    newsletter_language(project, "fr")
    site = start(project)
    try:
        page = site.get("/subscribe").text
    finally:
        site.stop()
    speaks(page, "fr", 'data-checking="Vérification qu’il ne s’agit pas d’un robot…"',
           "Ce navigateur n’a pas pu être vérifié",
           "Ce formulaire vérifie qu’il n’est pas rempli par un robot")  # <noscript>
    script = (Path(__file__).parent.parent / "templates" / "web" / "altcha.js").read_text()
    assert "status.dataset.checking" in script and "robot" not in script  # no words of its own


def test_a_consent_text_of_ones_own_is_shown_and_kept_as_written(
        project: Path, smtp: SmtpServer) -> None:
    wording = "Oui, envoyez-moi la lettre de l’Efus."
    configure(project, smtp, consent_text=wording)
    newsletter_language(project, "fr")
    site = start(project)
    try:
        speaks(site.get("/subscribe").text, "fr", f"<p>{wording}</p>")
        sign_up(site, consent_language="fr")
    finally:
        site.stop()
    with store(project) as subscribers:
        ana = subscribers.get("ana@example.org")
        [agreed] = consent.of_subscriber(subscribers.connection, ana.id)  # type: ignore[union-attr]
    assert agreed.text == wording
