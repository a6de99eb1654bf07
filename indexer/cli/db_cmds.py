"""db upgrade, db copy: the index database itself."""

from __future__ import annotations

import click

from indexer.cli.context import AppContext, MoodindexError, emit_json
from indexer.cli.options import text_json_option


def register(group: click.Group) -> None:
    group.add_command(db_group)


@click.group("db")
def db_group() -> None:
    """The index database."""


@db_group.command("upgrade")
@click.pass_obj
def db_upgrade(app: AppContext) -> None:
    """Apply schema migrations (also done automatically on every open)."""
    from indexer.db.location import display

    _ = app.engine
    click.echo(f"{display(app.settings.db)}: schema up to date")


@db_group.command("copy")
@click.option("--to", "to", required=True, metavar="PATH|URL",
              help="Where to copy the index: postgresql://user@host:port/dbname, or a SQLite file.")
@click.option("--replace", is_flag=True, help="Empty a target that already holds an index first (its rows are lost).")
@click.option("--batch", type=click.IntRange(1), default=5000, show_default=True, help="Rows per insert.")
@text_json_option("Report format.")
@click.pass_obj
def db_copy(app: AppContext, to: str, replace: bool, batch: int, fmt: str) -> None:
    """Copy the whole index (--db) into another database, e.g. SQLite into PostgreSQL.

    The target gets the schema first, must be empty (unless --replace), and is written in one
    transaction; the rows of every table are counted on both sides afterwards.  The source is
    only read: point --db (or MOODINDEX_DB) at the target afterwards."""
    from indexer.db.copy import CopyError, copy_index
    from indexer.db.location import LocationError, display, exists, parse_location, scrub
    from indexer.db.session import DatabaseError, open_db

    try:
        target = parse_location(to)
    except LocationError as exc:
        raise MoodindexError(str(exc), exit_code=2) from exc
    source = app.settings.db
    if not exists(source):
        raise MoodindexError(f"no index at {display(source)} to copy")
    if _same(source, target):
        raise MoodindexError(f"{display(target)} is the index being copied")
    try:
        target_engine = open_db(target)
    except DatabaseError as exc:
        raise MoodindexError(str(exc)) from exc

    def progress(table: str, copied: int) -> None:
        if app.verbosity >= 0 and copied // batch % 20 == 0:  # a line every 20 batches of a big table
            click.echo(f"  {table}: {copied:,} rows", err=True)

    try:
        counts = copy_index(app.engine, target_engine, replace=replace, batch=batch, progress=progress)
    except CopyError as exc:
        raise MoodindexError(scrub(f"{display(target)}: {exc}", target)) from exc
    finally:
        target_engine.dispose()
    if fmt == "json":
        emit_json({"source": display(source), "target": display(target),
                   "tables": {c.table: {"source": c.source, "target": c.target} for c in counts}})
        return
    click.echo(f"copied {display(source)} -> {display(target)}")
    click.echo(f"  {'table':14} {'source':>12} {'target':>12}")
    for c in counts:
        click.echo(f"  {c.table:14} {c.source:12,} {c.target:12,}")
    click.echo(f"counts checked: all {len(counts)} tables match; use --db {display(target)} from now on")


def _same(a: object, b: object) -> bool:
    """Whether two locations name one database (a copy onto itself would empty it)."""
    from pathlib import Path

    from indexer.db.location import display, is_server

    if is_server(a) or is_server(b):
        return is_server(a) and is_server(b) and display(a) == display(b)
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
