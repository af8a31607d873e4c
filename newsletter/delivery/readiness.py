"""Is this issue ready to send from here? The issue, composed and linted, against the
subscriber store, the other issue files and the send already recorded under its slug.

`check`, `send`, `approve` and `send --due` all ask through here, so that they agree;
`build` asks only about the slug (it would overwrite another issue's build).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from ..audience.store import SubscriberStore
from ..compose.context import IssueContext, PastSend, slug_findings
from ..compose.folder import previous_sibling, slug_holders
from ..compose.issue import Issue, load_issue
from ..compose.prepare import Prepared, prepare
from ..compose.render import ComposedEmail
from ..config import Settings
from ..database import open_database
from ..errors import IssueFileError
from ..states import SendState
from .report import summarise
from .sends import find_send, find_versions

Shown = Callable[[Path], str]


def ready(path: Path, settings: Settings, shown: Shown, *, test: bool = False,
          new_version: bool = False) -> Prepared:
    """Load, compose and check the issue at `path`; raise NotReady if it has errors."""
    issue = load_issue(path, shown(path))
    return prepare_in_context(issue, settings, shown, test=test, new_version=new_version)


def prepare_in_context(issue: Issue, settings: Settings, shown: Shown, *, test: bool = False,
                       new_version: bool = False) -> Prepared:
    """`prepare`, with the rules that look beyond the file (none for a test copy)."""
    context = None if test else gather_context(issue, settings, shown, new_version=new_version)
    return prepare(issue, settings, shown(issue.source), test=test, context=context)


def refuse_taken_slug(composed: ComposedEmail, settings: Settings, shown: Shown) -> None:
    """Raise IssueFileError if another issue file or another issue's send holds the slug."""
    context = gather_context(composed.issue, settings, shown, with_audience=False)
    errors = [f for f in slug_findings(composed, context, shown(composed.issue.source))
              if f.severity == "error"]
    if errors:
        raise IssueFileError(errors)


def gather_context(issue: Issue, settings: Settings, shown: Shown, *,
                   new_version: bool = False, with_audience: bool = True) -> IssueContext:
    """Read what `check` compares the issue with; the database is never created here."""
    database = settings.database_path
    lists: frozenset[str] | None = None
    fields: frozenset[str] = frozenset()
    past = None
    if database.exists():
        if with_audience:
            with SubscriberStore(database) as store:
                lists = frozenset(counts.name for counts in store.lists())
                chosen = [name for name in issue.lists if name in lists] or sorted(lists)
                fields = frozenset(store.field_names(chosen)) if chosen else frozenset()
        past = _past_send(database, issue.slug)
    previous_path = previous_sibling(issue.source, issue.date)
    previous = None
    if previous_path is not None:
        try:
            previous = load_issue(previous_path, shown(previous_path))
        except IssueFileError:  # its own check reports it
            previous = None
    return IssueContext(
        shown=shown(issue.source), database=shown(database), lists=lists, fields=fields,
        slug_holders=tuple(shown(p) for p in slug_holders(issue.source, issue.slug)),
        past_send=past, previous=previous,
        previous_shown=shown(previous_path) if previous_path else "", new_version=new_version)


def _past_send(database: Path, slug: str) -> PastSend | None:
    connection = open_database(database)
    try:
        send = find_send(connection, slug)
        if send is None:
            return None
        versions = find_versions(connection, send.id)
        summary = summarise(connection, slug, limit=0)
    finally:
        connection.close()
    first = versions[0] if versions else None
    started = dt.datetime.fromtimestamp(send.started_at or send.created_at, dt.UTC)
    sent = summary.counts.get("sent", 0) if summary else 0
    return PastSend(send.content_hash, first.issue_date if first else None,
                    first.source if first else None,
                    f"started {started:%Y-%m-%d %H:%M} UTC, {send.state}, {sent} sent",
                    send.state is SendState.COMPLETE)
