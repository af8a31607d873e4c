"""`check`'s rule for images that vanish in a dark inbox: dark pixels on a transparent PNG.

Gmail's apps invert an email's light background but leave its images alone, so a logo in
black on a transparent background ends up black on near-black. Pillow reads the pixels.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ..errors import Problem
from .contrast import relative_luminance
from .issue import Issue
from .locate import Locator

SAMPLE_SIDE = 160  # pixels each way: enough to judge, cheap for a 4000 px photo
TRANSPARENT_SHARE = 0.05  # this much of the image shows the background through it
DARK_SHARE = 0.5  # "mostly dark": more than half of the opaque pixels
DARK_LUMINANCE = 0.1  # relative luminance (WCAG) below which a pixel counts as dark


def check_images(issue: Issue, shown: str) -> list[Problem]:
    """A warning for each item image that would disappear on an inverted background."""
    locator = Locator(issue)
    findings = []
    for index, item in enumerate(issue.items):
        if item.image and dark_on_transparent(item.image.path):
            findings.append(Problem(
                shown, locator.line("items", index, "image", "src"), f"items[{index}].image",
                f"{item.image.src} is dark on a transparent background: clients that invert "
                "colours (Gmail's apps) show it on near-black, where it disappears; give the "
                "PNG a light background of its own, or a light outline", "warning"))
    return findings


def dark_on_transparent(path: Path) -> bool:
    """A PNG with transparent parts whose opaque pixels are mostly dark."""
    try:
        with Image.open(path) as image:
            if image.format != "PNG" or not _has_alpha(image):
                return False
            image.thumbnail((SAMPLE_SIDE, SAMPLE_SIDE))
            data = image.convert("RGBA").tobytes()
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
        return False  # not for this rule to say; the image simply does not show
    pixels = list(zip(data[0::4], data[1::4], data[2::4], data[3::4], strict=True))
    transparent = sum(1 for *_, alpha in pixels if alpha < 32)
    opaque = [(r, g, b) for r, g, b, alpha in pixels if alpha >= 224]
    if transparent < TRANSPARENT_SHARE * len(pixels) or not opaque:
        return False
    dark = sum(1 for rgb in opaque if relative_luminance(rgb) < DARK_LUMINANCE)
    return dark > DARK_SHARE * len(opaque)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info

