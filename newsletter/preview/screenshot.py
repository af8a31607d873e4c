"""PNGs of the email at desktop and phone widths, rendered by headless Chromium.

Reviewers are often sent pictures rather than links. Chromium sees only the email and its
images: Playwright answers every request itself and refuses the rest, so nothing is
fetched from the internet.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

from ..errors import ConfigError

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


def capture(html: str, files: dict[str, Path], out_dir: Path, stem: str,
            chromium: Path) -> list[Path]:
    """Write `<stem>-desktop.png` and `<stem>-mobile.png`, full height; images under assets/."""
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
        if url == ORIGIN + "email.html":
            route.fulfill(body=html, content_type="text/html; charset=utf-8")
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
            for view, width in VIEWS.items():
                page = browser.new_page(viewport={"width": width, "height": 800},
                                        java_script_enabled=False)
                page.route("**/*", answer)
                page.goto(ORIGIN + "email.html", wait_until="load")
                target = out_dir / f"{stem}-{view}.png"
                page.screenshot(path=target, full_page=True)
                written.append(target)
            browser.close()
    except Error as exc:
        raise ConfigError(f"Chromium ({chromium}) failed: {exc.message.splitlines()[0]}") from None
    return written
