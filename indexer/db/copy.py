"""Copy a whole index into another database: an existing SQLite index into PostgreSQL (or any
location into any other), nothing lost, the counts checked.

The target is migrated to the same schema first (open_db does that), must be empty unless the
caller asks to replace what it holds, and receives every table of the models in dependency order,
in batches, inside one transaction: a failure half-way leaves the target as it was.  The source
is read inside one transaction too, so a watcher writing to it meanwhile cannot make the copy a
mixture of two states.  Primary keys are copied as they are (faces keep their photo, names their
face); PostgreSQL's id sequences are then moved past them so the next insert does not collide.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Table, delete, func, insert, select, text

from indexer.db.models import Base

DEFAULT_BATCH = 5000


class CopyError(RuntimeError):
    """The copy was refused or did not check out; the target is left as it was."""


@dataclass(frozen=True)
class TableCount:
    table: str
    source: int
    target: int

    @property
    def matches(self) -> bool:
        return self.source == self.target


def tables() -> list[Table]:
    """Every table of the index, parents before children (photos before faces...)."""
    return list(Base.metadata.sorted_tables)


def copy_index(source: Engine, target: Engine, *, replace: bool = False, batch: int = DEFAULT_BATCH,
               progress: Callable[[str, int], None] | None = None) -> list[TableCount]:
    """Copy every row of `source` into `target` (both opened, i.e. migrated, by the caller) and
    return the rows counted per table on both sides after the copy.  Raises CopyError when the
    target already holds rows (unless `replace`: they are deleted first, in the same
    transaction) or when a count differs (the transaction is then rolled back)."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    with _snapshot(source) as src, _write(target) as dst:
        held = {t.name: n for t in tables() if (n := _count(dst, t))}
        if held and not replace:
            listed = ", ".join(f"{name} {n:,}" for name, n in held.items())
            raise CopyError(f"the target already holds an index ({listed} rows); "
                            "use --replace to empty it first (its rows are lost)")
        for table in reversed(tables()):
            dst.execute(delete(table))
        for table in tables():
            copied = 0
            for rows in _batches(src, table, batch):
                dst.execute(insert(table), rows)
                copied += len(rows)
                if progress is not None:
                    progress(table.name, copied)
        if dst.dialect.name == "postgresql":
            _advance_sequences(dst)
        counts = [TableCount(t.name, _count(src, t), _count(dst, t)) for t in tables()]
        if bad := [c for c in counts if not c.matches]:
            raise CopyError("the copy did not check out, nothing was written: "
                            + ", ".join(f"{c.table} {c.source:,} in the source but {c.target:,} copied"
                                        for c in bad))
    return counts


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """One read transaction over the source: every table read as of one moment."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():  # SQLite: a deferred BEGIN; its snapshot starts with the first read (WAL)
            yield conn


@contextmanager
def _write(engine: Engine) -> Iterator[Connection]:
    """One write transaction over the target (SQLite: BEGIN IMMEDIATE, see session.py)."""
    with engine.connect() as conn:
        conn = conn.execution_options(write=True)
        with conn.begin():
            yield conn


def _batches(conn: Connection, table: Table, size: int) -> Iterator[list[dict]]:
    """The table's rows in primary-key order, `size` at a time, by key ranges (each batch a fresh
    query that the primary key index answers), so memory stays flat on millions of rows."""
    key = list(table.primary_key.columns)[0]
    last = None
    while True:
        stmt = select(table).order_by(key).limit(size)
        if last is not None:
            stmt = stmt.where(key > last)
        rows = [dict(r._mapping) for r in conn.execute(stmt)]
        if not rows:
            return
        yield rows
        last = rows[-1][key.name]
        if len(rows) < size:
            return


def _count(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _advance_sequences(conn: Connection) -> None:
    """Rows were inserted with their ids: set each id sequence to the highest id copied (or back
    to its start on an empty table), so that the next row written gets a fresh id."""
    for table in tables():
        key = list(table.primary_key.columns)[0]
        conn.execute(text(
            f"SELECT setval(pg_get_serial_sequence(:table, :column), COALESCE(MAX({key.name}), 1), "
            f"MAX({key.name}) IS NOT NULL) FROM {table.name}"), {"table": table.name, "column": key.name})
