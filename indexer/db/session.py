"""Engine setup: one SQLite file, owner-only, WAL, foreign keys, migrated on open."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

BUSY_TIMEOUT_MS = 30_000


class DatabaseError(RuntimeError):
    """The index cannot be opened or migrated; the message says why."""


def migrations_dir() -> Path:
    return Path(str(resources.files("indexer.bundled_migrations")))


def _create_private(path: Path) -> None:
    """Create the DB file readable by its owner only, before SQLite opens it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def make_engine(db_path: Path) -> Engine:
    """Engine with the pragmas every connection needs (WAL lets queries run while the watcher writes)."""
    engine = create_engine(f"sqlite:///{db_path}", future=True)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001 (DB-API connection)
        dbapi_conn.isolation_level = None  # let SQLAlchemy's BEGIN below control transactions
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:  # noqa: ANN001
        # Readers: DEFERRED (never block, WAL).  Writers: IMMEDIATE, so a read-then-write
        # transaction waits (busy_timeout) for the write lock instead of failing with
        # "database is locked" when another process committed in between.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

    return engine


def upgrade(engine: Engine) -> None:
    """Apply Alembic migrations up to head (a no-op when already there)."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with engine.connect() as conn:
        if MigrationContext.configure(conn).get_current_revision() == head:
            return
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def open_db(db_path: Path | str, migrate: bool = True) -> Engine:
    """Open (creating if needed) and migrate the index at `db_path`."""
    path = Path(db_path).expanduser()
    try:
        if not path.exists():
            _create_private(path)
        engine = make_engine(path)
        if migrate:
            upgrade(engine)
    except OSError as exc:
        raise DatabaseError(f"cannot open the index at {path}: {exc.strerror or exc}") from exc
    except Exception as exc:  # sqlite3.DatabaseError: not a database, disk I/O error...
        if type(exc).__module__.startswith(("sqlalchemy", "sqlite3", "alembic")):
            raise DatabaseError(f"cannot open the index at {path}: {exc}") from exc
        raise
    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One write transaction: committed on success, rolled back on any error."""
    with sessionmaker(engine, expire_on_commit=False)() as session, session.begin():
        session.connection(execution_options={"write": True})  # BEGIN IMMEDIATE
        yield session
