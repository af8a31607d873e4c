"""PNGs of the email at desktop and phone widths, light, dark or inverted, by headless Chromium.

Reviewers are often sent pictures rather than links. Chromium sees only the email and its
images: Playwright answers every request itself and refuses the rest, so nothing is
fetched from the internet.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

from ..errors import ConfigError
from .schemes import as_seen

VIEWS = {"desktop": 640, "mobile": 375}  # the theme's body width; a common phone width
DEFAULT_CHROMIUM = "/usr/bin/chromium"  # Debian's package; Playwright's download is not used
ORIGIN = "http://newsletter.preview/"  # never resolved: requests are answered in-process
# No sandbox, so that it starts as root in containers and CI; it shows our own email only,
# with JavaScript off.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def chromium_path(env: dict[str, str]) -> Path:
    """Debian's Chromium, or NEWSLETTER_CHROMIUM; a ConfigError saying how to install it."""
    path = Path(env.get("NEWSLETTER_CHROMIUM") or DEFAULT_CHROMIUM)
    if not path.is_file():
        error = ConfigError(f"screenshots need headless Chromium, not found at {path}")
        error.hint = ("install it with: apt-get install chromium (Debian, Ubuntu), or set "
                      "NEWSLETTER_CHROMIUM to a Chromium binary")
        raise error
    return path


def capture(html: str, files: dict[str, Path], out_dir: Path, stem: str, chromium: Path,
            schemes: tuple[str, ...] = ("light",)) -> list[Path]:
    """Write `<stem>-desktop.png` and `<stem>-mobile.png`, full height; images under assets/.

    A dark or inverted view adds its name: `<stem>-mobile-dark.png`, `<stem>-mobile-inverted.png`.
    """
    try:
        from playwright.sync_api import Error, Route, sync_playwright
    except ImportError:
        error = ConfigError("screenshots need Playwright, which is not installed")
        error.hint = ("install it with: pip install 'newsletter[screenshot]' "
                      "(or pip install playwright)")
        raise error from None

    def answer(route: Route) -> None:
        url = route.request.url
        image = files.get(unquote(url.removeprefix(ORIGIN + "assets/")))
        if url.startswith(ORIGIN + "email.html?scheme="):
            scheme = url.rsplit("=", 1)[1]
            route.fulfill(body=as_seen(html, scheme), content_type="text/html; charset=utf-8")
        elif url.startswith(ORIGIN + "assets/") and image is not None:
            route.fulfill(path=image)
        else:
            route.abort()

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(chromium),
                                                 args=CHROMIUM_ARGS)
            for scheme in schemes:
                for view, width in VIEWS.items():
                    page = browser.new_page(viewport={"width": width, "height": 800},
                                            java_script_enabled=False,
                                            color_scheme="dark" if scheme == "dark" else "light")
                    page.route("**/*", answer)
                    page.goto(f"{ORIGIN}email.html?scheme={scheme}", wait_until="load")
                    suffix = "" if scheme == "light" else f"-{scheme}"
                    target = out_dir / f"{stem}-{view}{suffix}.png"
                    page.screenshot(path=target, full_page=True)
                    written.append(target)
            browser.close()
    except Error as exc:
        raise ConfigError(f"Chromium ({chromium}) failed: {exc.message.splitlines()[0]}") from None
    return written
