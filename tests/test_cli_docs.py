"""Every command explains itself: an example in its --help, and a mention in the README."""

from __future__ import annotations

import click
import pytest
from conftest import REPO

from newsletter.cli import cli


def commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += commands(command, f"{prefix}{name} ")
        else:
            found.append((f"{prefix}{name}", command))
    return found


@pytest.mark.parametrize(("name", "command"), commands(cli), ids=lambda v: str(v))
def test_every_command_has_an_example_and_is_in_the_readme(name: str,
                                                           command: click.Command) -> None:
    assert "Example:" in (command.help or ""), f"newsletter {name} --help has no example"
    assert f"newsletter {name}" in (REPO / "README.md").read_text(encoding="utf-8")
