"""The theme's own words, dates and numbers in the language of each edition.

Catalogs are gettext `.po` files, read with Babel as they are: nothing to compile when the
program is installed, and a translator's save shows in the preview at once. A theme's own
`locale/<lang>/LC_MESSAGES/messages.po` is searched before the bundled
`templates/locale/`, so a theme adds or overrides strings and inherits the rest. Dates and
numbers follow Babel's CLDR data for the language.
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, parse_pattern
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

if TYPE_CHECKING:
    import jinja2


def N_(message: str) -> str:
    """Mark `message` for the catalogs; it is translated where it is shown."""
    return message


LOCALE_DIR = "locale"
DOMAIN = "messages"
# Bare English is written as English in Europe writes it ("14 January 2020"), as this
# program always did; `en-US` and `en-GB` follow their own countries.
DATE_LOCALE = {"en": "en_150"}
_TAG = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
_ABBREVIATED_MONTH = re.compile(r"(?<![ML])([ML])\1\1(?![ML])")
# The default name_fallback of newsletter.toml: composing translates it like the theme's words.
READER = N_("reader")
_cache_lock = threading.Lock()
_compiled_catalogs: dict[Path, tuple[tuple[int, int], bytes]] = {}


def language_tag(raw: str | None) -> str | None:
    """`fr_be`, `FR-be` -> `fr-BE`, and `French` -> `fr` (spreadsheets name languages);
    None for what is no language Babel knows."""
    value = (raw or "").strip()
    if _TAG.match(value):
        try:
            return str(Locale.parse(value.replace("-", "_"))).replace("_", "-")
        except (UnknownLocaleError, ValueError):
            pass
    code = _english_names().get(value.casefold())
    return code.replace("_", "-") if code else None


@lru_cache(maxsize=1)
def _english_names() -> dict[str, str]:
    return {name.casefold(): code for code, name in Locale.parse("en").languages.items()}


def broader(tag: str) -> list[str]:
    """The tag and the tags it narrows: `zh-Hant-TW` -> zh-Hant-TW, zh-Hant, zh."""
    parts = tag.split("-")
    return ["-".join(parts[:n]) for n in range(len(parts), 0, -1)]


def candidates(raw: str | None, fallbacks: Mapping[str, Sequence[str]]) -> list[str]:
    """What a reader of `raw` reads, best first: fr-BE, fr, then the configured fallbacks
    of each (`language_fallbacks` in newsletter.toml); empty for no known language."""
    tag = language_tag(raw)
    if tag is None:
        return []
    wanted = {key.lower(): value for key, value in fallbacks.items()}
    order: list[str] = []
    for narrower in broader(tag):
        order.append(narrower)
        for other in wanted.get(narrower.lower(), ()):
            found = language_tag(other)
            order.extend(broader(found) if found else ())
    return list(dict.fromkeys(order))


@lru_cache(maxsize=64)
def _locale(tag: str) -> Locale:
    try:
        return Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


@lru_cache(maxsize=64)
def _date_locale(tag: str) -> Locale:
    return Locale.parse(DATE_LOCALE[tag]) if tag in DATE_LOCALE else _locale(tag)


def direction(tag: str) -> str:
    """`rtl` for languages written right to left (Arabic, Hebrew, Persian...), else `ltr`."""
    return "rtl" if _locale(tag).text_direction == "rtl" else "ltr"


def native_name(tag: str) -> str:
    """The language as its readers name it: `Français`, `Deutsch`, `العربية`."""
    locale = _locale(tag)
    name = locale.get_display_name(locale) or tag
    return name[:1].upper() + name[1:]


def long_date(day: dt.date, tag: str) -> str:
    """`10 January 2020`, `10 janvier 2020`, `10. Januar 2020`."""
    return format_date(day, "long", locale=_date_locale(tag))


def date_range(start: dt.date, end: dt.date | None, tag: str) -> str:
    """`14–16 January 2020`, `26.–27. März 2020`, `30 janvier – 2 février 2020`.

    Babel's format_interval knows CLDR's interval patterns, which most languages give with
    abbreviated months only; CLDR says to widen the fields to the skeleton asked for, which
    Babel leaves undone, so the month is widened here (`MMM` -> `MMMM`).
    """
    if end is None or end == start:
        return long_date(start, tag)
    locale = _date_locale(tag)
    formats = locale.interval_formats
    skeleton = "yMMMMd" if "yMMMMd" in formats else "yMMMd"
    patterns = formats.get(skeleton)
    if not patterns:
        return f"{long_date(start, tag)} \u2013 {long_date(end, tag)}"
    field = "y" if start.year != end.year else "M" if start.month != end.month else "d"
    pieces = patterns.get(field) or patterns.get("M") or patterns.get("y")
    return "".join(parse_pattern(_ABBREVIATED_MONTH.sub(r"\1\1\1\1", pattern)).apply(day, locale)
                   for pattern, day in zip(pieces, (start, end), strict=True))


def number(value: int | float, tag: str) -> str:
    """A number as the language writes it, ungrouped (an issue number is no amount)."""
    return format_decimal(value, locale=_date_locale(tag), group_separator=False)


# -- message catalogs ---------------------------------------------------------------------


def catalog_paths(folders: Iterable[Path], tag: str) -> list[Path]:
    """The `.po` files for `tag`, most specific language first, each folder in order."""
    folders = list(folders)
    return [path for narrower in broader(tag) for folder in folders
            if (path := _po(folder, narrower)).is_file()]


def _po(folder: Path, tag: str) -> Path:
    return folder / LOCALE_DIR / tag.replace("-", "_") / "LC_MESSAGES" / f"{DOMAIN}.po"


def translations(folders: Iterable[Path], tag: str) -> gettext.NullTranslations:
    """The theme's words in `tag`: the first catalog that has a string wins, then English."""
    chain: gettext.NullTranslations = gettext.NullTranslations()
    for path in reversed(catalog_paths(folders, tag)):
        layer = Translations(io.BytesIO(_compiled(path)))
        layer.add_fallback(chain)
        chain = layer
    return chain


