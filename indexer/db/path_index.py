"""The one rule for "photos.path contains this text", and when the trigram index answers it.

`path:event00042` is a case-insensitive substring of the stored (escaped, see indexer.paths) path:
`ILIKE '%…%'`, which no B-tree serves, so at a million photos every path was read (0.7-1.9 s).
Migration 0008 adds a trigram index, each engine's own:

- PostgreSQL: `pg_trgm`'s GIN index `ix_photos_path_trgm` (path gin_trgm_ops).  Its planner uses
  it for that same ILIKE when its statistics say the text is rare, so the SQL does not change;
  where the extension could not be created the migration says so, and ILIKE reads every path.
- SQLite (3.34+, FTS5): the external-content FTS5 table `photos_path_trigrams` (tokenizer
  `trigram`), kept equal to photos.path by triggers.  SQLite cannot use it for a LIKE on
  `photos`, and has no statistics to tell a rare text from a common one, so `narrowed_texts`
  asks the table how many paths hold the text (stopping at NARROW_MAX).  A rare text becomes
  `photos.id IN (the paths holding its trigrams in a row) AND <the exact LIKE>`: the match is
  Unicode case-folded, so it never drops a photo LIKE finds, and the LIKE keeps the result
  exact.  A common one keeps the plain LIKE, checked row by row while the query walks photos in
  the order it wants and stops early (the list of 100,000s of ids would be built in full by each
  statement).  Without the table (an SQLite without FTS5 or its trigram tokenizer) LIKE alone runs.

Texts shorter than 3 characters have no trigram: they always take the plain (slower) condition.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, and_, column, func, literal_column, select, table
from sqlalchemy.orm import Session

SQLITE_TABLE = "photos_path_trigrams"
SQLITE_TRIGGERS = tuple(f"{SQLITE_TABLE}_{suffix}" for suffix in ("insert", "delete", "update"))
POSTGRES_INDEX = "ix_photos_path_trgm"
MIN_TRIGRAM_CHARS = 3
NARROW_MAX = 10_000  # paths holding a text, at most, for the trigram list to be the faster way on SQLite

_TRIGRAMS = table(SQLITE_TABLE, column("rowid"))


def like_escape(text: str) -> str:
    """`text` as a LIKE pattern matching itself (escape character: backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _holding(stored_text: str) -> Any:
    """Ids of the paths holding every trigram of `stored_text` in a row (one FTS5 string, in which
    every character is literal but `"`, doubled)."""
    phrase = '"' + stored_text.replace('"', '""') + '"'
    return select(_TRIGRAMS.c.rowid).where(literal_column(SQLITE_TABLE).match(phrase))


def path_contains(path_column: Any, stored_text: str, narrow: bool = False) -> ColumnElement[bool]:
    """`path_column` (photos.path) holds `stored_text` (already in the stored, escaped form),
    ignoring case, on every database; `narrow`: first through SQLite's trigram table (only for
    texts `narrowed_texts` returned)."""
    exact = path_column.ilike(f"%{like_escape(stored_text)}%", escape="\\")
    if not narrow or len(stored_text) < MIN_TRIGRAM_CHARS:
        return exact
    return and_(path_column.table.c.id.in_(_holding(stored_text)), exact)


def _has_trigram_table(conn: Any) -> bool:
    """Whether this SQLite file holds the FTS5 trigram table (migration 0008 makes it only where
    SQLite has FTS5 and its trigram tokenizer)."""
    return conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ? AND sql LIKE 'CREATE VIRTUAL TABLE%'",
        (SQLITE_TABLE,)).first() is not None


def sqlite_unusable_reason(conn: Any) -> str | None:
    """Why this SQLite library cannot keep up the file's trigram table, else None.

    The table is made where SQLite has FTS5 and its trigram tokenizer; the same file opened by a
    Python whose SQLite lacks them (another machine, another install) fails on every insert into
    photos, through the triggers, and cannot even drop the table.  Asked once when a file is opened,
    so that it refuses with this reason instead of failing photo by photo."""
    if not _has_trigram_table(conn):
        return None
    try:
        conn.exec_driver_sql(f"SELECT rowid FROM {SQLITE_TABLE} LIMIT 0").all()
    except Exception as exc:  # sqlite3.OperationalError: no such module: fts5 / no such tokenizer
        return str(getattr(exc, "orig", None) or exc)
    return None


def narrowed_texts(session: Session, stored_texts: Iterable[str]) -> frozenset[str]:
    """The texts SQLite's trigram table should narrow: those in at most NARROW_MAX paths (FTS5
    reads its matches in order and stops there).  Empty on PostgreSQL (its planner chooses) and
    on an SQLite file without the table."""
    conn = session.connection()
    texts = [t for t in stored_texts if len(t) >= MIN_TRIGRAM_CHARS]
    if not texts or conn.dialect.name != "sqlite" or not _has_trigram_table(conn):
        return frozenset()
    rare = set()
    for text in texts:
        found = conn.execute(select(func.count()).select_from(
            _holding(text).limit(NARROW_MAX + 1).subquery())).scalar_one()
        if found <= NARROW_MAX:
            rare.add(text)
    return frozenset(rare)
