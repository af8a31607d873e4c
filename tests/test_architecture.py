"""The house's layout holds: each layer imports only what is below it, and nothing loops.

Every import is read from the source, those inside functions too, so a lazy import cannot
hide a cycle or a dependency that runs the wrong way.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "newsletter"
LEAVES = ("newsletter.grammar", "newsletter.envelope", "newsletter.states",
          "newsletter.errors")
ABOVE_TRANSPORTS = ("newsletter.compose", "newsletter.delivery", "newsletter.cli",
                    "newsletter.audience", "newsletter.web", "newsletter.preview")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> tuple[set[str], set[str]]:
    """(modules of the project, top-level names of other packages) that `path` imports."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    ours, theirs = set(), set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                (ours if alias.name.startswith("newsletter") else theirs).add(
                    alias.name if alias.name.startswith("newsletter")
                    else alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if (node.module or "").startswith("newsletter"):
                    ours.add(node.module or "")
                else:
                    theirs.add((node.module or "").split(".")[0])
                continue
            base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            if node.module is None:  # from . import x: x may be a module
                for alias in node.names:
                    candidate = f"{target}.{alias.name}"
                    ours.add(candidate if candidate in MODULES else target)
            else:
                ours.add(target)
    return ours, theirs


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def reachable(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in GRAPH.get(todo.pop(), (set(), set()))[0]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_the_project_has_no_import_cycle_lazy_imports_included() -> None:
    cycles = [name for name in MODULES if name in reachable(name)
              and not name.endswith("__main__")]
    assert cycles == []


def test_transports_reach_nothing_above_them_not_even_through_another_module() -> None:
    for name in MODULES:
        if within(name, "newsletter.transports"):
            above = sorted(t for t in reachable(name)
                           if any(within(t, layer) for layer in ABOVE_TRANSPORTS))
            assert above == [], f"{name} reaches {above}"


def test_the_leaf_modules_import_nothing_of_the_project() -> None:
    for name in LEAVES:
        assert GRAPH[name][0] == set(), f"{name} imports {GRAPH[name][0]}"


def test_only_the_command_line_imports_click() -> None:
    users = sorted(name for name, (_, theirs) in GRAPH.items()
                   if "click" in theirs and not within(name, "newsletter.cli"))
    assert users == []


def test_the_subscriber_store_and_the_ledger_do_not_load_the_composer() -> None:
    for name in ("newsletter.audience.store", "newsletter.delivery.ledger"):
        assert not any(within(t, "newsletter.compose") for t in reachable(name)), name


def test_loading_the_smtp_transport_loads_neither_jinja2_nor_markdown() -> None:
    probe = ("import sys, newsletter.transports.smtp, newsletter.transports.postmark; "
             "print(sorted(m for m in ('jinja2', 'markdown_it', 'mjml', 'premailer') "
             "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
