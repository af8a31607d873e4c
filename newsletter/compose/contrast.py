"""Text contrast on the final HTML, as a light client and as a dark client render it.

The inlined HTML carries most colours on its elements; `<style>` rules add to them, and a
dark client adds the `@media (prefers-color-scheme: dark)` rules on top. This applies the
cascade a mail client applies (`!important` rules, then inline styles, then the other
rules, then `bgcolor`), inherits colour and size, and measures each piece of visible text
against the background it sits on, with WCAG's formula: 4.5:1, or 3:1 for large text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import lxml.html
from cssselect import SelectorError, SelectorSyntaxError, parse
from lxml.cssselect import CSSSelector

Colour = tuple[int, int, int]
NORMAL_RATIO, LARGE_RATIO = 4.5, 3.0
_STYLE = re.compile(r"(?is)<style\b[^>]*>(.*?)</style>")
_COMMENT = re.compile(r"(?s)/\*.*?\*/")
_MEDIA = re.compile(r"@media([^{]*)\{")
_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
_HEX = re.compile(r"#([0-9a-f]{3}|[0-9a-f]{6})\b", re.IGNORECASE)
_RGB = re.compile(r"rgba?\(\s*(\d+)[\s,]+(\d+)[\s,]+(\d+)", re.IGNORECASE)
_NAMED = {"white": (255, 255, 255), "black": (0, 0, 0), "red": (255, 0, 0),
          "gray": (128, 128, 128), "grey": (128, 128, 128), "silver": (192, 192, 192),
          "navy": (0, 0, 128), "blue": (0, 0, 255), "yellow": (255, 255, 0)}
_BOLD_TAGS = {"strong", "b", "h1", "h2", "h3", "h4", "h5", "h6", "th"}
_DEFAULT_SIZES = {"h1": 32.0, "h2": 24.0, "h3": 18.72, "h4": 16.0, "small": 13.0}
_SKIP = {"head", "style", "script", "title", "meta", "link"}
WATCHED = ("color", "background-color", "background", "font-size", "font-weight", "display",
           "opacity", "max-height")
SCHEMES = {"light": (255, 255, 255), "dark": (18, 18, 18)}  # the client's own canvas


@dataclass(frozen=True)
class Run:
    """A piece of visible text as the client renders it."""

    text: str
    colour: Colour
    background: Colour
    size: float  # px
    bold: bool

    @property
    def needed(self) -> float:
        return LARGE_RATIO if _large(self.size, self.bold) else NORMAL_RATIO


@dataclass(frozen=True)
class Low:
    """One colour pair below the threshold, and the text that uses it."""

    scheme: str
    colour: Colour
    background: Colour
    ratio: float
    needed: float
    samples: tuple[str, ...]


def relative_luminance(rgb: Colour) -> float:
    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def ratio(first: Colour, second: Colour) -> float:
    high, low = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def hex_colour(rgb: Colour) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def low_contrast(html: str) -> list[Low]:
    """Every colour pair whose contrast is too low, light rendering first, then dark."""
    found: list[Low] = []
    for scheme in SCHEMES:
        pairs: dict[tuple[Colour, Colour, float], list[str]] = {}
        for run in text_runs(html, scheme):
            if ratio(run.colour, run.background) < run.needed:
                pairs.setdefault((run.colour, run.background, run.needed), []).append(run.text)
        found += [Low(scheme, colour, background, round(ratio(colour, background), 2), needed,
                      tuple(samples)) for (colour, background, needed), samples in pairs.items()]
    return found


@lru_cache(maxsize=4)
def text_runs(html: str, scheme: str) -> tuple[Run, ...]:
    """Each visible run of text, with its colour, background and size, in document order."""
    return tuple(_runs(html, scheme))


def _runs(html: str, scheme: str) -> Iterator[Run]:
    root = lxml.html.document_fromstring(html)
    rules = _rules(html, dark=scheme == "dark")
    # keyed by element: a key keeps lxml from handing out a new proxy (and id) for it
    matched: dict[object, list[tuple[tuple[int, ...], str, str]]] = {}
    for order, (selector, declarations) in enumerate(rules):
        compiled = _selector(selector)
        if compiled is None:
            continue  # `:root`, pseudo-elements: nothing a text colour depends on here
        match, specificity = compiled
        elements = match(root)
        for important, name, value in declarations:
            for element in elements:
                matched.setdefault(element, []).append(
                    ((important, 0, *specificity, order), name, value))
    canvas = SCHEMES[scheme]
    default = (0, 0, 0) if scheme == "light" else (255, 255, 255)
    yield from _walk(root, matched, {"color": default, "background": canvas,
                                     "size": 16.0, "bold": False})


@lru_cache(maxsize=512)
def _selector(selector: str) -> tuple[CSSSelector, tuple[int, int, int]] | None:
    """A selector compiled once per process: the theme's rules are the same every build."""
    try:
        return CSSSelector(selector), parse(selector)[0].specificity()
    except (SelectorError, SelectorSyntaxError, IndexError):
        return None


