"""Small helpers shared by the command modules."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..config import Settings, load_settings


def settings_for(ctx: click.Context, near: Path | None = None) -> Settings:
    """Settings from --config, else the newsletter.toml nearest to `near` or the cwd."""
    return load_settings((ctx.obj or {}).get("config"), near=near)


def shown(path: Path) -> str:
    """A path as the user would type it: relative to the cwd when it is below it."""
    try:
        return os.path.relpath(path) if not os.path.relpath(path).startswith("..") else str(path)
    except ValueError:
        return str(path)


issue_argument = click.argument("issue", type=click.Path(path_type=Path))