def has_catalog(folders: Iterable[Path], tag: str) -> bool:
    """Whether a catalog is written for exactly `tag` (`de`, not `de-AT`)."""
    return any(_po(folder, tag).is_file() for folder in folders)


def written_in(folders: Iterable[Path], wanted: Iterable[str | None],
               fallbacks: Mapping[str, Sequence[str]]) -> str:
    """The language words are shown in: the first of `wanted` (or a language it narrows or
    falls back to) that a catalog is written for, else English, the words without one."""
    folders = list(folders)
    for raw in wanted:
        for tag in candidates(raw, fallbacks):
            if has_catalog(folders, tag):
                return tag
    return "en"


def _compiled(path: Path) -> bytes:
    """One `.po` file compiled in memory, again only when the file changes."""
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        cached = _compiled_catalogs.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    with path.open("rb") as handle:
        catalog = read_po(handle, abort_invalid=False)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)  # fuzzy entries are left out, as msgfmt does
    with _cache_lock:
        _compiled_catalogs[path] = (stamp, buffer.getvalue())
    return buffer.getvalue()


# -- Jinja2 -------------------------------------------------------------------------------


def install(env: jinja2.Environment) -> None:
    """`_()`, `{% trans %}`, `long_date`, `date_range`, `number` in the render's language, and
    `language_name` (a language as its readers name it).

    One environment serves every language: the strings and formats are looked up in the
    render's own `translations` and `lang`, so that each edition needs no environment.
    """
    import jinja2  # only when an issue is really rendered, not when it comes from the cache

    @jinja2.pass_context
    def _gettext(context: jinja2.runtime.Context, message: str) -> str:
        return words_of(context).gettext(message)

    @jinja2.pass_context
    def _ngettext(context: jinja2.runtime.Context, singular: str, plural: str,
                  count: int) -> str:
        return words_of(context).ngettext(singular, plural, count)

    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True  # as babel.cfg extracts them: one line each
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update({
        "long_date": jinja2.pass_context(lambda ctx, day: long_date(day, _tag(ctx))),
        "date_range": jinja2.pass_context(
            lambda ctx, entry: date_range(entry.start, entry.end, _tag(ctx))),
        "number": jinja2.pass_context(lambda ctx, value: number(value, _tag(ctx))),
        "language_name": native_name,
    })


def _tag(context: jinja2.runtime.Context) -> str:
    return str(context.get("lang") or "en")


def words_of(context: jinja2.runtime.Context) -> gettext.NullTranslations:
    """The translations a template renders with (English without any)."""
    found = context.get("translations")
    return found if isinstance(found, gettext.NullTranslations) else gettext.NullTranslations()
