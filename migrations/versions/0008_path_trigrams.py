"""a trigram index over photos.path, so `path:text` does not read every path

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

`path:event00042` is ILIKE '%event00042%', which no B-tree serves: at a million photos every path
was read (benchmarks/query_scale.py; indexer/db/path_index.py says how the query uses this).

PostgreSQL: pg_trgm's GIN index.  The extension is created when missing, which needs the CREATE
privilege on the database (pg_trgm is a trusted extension since PostgreSQL 13); where that is
refused, or the extension is not installed on the server, the index is left out with a warning
saying what to run, and `path:` still works by reading every path.

SQLite: an external-content FTS5 table with the trigram tokenizer (SQLite 3.34+), filled from
photos and kept in step by triggers on insert, delete and update of path.  An SQLite without it
gets neither, with a warning; the query then uses LIKE alone.  A file that has them, opened later
by an SQLite without FTS5, is refused at open with the reason (indexer.db.path_index).  A later migration that rebuilds
the photos table (batch mode "move and copy") must create the triggers again.
"""
import logging
import sqlite3

from alembic import op
from sqlalchemy.exc import DBAPIError

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

TABLE = "photos_path_trigrams"
INDEX = "ix_photos_path_trgm"
_SQLITE_UP = (
    f"CREATE VIRTUAL TABLE {TABLE} USING fts5(path, content='photos', content_rowid='id', tokenize='trigram')",
    f"INSERT INTO {TABLE}({TABLE}) VALUES ('rebuild')",
    f"CREATE TRIGGER {TABLE}_insert AFTER INSERT ON photos BEGIN "
    f"INSERT INTO {TABLE}(rowid, path) VALUES (new.id, new.path); END",
    f"CREATE TRIGGER {TABLE}_delete AFTER DELETE ON photos BEGIN "
    f"INSERT INTO {TABLE}({TABLE}, rowid, path) VALUES ('delete', old.id, old.path); END",
    f"CREATE TRIGGER {TABLE}_update AFTER UPDATE OF id, path ON photos BEGIN "
    f"INSERT INTO {TABLE}({TABLE}, rowid, path) VALUES ('delete', old.id, old.path); "
    f"INSERT INTO {TABLE}(rowid, path) VALUES (new.id, new.path); END",
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        schema = _pg_trgm_schema(bind)
        if schema is not None:
            op.execute(f'CREATE INDEX IF NOT EXISTS {INDEX} ON photos USING gin (path "{schema}".gin_trgm_ops)')
        return
    if bind.dialect.name != "sqlite":
        return
    try:
        with bind.begin_nested():
            bind.exec_driver_sql(_SQLITE_UP[0])
    except DBAPIError as exc:  # "no such module: fts5", "no such tokenizer: trigram"
        log.warning("SQLite %s cannot make a trigram index (%s): `path:` filters will read every path "
                    "(SQLite 3.34 or later with FTS5 can)", sqlite3.sqlite_version, getattr(exc, "orig", exc))
        return
    for statement in _SQLITE_UP[1:]:
        bind.exec_driver_sql(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")  # the extension stays: other databases may use it
    elif bind.dialect.name == "sqlite":
        for suffix in ("insert", "delete", "update"):
            bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS {TABLE}_{suffix}")
        bind.exec_driver_sql(f"DROP TABLE IF EXISTS {TABLE}")


def _pg_trgm_schema(bind) -> str | None:  # noqa: ANN001
    """The schema holding pg_trgm, creating the extension when it is missing; None (and a warning
    saying what to run) where this role or server cannot."""
    found = ("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
             "WHERE e.extname = 'pg_trgm'")
    schema = bind.exec_driver_sql(found).scalar()
    if schema is not None:
        return schema
    try:
        with bind.begin_nested():  # a refusal must not abort the migration's transaction
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DBAPIError as exc:
        reason = " ".join(str(getattr(exc, "orig", exc)).split())
        log.warning("PostgreSQL extension pg_trgm could not be created (%s): `path:` filters will read every "
                    "path. To index them, have the database owner run `CREATE EXTENSION pg_trgm;` and then "
                    "`CREATE INDEX %s ON photos USING gin (path gin_trgm_ops);`", reason, INDEX)
        return None
    return bind.exec_driver_sql(found).scalar()
