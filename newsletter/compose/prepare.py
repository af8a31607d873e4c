"""Compose, lint, refuse: the one step every command that sends or approves goes through."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Settings
from ..errors import NotReady, Problem
from .context import IssueContext
from .issue import Issue
from .lint import check
from .render import ComposedEmail, compose


@dataclass(frozen=True)
class Prepared:
    """A composed issue and everything `check` found in it (warnings only, unless a test)."""

    composed: ComposedEmail
    findings: list[Problem]


def prepare(issue: Issue, settings: Settings, shown: str, *, test: bool = False,
            context: IssueContext | None = None) -> Prepared:
    """Compose `issue` and lint the result; raise NotReady if it has errors.

    A test composition is never refused: a reviewer's copy is how a broken issue is seen.
    """
    composed = compose(issue, settings, test=test)
    findings = check(composed, settings, shown, None if test else context)
    errors = [f for f in findings if f.severity == "error"]
    if errors and not test:
        raise NotReady(shown, findings)
    return Prepared(composed, findings)
