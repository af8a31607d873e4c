"""The email as a light client, a dark client and a colour-inverting client show it.

A dark client that honours `prefers-color-scheme` applies the theme's dark rules; Gmail's
apps ignore them and invert the light colours themselves, leaving images as they are. The
inverted view imitates that with a CSS filter on the page and the same filter again on each
image: the image's own pixels come back unchanged, and what shows through its transparent
parts is the inverted, now dark, background. Dark text on a transparent PNG disappears
there as it does on a phone.
"""

from __future__ import annotations

import re

SCHEMES = ("light", "dark", "inverted")
_DARK = re.compile(r"prefers-color-scheme\s*:\s*dark", re.IGNORECASE)
_LIGHT = re.compile(r"prefers-color-scheme\s*:\s*light", re.IGNORECASE)
NEVER, ALWAYS = "max-width: 0px", "min-width: 0px"  # media features a frame never/always has
INVERT = "filter: invert(1) hue-rotate(180deg)"
INVERTING_CLIENT = (f'<style data-preview="inverted">html {{ background: #ffffff; {INVERT}; }} '
                    f"img {{ {INVERT}; }}</style>")


def has_dark_rules(html: str) -> bool:
    return bool(_DARK.search(html))


def as_seen(html: str, scheme: str) -> str:
    """`html` with its colour-scheme rules forced on or off, as the `scheme` client shows it."""
    if scheme == "dark":
        return _LIGHT.sub(NEVER, _DARK.sub(ALWAYS, html))
    html = _LIGHT.sub(ALWAYS, _DARK.sub(NEVER, html))  # whatever the viewer's own setting
    if scheme == "inverted":
        html = html.replace("</head>", INVERTING_CLIENT + "</head>", 1)
    return html
