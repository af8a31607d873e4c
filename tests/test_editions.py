"""Editions: `issues/2020-02.fr.yaml` beside `issues/2020-02.yaml`, built, checked, published."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from newsletter.audience.store import SubscriberStore

Cli = Callable[..., subprocess.CompletedProcess[str]]
REPO = Path(__file__).resolve().parent.parent

MAIN = """\
number: 2
date: 2020-02-07
subject: "Efus Newsletter – February 2020: Riga"
preheader: "Our General Assembly in Riga, and a study visit in Genk."
lists: [members]
intro: |
  Welcome to the February issue! This month: our General Assembly in Riga.
items:
  - title: "Efus General Assembly 2020 in Riga"
    image:
      src: 2020-01/riga.png
      alt: "Rooftops of Riga old town"
    body: |
      The General Assembly will be held on **26-27 March** in Riga (LV).

      Members can register online until 1 March.
    link:
      url: https://efus.eu/en/about-us/general-assembly/
      label: "Register for the General Assembly"
  - title: "BRIDGE: a study visit in Genk"
    body: The BRIDGE project visits Genk (BE) to prepare its pilot project.
highlights:
  - body: Efus has just published the PREPARE guidebook.
agenda:
  - start: 2020-03-26
    end: 2020-03-27
    project: Efus
    event: General Assembly meeting
    place: Riga, Latvia
"""

FRENCH = """\
subject: "Lettre de l'Efus – février 2020 : Riga"
preheader: "Notre Assemblée générale à Riga, et une visite d'étude à Genk."
intro: |
  Bienvenue dans le numéro de février ! Ce mois-ci : notre Assemblée générale à Riga.
items:
  - title: "Assemblée générale 2020 de l'Efus à Riga"
    image:
      alt: "Les toits de la vieille ville de Riga"
    body: |
      L'Assemblée générale se tiendra les **26 et 27 mars** à Riga (LV).

      Les membres peuvent s'inscrire en ligne jusqu'au 1er mars.
    link:
      url: https://efus.eu/fr/about-us/general-assembly/
      label: "S'inscrire à l'Assemblée générale"
  - title: "BRIDGE : une visite d'étude à Genk"
    body: Le projet BRIDGE se rend à Genk (BE) pour préparer son projet pilote.
highlights:
  - body: L'Efus vient de publier le guide PREPARE.
agenda:
  - event: Réunion de l'Assemblée générale
    place: Riga, Lettonie
