"""`subscribers ...`: import, export and edit the subscriber lists."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import StoreError
from ..grammar import CONTROL_CHARACTERS, printable

if TYPE_CHECKING:
    from ..audience.store import SubscriberStore
from .common import settings_for, shown

list_option = click.option("--list", "list_name", required=True, metavar="NAME",
                           help="The list, e.g. members (created on first use).")


def db_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="Database file (default: send.database in newsletter.toml, "
                             "or NEWSLETTER_DB).")(function)


def open_store(ctx: click.Context, db: Path | None, create: bool = False) -> SubscriberStore:
    """The store at --db or the configured path; only commands that add may create it."""
    settings = settings_for(ctx)
    path = db or settings.database_path
    if not create and not path.exists():
        error = StoreError(f"{shown(path)}: no subscriber database yet")
        error.hint = "import a list first: newsletter subscribers import FILE.csv --list NAME"
        raise error
    from ..audience.store import store_for  # email-validator is slow to import

    return store_for(settings, path)


@click.group()
def subscribers() -> None:
    """Import, export and edit the subscriber lists.

    \b
    Example:
      newsletter subscribers import members.csv --list members
      newsletter subscribers lists
    """


@subscribers.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@list_option
@click.option("--resubscribe", is_flag=True,
              help="Put back addresses that had unsubscribed (or complained).")
@click.option("--resubscribe-bounced", is_flag=True,
              help="Put back addresses that had bounced.")
@click.option("--dry-run", is_flag=True, help="Report what would change; change nothing.")
@db_option
@click.pass_context
def import_(ctx: click.Context, file: Path, list_name: str, resubscribe: bool,
            resubscribe_bounced: bool, dry_run: bool, db: Path | None) -> None:
    """Add the subscribers of a CSV FILE to a list; bad rows are reported and skipped.

    The file is UTF-8 (with or without BOM), separated by commas or semicolons, with a
    header row naming an email column (email, Email Address, e-mail...). Importing the
    same file again changes nothing; unsubscribed and bounced addresses stay off.
    Exits 0 when the import ran, even if rows were skipped.

    \b
    Example:
      newsletter subscribers import mailchimp-export.csv --list members
      newsletter subscribers import partners.csv --list partners --dry-run
    """
    from ..audience.csvio import import_csv

    with open_store(ctx, db, create=True) as store:
        summary = import_csv(store, file, list_name, where=shown(file), resubscribe=resubscribe,
                             resubscribe_bounced=resubscribe_bounced, dry_run=dry_run)
    for row, reason in sorted(summary.problems + summary.notes):
        click.echo(f"{shown(file)}:{row}: {reason}", err=True)
    verb = "would import" if dry_run else "imported"
    click.echo(f"{verb} {shown(file)} into {list_name}: {summary}")
    if summary.smtputf8:
        click.echo(f"{summary.smtputf8} address(es) have non-ASCII before the @: only a mail "
                   "server that offers SMTPUTF8 can take them; others count them as failed")
    if summary.problems:
        click.echo("fix the rows above and import the file again; the other rows are "
                   "imported and will show as unchanged", err=True)


@subscribers.command()
@list_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write (default: standard output).")
@db_option
@click.pass_context
def export(ctx: click.Context, list_name: str, output: Path | None, db: Path | None) -> None:
    """Write the active subscribers of a list as CSV, ready to import again.

    Cells that a spreadsheet would run as a formula (starting with = + - @) get a
    leading apostrophe; import removes it.

    \b
    Example:
      newsletter subscribers export --list members -o members.csv
    """
    from ..audience.csvio import export_csv

    with open_store(ctx, db) as store:
        store.count_active([list_name])  # an unknown list fails before the file is created
        if output is None:
            export_csv(store, list_name, sys.stdout)
            return
        with open(output, "w", newline="", encoding="utf-8-sig") as file:  # BOM: for Excel
            count = export_csv(store, list_name, file)
    click.echo(f"exported {count} subscribers of {list_name} to {shown(output)}")


@subscribers.command()
@click.argument("email")
@list_option
@click.option("--name", default="", help="Display name, e.g. 'Ana Lopez'.")
@click.option("--language", default=None, metavar="TAG",
              help="The subscriber's language, e.g. fr or fr-BE: they get that edition.")
@click.option("--field", "fields", multiple=True, metavar="KEY=VALUE",
              help="An extra field for templates, e.g. city=Lyon; repeat for several.")
@click.option("--resubscribe", is_flag=True, help="Even if they had unsubscribed.")
@click.option("--resubscribe-bounced", is_flag=True, help="Even if the address had bounced.")
@db_option
@click.pass_context
def add(ctx: click.Context, email: str, list_name: str, name: str, language: str | None,
        fields: tuple[str, ...],
        resubscribe: bool, resubscribe_bounced: bool, db: Path | None) -> None:
    """Add EMAIL to a list, or update its name and fields.

    \b
    Example:
      newsletter subscribers add ana@example.org --list members --name "Ana Lopez"
      newsletter subscribers add ana@example.org --list members --field city=Lyon
      newsletter subscribers add jean@example.org --list members --language fr
    """
    extra = dict(_field(text) for text in fields)
    if language is not None:
        extra["language"] = _language(language)
    with open_store(ctx, db, create=True) as store:
        outcome = store.add(email, list_name, name, extra, resubscribe=resubscribe,
                            resubscribe_bounced=resubscribe_bounced)
        if outcome == "suppressed":
            raise _suppressed(store, email, list_name)
    click.echo(f"{email}: {outcome} on {list_name}")


def _language(text: str) -> str:
    from ..compose.i18n import language_tag

    tag = language_tag(text)
    if tag is None:
        raise click.BadParameter(f"{text!r}: expected a language such as fr, fr-BE or de",
                                 param_hint="--language")
    return tag


def _field(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise click.BadParameter(f"{text!r}: expected KEY=VALUE, e.g. city=Lyon",
                                 param_hint="--field")
    return key.strip().lower().replace(" ", "_"), value.strip()


def _suppressed(store: SubscriberStore, email: str, list_name: str) -> StoreError:
    found = store.get(email)
    if found is None and (erased := store.erased_at(email)):
        error = StoreError(f"{email} was erased on request on {erased[:10]}; not added")
        error.hint = "only they can subscribe again, on the sign-up form"
        return error
    if found is None or found.status == "active":  # unsubscribed from this list only
        error = StoreError(f"{email} unsubscribed from {list_name}; not added")
    else:
        reason = found.status_reason or "no reason given"
        error = StoreError(f"{email} is {found.status} since "
                           f"{found.status_changed_at:%Y-%m-%d} ({reason}); not added")
    flag = "--resubscribe-bounced" if found and found.status == "bounced" else "--resubscribe"
    error.hint = f"if they asked to be mailed again, add {flag}"
    return error


@subscribers.command()
@click.argument("email")
@list_option
@db_option
@click.pass_context
def remove(ctx: click.Context, email: str, list_name: str, db: Path | None) -> None:
    """Take EMAIL off a list without suppressing it (a later import may add it again).

    To make sure they are never mailed, use `unsubscribe` instead.

    \b
    Example:
      newsletter subscribers remove ana@example.org --list partners
    """
    with open_store(ctx, db) as store:
        if not store.remove(email, list_name):
            error = StoreError(f"{email} is not on the list {list_name}")
            error.hint = f"see the lists it is on: newsletter subscribers show {email}"
            raise error
    click.echo(f"{email}: removed from {list_name}")


@subscribers.command()
@click.argument("email")
@click.option("--list", "list_name", default=None, metavar="NAME",
              help="Unsubscribe from this list only (default: from everything).")
@click.option("--reason", default="asked the newsletter team", show_default=True,
              help="Kept with the address.")
@db_option
@click.pass_context
def unsubscribe(ctx: click.Context, email: str, list_name: str | None, reason: str,
                db: Path | None) -> None:
    """Stop mailing EMAIL and keep it suppressed, even if a spreadsheet brings it back.

    An address that is not in the database yet is recorded as unsubscribed.

    \b
    Example:
      newsletter subscribers unsubscribe ana@example.org --reason "phone call"
      newsletter subscribers unsubscribe ana@example.org --list partners
    """
    with open_store(ctx, db, create=True) as store:
        store.unsubscribe(email, list_name, reason)
    click.echo(f"{email}: unsubscribed from {list_name or 'every list'}")


@subscribers.command("lists")
@db_option
@click.pass_context
def lists(ctx: click.Context, db: Path | None) -> None:
    """Show each list with its subscribers counted by status.

    \b
    Example:
      newsletter subscribers lists
    """
    with open_store(ctx, db) as store:
        counts = store.lists()
    if not counts:
        click.echo("no lists yet; import one: newsletter subscribers import FILE.csv --list NAME")
        return
    width = max(12, *(len(c.name) for c in counts))
    click.echo(f"{'list':<{width}} {'active':>9} {'unsubscribed':>12} {'bounced':>9} "
               f"{'complained':>10} {'total':>9}")
    for c in counts:
        click.echo(f"{c.name:<{width}} {c.active:>9,} {c.unsubscribed:>12,} {c.bounced:>9,} "
                   f"{c.complained:>10,} {c.total:>9,}")


@subscribers.command()
@click.argument("email")
@db_option
@click.pass_context
def show(ctx: click.Context, email: str, db: Path | None) -> None:
    """Show what the database knows about EMAIL: status, fields, lists, and the bounces
    and complaints recorded about the messages it was sent.

    \b
    Example:
      newsletter subscribers show ana@example.org
    """
    from ..database import open_database
    from ..inbound.history import subscriber_events

    with open_store(ctx, db) as store:
        found = store.get(email)
        if found is None:
            raise StoreError(f"{email}: not in the database")
        memberships = store.memberships(found.id)
        connection = open_database(store.path)
        try:
            events = subscriber_events(connection, found.id)
        finally:
            connection.close()
    click.echo(f"{found.email} (id {found.id})")
    name = printable(found.name) if CONTROL_CHARACTERS.search(found.name) else found.name
    click.echo(f"  name:   {name or '-'}")
    click.echo(f"  status: {found.status} since {found.status_changed_at:%Y-%m-%d %H:%M} UTC"
               + (f" ({found.status_reason})" if found.status_reason else ""))
    if found.fields:
        click.echo("  fields: " + ", ".join(
            f"{k}={printable(v) if CONTROL_CHARACTERS.search(v) else v}"
            for k, v in sorted(found.fields.items())))
    for m in memberships:
        click.echo(f"  list {m.list_name}: {m.status} since {m.changed_at:%Y-%m-%d}"
                   + (f" ({m.reason})" if m.reason else ""))
    if not memberships:
        click.echo("  on no list")
    for event in events:
        when = dt.datetime.fromtimestamp(event.occurred_at or event.recorded_at, dt.UTC)
        click.echo(f"  {when:%Y-%m-%d %H:%M} {event.issue}: {event.kind} "
                   + (f"{event.status} " if event.status else "") + f"via {event.source}"
                   + (f": {event.diagnostic[:120]}" if event.diagnostic else ""))


@subscribers.command("export-person")
@click.argument("email")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write (default: standard output).")
@db_option
@click.pass_context
def export_person(ctx: click.Context, email: str, output: Path | None, db: Path | None) -> None:
    """Print everything held about EMAIL as JSON: the answer to an access request.

    Name, fields, status, lists, consent records, every message the send ledger
    recorded for the address (issue, list, outcome, the server's reply) and the bounces
    and complaints that came back about them.

    \b
    Example:
      newsletter subscribers export-person ana@example.org -o ana.json
    """
    import json

    from ..audience.privacy import export_person as export

    with open_store(ctx, db) as store:
        record = export(store, email)
    text = json.dumps(record, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        with open(output, "w", encoding="utf-8") as file:
            file.write(text)
        click.echo(f"wrote what is held about {email} to {shown(output)}")
    if not record["held"]:
        click.echo(f"nothing is held about {email}"
                   + (" (erased: only a keyed hash is kept)" if "erased_at" in record else ""),
                   err=True)


@subscribers.command()
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@db_option
@click.pass_context
def erase(ctx: click.Context, email: str, yes: bool, db: Path | None) -> None:
    """Delete everything held about EMAIL, and keep it from ever being added again.

    The answer to an erasure request: the subscriber, their lists, consents, send
    history and bounce history are deleted; a keyed hash of the address (made with
    NEWSLETTER_SECRET) stays, so that no later import or `add` can bring them back. Only
    they can, by signing up again on the form and confirming.

    \b
    Example:
      newsletter subscribers export-person ana@example.org -o ana.json   # first, if asked
      newsletter subscribers erase ana@example.org --yes
    """
    from ..audience.privacy import erase_person

    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("erasing cannot be undone; add --yes to erase without a "
                                   "question")
        click.confirm(f"Erase everything held about {email}? This cannot be undone",
                      abort=True)
    with open_store(ctx, db, create=True) as store:
        counts = erase_person(store, email)
    if counts["subscriber"]:
        click.echo(f"{email}: erased (the subscriber, {counts['lists']} list membership(s), "
                   f"{counts['consents']} consent record(s), {counts['sends']} send record(s), "
                   f"{counts['bounces']} bounce or complaint record(s))")
    else:
        click.echo(f"{email}: nothing was held")
    click.echo("only a keyed hash of the address is kept: no import can add it again; "
               "backups made before now still hold it")
