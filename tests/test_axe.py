"""axe-core, the accessibility engine, on the built sample issue and a rich test issue.

axe-core comes from npm (installed into .cache/axe-core the first time) and is injected
into headless Chromium by Playwright; it runs on the email as `build` writes it, in light
and in dark colours. No violation may be "serious" or "critical"; the minor ones are printed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, run_cli

pytestmark = pytest.mark.browser
AXE_DIR = REPO / ".cache" / "axe-core"
AXE_VERSION = "4"
BLOCKING = {"serious", "critical"}
RUN = """async () => {
    const result = await axe.run(document, {resultTypes: ["violations"]});
    return result.violations.map(v => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.map(n => n.target.join(" ")).slice(0, 3), count: v.nodes.length,
    }));
}"""


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe.min.js from npm, installed once into .cache/axe-core."""
    script = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
    if not script.is_file():
        npm = shutil.which("npm")
        if npm is None:
            if os.environ.get("NEWSLETTER_REQUIRE_BROWSER"):
                pytest.fail("npm is needed to install axe-core (apt-get install npm)")
            pytest.skip("npm not installed (apt-get install npm)")
        subprocess.run([npm, "install", "--prefix", str(AXE_DIR), "--no-save", "--no-audit",
                        "--no-fund", "--loglevel=error", f"axe-core@{AXE_VERSION}"],
                       check=True, timeout=600, capture_output=True)
    return script.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sample issue and the rich test issue, built as `newsletter build` writes them."""
    project = tmp_path_factory.mktemp("project")
    shutil.copy(REPO / "newsletter.toml", project / "newsletter.toml")
    shutil.copytree(REPO / "issues", project / "issues")
    shutil.copy(REPO / "tests" / "data" / "rich-issue.yaml", project / "issues" / "2020-03.yaml")
    imported = run_cli("subscribers", "import", str(REPO / "examples" / "members.csv"),
                       "--list", "members", cwd=project)  # check wants the lists it names
    assert imported.returncode == 0, imported.stderr
    pages = {}
    for slug in ("2020-01", "2020-03"):
        result = run_cli("check", f"issues/{slug}.yaml", cwd=project)
        assert result.returncode == 0 and result.stderr == "", result.stderr
        result = run_cli("build", f"issues/{slug}.yaml", cwd=project)
        assert result.returncode == 0, result.stderr
        pages[slug] = project / "build" / slug / "email.html"
    return pages


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("slug", ["2020-01", "2020-03"])
def test_axe_finds_no_serious_or_critical_violation(browser, axe_source: str,  # type: ignore[no-untyped-def]
                                                    built: dict[str, Path], slug: str,
                                                    scheme: str) -> None:
    context = browser.new_context(viewport={"width": 640, "height": 900}, color_scheme=scheme)
    try:
        page = context.new_page()
        page.goto(built[slug].as_uri(), wait_until="load")
        page.add_script_tag(content=axe_source)
        violations = page.evaluate(RUN)
    finally:
        context.close()
    print(f"\naxe-core on {slug} ({scheme}): {len(violations)} rule(s) with findings")
    for violation in violations:
        print(f"  {violation['impact']}: {violation['id']} ({violation['count']} element(s)): "
              f"{violation['help']}; e.g. {', '.join(violation['nodes'])}")
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    assert blocking == [], blocking


def test_axe_would_catch_a_theme_with_pale_text(browser, axe_source: str,  # type: ignore[no-untyped-def]
                                                built: dict[str, Path]) -> None:
    """The harness can fail: the same check on a theme with grey-on-white text does."""
    project = built["2020-01"].parents[2]
    theme = project / "templates" / "pale"
    shutil.copytree(REPO / "templates" / "default", theme)
    template = theme / "newsletter.mjml.j2"
    template.write_text(template.read_text(encoding="utf-8").replace(
        'color="#1f2933"', 'color="#9aa5b1"'), encoding="utf-8")
    issue = project / "issues" / "pale.yaml"
    issue.write_text((project / "issues" / "2020-01.yaml").read_text(encoding="utf-8")
                     .replace("slug: 2020-01", "slug: pale\ntemplate: pale"), encoding="utf-8")
    result = run_cli("build", "issues/pale.yaml", cwd=project)
    assert result.returncode == 0, result.stderr
    page = browser.new_page()
    try:
        page.goto((project / "build" / "pale" / "email.html").as_uri(), wait_until="load")
        page.add_script_tag(content=axe_source)
        violations = page.evaluate(RUN)
    finally:
        page.close()
    assert {v["id"]: v["impact"] for v in violations}.get("color-contrast") == "serious"