def _walk(element, matched, inherited):  # type: ignore[no-untyped-def]
    if not isinstance(element.tag, str) or element.tag in _SKIP:
        return
    style = _computed(element, matched.get(element, []))
    if style.get("display", "").strip() == "none" or style.get("opacity", "").strip() in (
            "0", "0.0") or style.get("max-height", "").strip() in ("0", "0px"):
        return  # the preheader and other hidden text: no reader sees it
    state = dict(inherited)
    colour = _colour(style.get("color", ""))
    background = _colour(style.get("background-color", "")) or _colour(
        style.get("background", "")) or _colour(element.get("bgcolor", ""))
    if colour:
        state["color"] = colour
    if background:
        state["background"] = background
    state["size"] = _size(style.get("font-size", ""), inherited["size"], element.tag)
    weight = style.get("font-weight", "").strip()
    state["bold"] = (weight in ("bold", "bolder") or (weight.isdigit() and int(weight) >= 600)
                     or (not weight and (inherited["bold"] or element.tag in _BOLD_TAGS)))
    own = " ".join((element.text or "").split())
    if own:
        yield Run(own, state["color"], state["background"], state["size"], state["bold"])
    for child in element:
        yield from _walk(child, matched, state)
        tail = " ".join((child.tail or "").split())
        if tail:
            yield Run(tail, state["color"], state["background"], state["size"], state["bold"])


def _computed(element, rules: list) -> dict[str, str]:  # type: ignore[type-arg]
    """The winning declaration of each watched property for one element."""
    candidates = list(rules)
    for important, name, value in _declarations(element.get("style", "")):
        candidates.append(((important, 1, 9, 9, 9, 10**6), name, value))
    chosen: dict[str, tuple[tuple[int, ...], str]] = {}
    for priority, name, value in candidates:
        if name in WATCHED and (name not in chosen or priority >= chosen[name][0]):
            chosen[name] = (priority, value)
    return {name: value for name, (_, value) in chosen.items()}


def _rules(html: str, *, dark: bool) -> list[tuple[str, list[tuple[int, str, str]]]]:
    """(selector, declarations) from every `<style>`: top-level rules, and the dark ones."""
    rules = []
    for block in _STYLE.findall(html):
        css = _COMMENT.sub("", block)
        for outside, media, inside in _split_media(css):
            if media is not None and not (dark and re.search(
                    r"prefers-color-scheme\s*:\s*dark", media, re.IGNORECASE)):
                continue
            for selectors, body in _RULE.findall(inside if media is not None else outside):
                declarations = _declarations(body)
                for selector in selectors.split(","):
                    if selector.strip() and not selector.strip().startswith("@"):
                        rules.append((selector.strip(), declarations))
    return rules


def _split_media(css: str) -> Iterator[tuple[str, str | None, str]]:
    """('rules outside', None, '') once, then ('', media query, 'rules inside') per @media."""
    outside, position = [], 0
    for match in _MEDIA.finditer(css):
        if match.start() < position:
            continue
        depth, end = 1, match.end()
        while depth and end < len(css):
            depth += {"{": 1, "}": -1}.get(css[end], 0)
            end += 1
        outside.append(css[position:match.start()])
        yield "", match.group(1), css[match.end():end - 1]
        position = end
    outside.append(css[position:])
    yield "".join(outside), None, ""


def _declarations(text: str) -> list[tuple[int, str, str]]:
    found = []
    for part in text.split(";"):
        name, _, value = part.partition(":")
        if not value:
            continue
        important = 1 if "!important" in value else 0
        found.append((important, name.strip().lower(), value.replace("!important", "").strip()))
    return found


def _colour(value: str) -> Colour | None:
    value = value.strip().lower()
    if not value or value in ("transparent", "inherit", "initial", "none"):
        return None
    if match := _HEX.search(value):
        digits = match.group(1)
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)
    if (match := _RGB.search(value)) and "rgba(" in value and value.rstrip(")").endswith(
            (",0", ", 0", " 0")):
        return None  # fully transparent
    if match:
        return tuple(min(255, int(c)) for c in match.groups())  # type: ignore[return-value]
    return _NAMED.get(value.split()[0])


def _size(value: str, parent: float, tag: str) -> float:
    value = value.strip().lower()
    try:
        if value.endswith("px"):
            return float(value[:-2])
        if value.endswith("pt"):
            return float(value[:-2]) * 4 / 3
        if value.endswith("em"):
            return float(value[:-3 if value.endswith("rem") else -2]) * (
                16.0 if value.endswith("rem") else parent)
        if value.endswith("%"):
            return float(value[:-1]) * parent / 100
    except ValueError:
        pass
    return _DEFAULT_SIZES.get(tag, parent)


def _large(size: float, bold: bool) -> bool:
    """WCAG's large text: 18 pt (24 px), or 14 pt (about 18.7 px) in bold."""
    return size >= 24 or (bold and size >= 18.66)
