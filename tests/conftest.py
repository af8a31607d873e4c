"""Fixtures shared by the test modules: a throwaway project, the CLI as a subprocess, a browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SEED = REPO / "tests" / "data" / "efus-newsletter-2020-01.txt"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


@pytest.fixture(autouse=True, scope="session")
def composed_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The CLI's composed-email cache, for the processes tests start: never the user's own."""
    folder = tmp_path_factory.mktemp("xdg-cache")
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(folder)
    yield folder
    if before is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = before


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the repository's newsletter (newsletter.toml and issues/) in a temp folder."""
    shutil.copy(REPO / "newsletter.toml", tmp_path / "newsletter.toml")
    shutil.copytree(REPO / "issues", tmp_path / "issues")
    return tmp_path


def configure(project: Path, **send: object) -> None:
    """Set [send] options of the test project's newsletter.toml."""
    path = project / "newsletter.toml"
    text = path.read_text(encoding="utf-8")
    for key, value in send.items():
        line = f"{key} = {json.dumps(value)}"
        text, found = re.subn(rf"(?m)^{key} = .*$", line, text)
        if not found:
            text = text.replace("[send]\n", f"[send]\n{line}\n")
    path.write_text(text, encoding="utf-8")


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, input: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `newsletter ARGS` as a real process, the way a user or cron runs it."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "newsletter", *args], cwd=cwd, env=full_env,
                          input=input, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli(project: Path):  # type: ignore[no-untyped-def]
    """`cli("build", "issues/2020-01.yaml")` runs the CLI inside the throwaway project."""
    def run(*args: str, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("cwd", project)
        return run_cli(*args, **kwargs)

    return run


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Chromium from Debian, driven by Playwright; skipped only outside CI."""
    if not CHROMIUM.exists():
        if os.environ.get("NEWSLETTER_REQUIRE_BROWSER"):
            pytest.fail("NEWSLETTER_REQUIRE_BROWSER is set but /usr/bin/chromium is missing")
        pytest.skip("headless Chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A throwaway RSA key file and the DNS TXT record that publishes it."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("dkim") / "test.private"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
