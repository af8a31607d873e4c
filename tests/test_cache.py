"""The composed-email cache: a build from it is the fresh build, byte for byte, and any
change to what composing reads (issue, theme, settings, images) composes afresh."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from newsletter.compose.cache import Entry, folder
from newsletter.compose.issue import load_issue
from newsletter.compose.render import ComposedEmail, compose
from newsletter.config import Settings, load_settings

ISSUE = "issues/2020-01.yaml"
TITLE = "Efus General Assembly 2020 in Riga"
MARK = "FROM THE CACHE"


def settings_in(project: Path, cache: Path) -> Settings:
    return load_settings(project / "newsletter.toml", env={"XDG_CACHE_HOME": str(cache)})


def composed(project: Path, cache: Path, *, test: bool = False) -> ComposedEmail:
    return compose(load_issue(project / ISSUE), settings_in(project, cache), test=test)


def mark_entry(project: Path, cache: Path) -> None:
    """Rewrite the stored HTML, key unchanged: what a build shows next tells where it came from."""
    settings = settings_in(project, cache)
    issue = load_issue(project / ISSUE)
    entry = Entry.find(issue, settings, settings.template_dir(issue.template), False)
    assert entry is not None
    stored = entry.load()
    assert stored is not None, "the first build left no entry"
    html, text, fields = stored
    entry.store(html.replace(TITLE, MARK), text, fields)


def test_build_from_the_cache_is_byte_for_byte_the_fresh_build(cli, project: Path,
                                                               tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    outputs = []
    for run in range(3):
        if run == 2:  # and once more with the cache emptied
            shutil.rmtree(tmp_path / "cache")
        result = cli("build", ISSUE, "-o", f"out{run}", env=env)
        assert result.returncode == 0, result.stderr
        outputs.append({p.relative_to(project / f"out{run}"): p.read_bytes()
                        for p in sorted((project / f"out{run}").rglob("*")) if p.is_file()})
    assert len(list((tmp_path / "cache" / "newsletter" / "composed").iterdir())) == 1
    assert outputs[0] == outputs[1] == outputs[2]
    # email.html, email.txt, index.html, four images, agenda.ics and an .ics per agenda entry
    assert len(outputs[0]) == 3 + 4 + 1 + 7


def test_cached_composition_equals_a_fresh_one(project: Path, tmp_path: Path) -> None:
    fresh = compose(load_issue(project / ISSUE), load_settings(project / "newsletter.toml",
                                                               env={}))  # no cache at all
    first, second = composed(project, tmp_path), composed(project, tmp_path)
    for field in ("subject", "preheader", "html", "text", "template_dir", "fields"):
        assert getattr(first, field) == getattr(second, field) == getattr(fresh, field)
    assert composed(project, tmp_path, test=True).subject == "[TEST] " + fresh.subject
    assert len(list(folder({"XDG_CACHE_HOME": str(tmp_path)}).iterdir())) == 2  # type: ignore[union-attr]


def test_an_unchanged_issue_is_read_from_the_cache(project: Path, tmp_path: Path) -> None:
    composed(project, tmp_path)
    mark_entry(project, tmp_path)
    assert MARK in composed(project, tmp_path).html


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def _touch_image(project: Path) -> None:
    image = next((project / "issues" / "2020-01").iterdir())
    data = image.read_bytes()
    image.write_bytes(data + b"\0")


def _own_theme(project: Path) -> None:
    shutil.copytree(Path(__file__).resolve().parent.parent / "templates" / "default",
                    project / "templates" / "mytheme")
    _edit(project / "newsletter.toml", 'template = "default"', 'template = "mytheme"')


CHANGES: dict[str, Callable[[Path], None]] = {
    "issue text": lambda p: _edit(p / ISSUE, "Riga (LV)", "Riga, Latvia"),
    "settings": lambda p: _edit(p / "newsletter.toml", 'name = "Efus Newsletter"',
                                'name = "Efus News"'),
    "theme": lambda p: _own_theme(p),
    "an image": _touch_image,
}


@pytest.mark.parametrize("change", CHANGES, ids=str)
def test_a_change_to_what_composing_reads_composes_afresh(project: Path, tmp_path: Path,
                                                          change: str) -> None:
    if change == "theme":  # first the theme's own copy, then a change to one of its files
        _own_theme(project)
        composed(project, tmp_path)
        mark_entry(project, tmp_path)
        _edit(project / "templates" / "mytheme" / "inline.css", "{", "{ border-width: 0;")
    else:
        composed(project, tmp_path)
        mark_entry(project, tmp_path)
        CHANGES[change](project)
    again = composed(project, tmp_path)
    assert MARK not in again.html and TITLE in again.html
    fresh = compose(load_issue(project / ISSUE), dataclasses.replace(
        settings_in(project, tmp_path), env={}))
    assert (again.html, again.text) == (fresh.html, fresh.text)


def test_a_damaged_entry_or_a_cache_that_cannot_be_written_costs_nothing(
        project: Path, tmp_path: Path) -> None:
    expected = composed(project, tmp_path / "fresh").html
    composed(project, tmp_path)
    (entry,) = (tmp_path / "newsletter" / "composed").iterdir()
    entry.write_bytes(entry.read_bytes()[:1000])  # cut short, as by a full disk
    assert composed(project, tmp_path).html == expected
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would go")
    assert composed(project, blocked).html == expected


def test_cache_folder_follows_xdg_then_home() -> None:
    assert folder({"XDG_CACHE_HOME": "/x", "HOME": "/h"}) == Path("/x/newsletter/composed")
    assert folder({"HOME": "/h"}) == Path("/h/.cache/newsletter/composed")
    assert folder({}) is None


def test_each_edition_is_cached_and_a_change_to_its_file_composes_it_afresh(
        project: Path, tmp_path: Path) -> None:
    french = project / "issues" / "2020-01.fr.yaml"
    french.write_text("subject: \"Lettre de l'Efus – janvier 2020\"\nintro: Bonne année !\n",
                      encoding="utf-8")
    first = composed(project, tmp_path)
    assert [e.language for e in first.editions] == ["fr"]
    assert len(list(folder({"XDG_CACHE_HOME": str(tmp_path)}).iterdir())) == 2  # type: ignore[union-attr]
    again = composed(project, tmp_path)
    assert (again.html, again.editions[0].html) == (first.html, first.editions[0].html)
    _edit(french, "Bonne année !", "Meilleurs vœux !")
    changed = composed(project, tmp_path)
    assert "Meilleurs vœux" in changed.editions[0].html
    assert "Bonne année" not in changed.editions[0].html
    french.unlink()  # the main edition no longer links to a French one
    alone = composed(project, tmp_path)
    assert alone.editions == () and alone.html == compose(
        load_issue(project / ISSUE), dataclasses.replace(settings_in(project, tmp_path),
                                                         env={})).html
