"""Checks that compare an issue with what lies around it: the subscriber store, the other
issue files, the send already recorded under its slug, and last month's issue.

The caller gathers an `IssueContext` (delivery/readiness.py reads the database and the
folder); these rules only compare, so that composing never depends on the database.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import Problem
from .issue import Issue
from .render import ComposedEmail

RECIPIENT_FIELDS = frozenset({"name", "email", "unsubscribe_url", "preferences_url", "web_url"})

Add = Callable[..., None]  # add(message, field="", line=None, severity="error")


@dataclass(frozen=True)
class PastSend:
    """The send the ledger has under an issue's slug."""

    content_hash: str
    issue_date: str | None  # of the issue it was started for; None for old sends
    source: str | None  # that issue's file name
    description: str  # "started 2020-01-10 09:00 UTC, complete, 4 sent"
    complete: bool


@dataclass(frozen=True)
class IssueContext:
    """What `check` compares an issue with, besides the issue itself."""

    shown: str  # the issue file, as the user would type its path
    database: str  # the subscriber database, likewise
    lists: frozenset[str] | None  # its lists; None when there is no database yet
    fields: frozenset[str]  # the extra fields its subscribers have
    slug_holders: tuple[str, ...] = ()  # other issue files that hold this issue's slug
    past_send: PastSend | None = None
    previous: Issue | None = None  # last month's issue
    previous_shown: str = ""
    new_version: bool = False  # the user resumes deliberately with changed content


def check_context(composed: ComposedEmail, context: IssueContext, shown_path: str,
                  edition: bool = False) -> list[Problem]:
    """Every finding of the rules below, errors and warnings alike.

    An edition (a translation of the issue) shares the main file's slug, lists and
    history, so only its own placeholders are checked.
    """
    findings: list[Problem] = []

    def add(message: str, field: str = "", line: int | None = None,
            severity: str = "error") -> None:
        findings.append(Problem(shown_path, line, field, message, severity))

    rules = (check_placeholders,) if edition else (
        check_slug, check_lists, check_placeholders, check_unchanged)
    for rule in rules:
        rule(composed, context, add)
    return findings


def slug_findings(composed: ComposedEmail, context: IssueContext,
                  shown_path: str) -> list[Problem]:
    """Only the slug rule: what `build` refuses (it would overwrite another build)."""
    findings: list[Problem] = []
    check_slug(composed, context,
               lambda message, field="", line=None, severity="error": findings.append(
                   Problem(shown_path, line, field, message, severity)))
    return findings


def check_slug(composed: ComposedEmail, context: IssueContext, add: Add) -> None:
    """One slug, one issue: the build folder, the web address and the ledger are keyed on it."""
    issue = composed.issue
    line = issue.lines.get("slug")
    own = issue.source.stem
    advice = (f"give this issue its own slug (slug: {own}, as its file name)"
              if own != issue.slug else "give this issue its own slug")
    if context.slug_holders:
        add(f"{issue.slug!r} is the slug of {', '.join(context.slug_holders)}: both would share "
            f"one build folder, web address and send; {advice}", "slug", line)
        return
    past = context.past_send
    if past is None or past.content_hash == composed.content_hash or context.new_version:
        return
    other = past.source or "another issue"
    if past.issue_date is not None and past.issue_date != issue.date.isoformat():
        add(f"{issue.slug!r} is taken by the send of {other}, the issue of {past.issue_date} "
            f"({past.description}): sending this one would continue that send; {advice}",
            "slug", line)
    elif past.complete:
        add(f"changed since its send under {issue.slug!r} ({past.description}); nothing more "
            "will be sent (a new issue needs its own slug)", "slug", line, "warning")
    else:
        add(f"changed since its send under {issue.slug!r} started ({past.description}); to "
            f"send the rest this version, deliberately: newsletter send {context.shown} "
            f"--new-version (a new issue needs its own slug instead)", "slug", line)


def check_lists(composed: ComposedEmail, context: IssueContext, add: Add) -> None:
    """Every list of `lists:` exists in the subscriber store, or the send fails on the day."""
    issue = composed.issue
    for index, name in enumerate(issue.lists):
        field = f"lists[{index}]"
        line = next((n for n, f in issue.locate(name) if f == field), issue.lines.get("lists"))
        if context.lists is None:
            add(f"no list {name!r}: there is no subscriber database yet ({context.database}); "
                f"import the list first: newsletter subscribers import FILE.csv --list {name}",
                field, line)
        elif name not in context.lists:
            close = difflib.get_close_matches(name, sorted(context.lists), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            add(f"no list {name!r} in {context.database}{hint}; lists: "
                f"{', '.join(sorted(context.lists)) or 'none yet'}", field, line)


def check_placeholders(composed: ComposedEmail, context: IssueContext, add: Add) -> None:
    """A `%%field%%` that no subscriber has is a typo (`%%nmae%%`), sent to everyone."""
    issue = composed.issue
    known = RECIPIENT_FIELDS | context.fields
    for name in sorted(composed.fields - RECIPIENT_FIELDS):
        found = issue.locate(f"%%{name}%%")
        line, field = found[0] if found else (None, "")
        if name in context.fields:
            add(f"placeholder %%{name}%% will be empty for subscribers without a '{name}' "
                "field", field, line, "warning")
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        hint = f" (did you mean %%{close[0]}%%?)" if close else ""
        where = "" if found else " (it comes from the theme)"
        add(f"placeholder %%{name}%%: no subscriber in {context.database} has a '{name}' field"
            f"{hint}{where}; known: {', '.join(f'%%{k}%%' for k in sorted(known))}",
            field, line)


def check_unchanged(composed: ComposedEmail, context: IssueContext, add: Add) -> None:
    """An item or box whose text is last month's was most likely forgotten."""
    previous = context.previous
    if previous is None:
        return
    earlier = {_same(x.body): x for x in (*previous.items, *previous.highlights)}
    for kind, boxes in (("items", composed.issue.items),
                        ("highlights", composed.issue.highlights)):
        for index, box in enumerate(boxes):
            match = earlier.get(_same(box.body))
            if match is None:
                continue
            node = box.body_node
            line = node.line_of(0) if node is not None else box.line
            where = f"{context.previous_shown}:{match.body_node.line_of(0)}" \
                if match.body_node is not None else context.previous_shown
            add(f"unchanged since {previous.slug} ({where}): update it, or remove it",
                f"{kind}[{index}].body", line, "warning")


def _same(text: str) -> str:
    return " ".join(text.split())