"""


def write(project: Path, main: str = MAIN, french: str | None = FRENCH) -> None:
    (project / "issues" / "2020-02.yaml").write_text(main, encoding="utf-8")
    if french is not None:
        (project / "issues" / "2020-02.fr.yaml").write_text(french, encoding="utf-8")


def lists(project: Path) -> None:
    """The lists the issues name, in the subscriber database: `check` wants them."""
    with SubscriberStore(project / "newsletter.db") as store:
        for name in ("members", "partners"):
            store.add("reader@example.org", name)


def lines_of(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("issues/")]


def test_each_edition_is_built_in_its_language_beside_the_main_one(project: Path,
                                                                    cli: Cli) -> None:
    write(project)
    result = cli("build", "issues/2020-02.yaml")
    assert result.returncode == 0, result.stderr
    assert "editions: fr" in result.stdout
    built = project / "build" / "2020-02"
    english, french = (built / "email.txt").read_text(), (built / "fr" / "email.txt").read_text()
    for words in ("Lettre de l'Efus – février 2020 : Riga", "Bonjour à vous,",
                  "Bienvenue dans le numéro de février", "Assemblée générale 2020 de l'Efus à Riga",
                  "26 et 27 mars", "s'inscrire en ligne", "https://efus.eu/fr/about-us/",
                  "LE SAVIEZ-VOUS\u202f?", "26\u201327 mars 2020", "Réunion de l'Assemblée",
                  "Riga, Lettonie", "Efus: Réunion", "Se désabonner\u00a0:",
                  "Autres langues\u00a0:\nEnglish: https://newsletter.efus.eu/2020-02/\n",
                  "N°\u00a02 - 7 février 2020"):
        assert words in french, words
    assert "The General Assembly" not in french and "Dear" not in french
    assert "Also in:\nFrançais: https://newsletter.efus.eu/2020-02/fr/\n" in english
    assert "26\u201327 March 2020" in english and "Dear reader," in english

    page = (built / "fr" / "index.html").read_text()
    assert '<html lang="fr" dir="ltr"' in page
    assert 'src="../2020-01/riga.png"' in page and (built / "2020-01" / "riga.png").is_file()
    assert 'alt="Les toits de la vieille ville de Riga"' in page  # the image shared, its alt not
    assert re.search(r'href="https://newsletter\.efus\.eu/2020-02/" hreflang="en" lang="en"'
                     r'[^>]*>English</a>', page)
    for hreflang, url in (("en", "https://newsletter.efus.eu/2020-02/"),
                          ("fr", "https://newsletter.efus.eu/2020-02/fr/"),
                          ("x-default", "https://newsletter.efus.eu/2020-02/")):
        link = f'<link rel="alternate" hreflang="{hreflang}" href="{url}">'
        assert link in page and link in (built / "index.html").read_text()


def test_check_reports_what_an_edition_left_untranslated_or_shorter(project: Path,
                                                                   cli: Cli) -> None:
    shorter = FRENCH.replace("\n      Les membres peuvent s'inscrire en ligne jusqu'au 1er mars.\n",
                             "").replace("    body: Le projet BRIDGE se rend à Genk (BE) pour "
                                         "préparer son projet pilote.\n", "")
    write(project, french=shorter.replace('preheader: "Notre Assemblée générale à Riga, et une '
                                          'visite d\'étude à Genk."\n', ""))
    lists(project)
    result = cli("check", "issues/2020-02.yaml")
    assert result.returncode == 0, result.stderr  # the editions' readers still get an email
    found = lines_of(result)
    assert "issues/2020-02.yaml:4: preheader: warning: not translated in the fr edition " \
           "(issues/2020-02.fr.yaml): its readers get this text" in found
    assert "issues/2020-02.yaml:21: items[1].body: warning: not translated in the fr " \
           "edition (issues/2020-02.fr.yaml): its readers get this text" in found
    assert "issues/2020-02.fr.yaml:8: items[0].body: warning: 1 paragraph(s) where " \
           "issues/2020-02.yaml:13 has 2: a forgotten paragraph?" in found
    assert "sendable" in result.stdout


def test_check_reports_mistakes_of_an_edition_at_its_own_file_and_line(project: Path,
                                                                      cli: Cli) -> None:
    broken = FRENCH.replace("subject:", "date: 2020-02-08\nsubjet:") \
        .replace('label: "S\'inscrire à l\'Assemblée générale"', 'label: "Read more"') \
        + "  - title: Un troisième article\n    body: Il n'existe pas en anglais.\n"
    write(project, french=broken)
    lists(project)
    result = cli("check", "issues/2020-02.yaml")
    assert result.returncode == 1
    found = lines_of(result)
    assert any(line.startswith("issues/2020-02.fr.yaml:1: date: belongs to the whole issue")
               for line in found), found
    assert any(line.startswith("issues/2020-02.fr.yaml:2: subjet: unknown field (did you "
                               "mean 'subject'?)") for line in found), found
    assert any(re.match(r"issues/2020-02\.fr\.yaml:16: items\[0\]\.link\.label: expected a "
                        r"label that says where the link goes", line) for line in found), found
    assert any(line.startswith("issues/2020-02.fr.yaml:24: agenda[1]: issues/2020-02.yaml has "
                               "1 agenda entry: an edition translates them in the same order")
               for line in found), found
    assert found == sorted(found, key=lambda line: int(line.split(":")[1]))
    assert "Traceback" not in result.stderr


def test_an_edition_file_is_no_issue_of_its_own(project: Path, cli: Cli) -> None:
    write(project, MAIN.replace("number: 2", "number: 2\nsend_at: 2030-02-07T09:00+01:00"))
    result = cli("schedule")
    assert result.returncode == 0, result.stderr
    assert "2020-02" in result.stdout and "2020-02.fr" not in result.stdout


def test_an_edition_in_the_main_language_is_refused(project: Path, cli: Cli) -> None:
    write(project, french=None)
    (project / "issues" / "2020-02.en.yaml").write_text(FRENCH, encoding="utf-8")
    result = cli("build", "issues/2020-02.yaml")
    assert result.returncode == 1
    assert "issues/2020-02.en.yaml: is the en edition, but the main file issues/2020-02.yaml " \
           "is en already" in result.stderr


def readme_yaml(heading: str) -> str:
    """The first YAML example below `heading` in the README."""
    text = (REPO / "README.md").read_text(encoding="utf-8").split(f"\n{heading}\n", 1)[1]
    return text.split("```yaml\n", 1)[1].split("```\n", 1)[0]


def test_the_readme_edition_example_translates_the_readme_issue_example(project: Path,
                                                                        cli: Cli) -> None:
    shutil.copytree(project / "issues" / "2020-01", project / "issues" / "2020-02")
    write(project, readme_yaml("## Writing an issue"), readme_yaml("## Editions"))
    lists(project)
    result = cli("check", "issues/2020-02.yaml")
    assert (result.returncode, lines_of(result)) == (0, []), result.stderr
    assert cli("build", "issues/2020-02.yaml").returncode == 0
    french = (project / "build" / "2020-02" / "fr" / "email.txt").read_text()
    assert "+++ LE SAVIEZ-VOUS ? +++" in french and "Bonjour à vous," in french
    assert "https://efus.eu/en/resources/publications/prepare-guidebook/" in french  # shared
    assert "Réunion de l'Assemblée générale" in french and "26\u201327 mars 2020" in french


def test_newsletter_edition_starts_a_file_that_check_follows_until_translated(
        project: Path, cli: Cli) -> None:
    write(project, french=None)
    started = cli("edition", "issues/2020-02.yaml", "fr")
    assert started.returncode == 0, started.stderr
    assert "wrote issues/2020-02.fr.yaml" in started.stdout
    copy = (project / "issues" / "2020-02.fr.yaml").read_text()
    assert "date:" not in copy and "lists:" not in copy and "number:" not in copy
    assert "Welcome to the February issue!" in copy and "src: 2020-01/riga.png" in copy
    lists(project)
    result = cli("check", "issues/2020-02.yaml")
    assert result.returncode == 0, result.stderr
    assert "issues/2020-02.fr.yaml:13: items[0].body: warning: the same text as " \
           "issues/2020-02.yaml:13: not translated yet?" in lines_of(result)
    assert any(line.startswith("issues/2020-02.fr.yaml:4: subject: warning: the same text")
               for line in lines_of(result))
    assert not any("items[1].title" in line for line in lines_of(result))  # short: a name?
    again = cli("edition", "issues/2020-02.yaml", "fr")
    assert again.returncode == 1 and "exists already; nothing was written" in again.stderr
    unknown = cli("edition", "issues/2020-02.yaml", "Elvish")
    assert unknown.returncode == 1 and "expected a language such as fr" in unknown.stderr
