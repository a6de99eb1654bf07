"""Engine setup, migrated on open: a SQLite file (owner-only, WAL, foreign keys, BEGIN IMMEDIATE
for writers) or a PostgreSQL server (psycopg 3).  The SQLite-only settings live here, beside the
one factory that decides which applies."""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from indexer.db.location import POSTGRES_EXTRA_HINT, DbLocation, display, is_server, remember_secret, scrub
from indexer.db.schema_version import HEAD_REVISION

BUSY_TIMEOUT_MS = 30_000
MIGRATION_LOCK_KEY = 0x6D6F6F64  # "mood": the PostgreSQL advisory lock held while migrating
T = TypeVar("T")
log = logging.getLogger(__name__)


class DatabaseError(RuntimeError):
    """The index cannot be opened or migrated; the message says why."""


def migrations_dir() -> Path:
    return Path(str(resources.files("indexer.bundled_migrations")))


# SQLite's extended result codes -> what the user can do about it
_HINTS = {"SQLITE_FULL": "the disk is full", "SQLITE_IOERR": "a write failed: is the disk full or failing?",
          "SQLITE_READONLY": "the index or its folder is read-only", "SQLITE_CORRUPT": "the index file is damaged",
          "SQLITE_NOTADB": "the file is not a moodindex index", "SQLITE_BUSY": "another process holds the index",
          "SQLITE_LOCKED": "another process holds the index", "SQLITE_CANTOPEN": "the index cannot be opened"}


def database_error_message(exc: BaseException) -> str | None:
    """One line for a failure of the index database (disk full, read-only, damaged...), or None
    when `exc` is something else.  SQLAlchemy's own text adds SQL and a web link; this names the
    cause, what to do, and that what was committed before is kept (SQLite's journal sees to that)."""
    import sqlite3

    from sqlalchemy.exc import DBAPIError

    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if _is_server_connection_error(orig):
        first = scrub(str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__)
        return (f"the index database server failed: {first}"
                "; photos stored before this are kept, and the next run continues from there")
    if not isinstance(orig, sqlite3.Error):
        return None
    code = getattr(orig, "sqlite_errorname", "") or ""
    hint = next((h for name, h in _HINTS.items() if code == name or code.startswith(name + "_")), None)
    return (f"the index database failed: {orig}" + (f" ({hint})" if hint else "")
            + "; photos stored before this are kept, and the next run continues from there")


def _is_server_connection_error(orig: BaseException) -> bool:
    """A lost or refused PostgreSQL connection (psycopg's OperationalError), without importing
    psycopg when it is not installed."""
    return type(orig).__module__.startswith("psycopg") and any(
        cls.__name__ == "OperationalError" for cls in type(orig).__mro__)


def _make_private_dirs(folder: Path) -> None:
    """Create `folder` and any missing parents as 0700, whatever the umask."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue  # created meanwhile by someone else: theirs, left as it is
        os.chmod(d, 0o700)  # mkdir's mode is filtered through the umask


def _create_private(path: Path) -> None:
    """Create the DB file readable by its owner only, before SQLite opens it."""
    _make_private_dirs(path.parent)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def _tighten(path: Path) -> None:
    """An existing index (and its -wal/-shm, whose mode SQLite copies from it) readable by others:
    make it owner-only, as a new one is.  A file we do not own is left alone (chmod would fail)."""
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            st = p.stat()
            if st.st_mode & 0o077 and st.st_uid == os.geteuid():
                os.chmod(p, st.st_mode & 0o700)
        except OSError:
            continue


def make_engine(location: DbLocation) -> Engine:
    """The one engine factory: a path is a SQLite file, a `postgresql://` URL a server."""
    return _server_engine(location) if is_server(location) else _sqlite_engine(Path(location))


def _server_engine(url_text: str) -> Engine:
    """PostgreSQL through psycopg 3.  Statement parameters stay out of error messages (they are
    photo paths, not secrets, but an error line should name the cause, not the data); a connection
    dropped while idle is noticed before use (pre-ping) instead of failing a write."""
    from sqlalchemy.engine import make_url

    remember_secret(url_text)
    url = make_url(url_text)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    elif url.drivername != "postgresql+psycopg":
        raise DatabaseError(f"{display(url_text)}: only the psycopg driver is supported (postgresql://...)")
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise DatabaseError(POSTGRES_EXTRA_HINT) from exc
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


def _sqlite_engine(db_path: Path) -> Engine:
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


def stored_revision(engine: Engine) -> str | None:
    """The schema revision recorded in the database; None when there is none yet or it cannot be read
    (then `upgrade` lets Alembic look, and report a real failure)."""
    from sqlalchemy.exc import DBAPIError

    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    except DBAPIError:
        return None


def upgrade(engine: Engine) -> None:
    """Apply Alembic migrations up to head (a no-op when already there).  An index already at
    HEAD_REVISION is recognised with one query, without importing Alembic (db/schema_version.py)."""
    if stored_revision(engine) == HEAD_REVISION:
        return
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
        if conn.dialect.name == "postgresql":
            # several processes opening a fresh database at once (two index runs and a watcher):
            # one migrates, the others wait here and then find the schema at head
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
            if MigrationContext.configure(conn).get_current_revision() == head:
                return
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def open_db(location: DbLocation | str, migrate: bool = True) -> Engine:
    """Open (creating if needed) and migrate the index at `location`: a path or a server URL.
    Errors name the location with its password masked."""
    if isinstance(location, str):  # as typed: a URL stays a string, anything else becomes a Path
        from indexer.db.location import parse_location

        location = parse_location(location)
    if is_server(location):
        return _open_server(location, migrate)
    return _open_sqlite(Path(location).expanduser(), migrate)


def _open_server(url: str, migrate: bool) -> Engine:
    engine = make_engine(url)
    try:
        if migrate:
            upgrade(engine)
        else:
            with engine.connect():
                pass
    except Exception as exc:
        engine.dispose()
        if type(exc).__module__.startswith(("sqlalchemy", "psycopg", "alembic")):
            orig = getattr(exc, "orig", None) or exc
            detail = " ".join(str(orig).split()) or type(orig).__name__
            raise DatabaseError(scrub(f"cannot open the index at {display(url)}: {detail}", url)) from None
        raise
    return engine


def _open_sqlite(path: Path, migrate: bool) -> Engine:
    try:
        if not path.exists():
            _create_private(path)
        else:
            _tighten(path)
        engine = make_engine(path)
        if migrate:
            upgrade(engine)
        _refuse_unusable_path_index(engine, path)
    except OSError as exc:
        raise DatabaseError(f"cannot open the index at {path}: {exc.strerror or exc}") from exc
    except Exception as exc:  # sqlite3.DatabaseError: not a database, disk I/O error...
        if type(exc).__module__.startswith(("sqlalchemy", "sqlite3", "alembic")):
            # the driver's own message: SQLAlchemy's adds the SQL and a "Background on this error" link
            raise DatabaseError(f"cannot open the index at {path}: {getattr(exc, 'orig', None) or exc}") from exc
        raise
    return engine


def _refuse_unusable_path_index(engine: Engine, path: Path) -> None:
    """Refuse, once at open, a file whose trigram table this SQLite cannot keep up: otherwise every
    photo insert would fail through its triggers."""
    import sqlite3

    from indexer.db.path_index import sqlite_unusable_reason

    with engine.connect() as conn:
        reason = sqlite_unusable_reason(conn)
    if reason is not None:
        engine.dispose()
        raise DatabaseError(
            f"cannot open the index at {path}: it has a trigram index of paths that this Python's SQLite "
            f"{sqlite3.sqlite_version} cannot use ({reason}); open it with a Python whose SQLite has FTS5 "
            "with the trigram tokenizer (3.34 or later, as Debian, Ubuntu and python.org builds have); "
            "the file is left as it was")


# What a database asks to be retried: a serialization failure, a deadlock, and (under READ COMMITTED)
# a row with the same unique key inserted by another writer since this transaction looked.
RETRY_SQLSTATES = frozenset({"40001", "40P01", "23505"})
MAX_ATTEMPTS = 8
BACKOFF_START_S, BACKOFF_CAP_S = 0.05, 2.0


def is_retryable(exc: BaseException) -> bool:
    """A failure that re-running the whole transaction resolves (PostgreSQL's SQLSTATE says so)."""
    from sqlalchemy.exc import DBAPIError

    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in RETRY_SQLSTATES


def in_transaction(engine: Engine, work: Callable[[Session], T]) -> T:
    """Run `work` in one write transaction, from the start again when the database asks for it
    (several writers on one PostgreSQL server), with a bounded, jittered exponential backoff.  `work`
    must be safe to re-run: it reads what it needs inside, and changes nothing outside the session."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with session_scope(engine) as session:
                return work(session)
        except Exception as exc:
            if attempt == MAX_ATTEMPTS or not is_retryable(exc):
                raise
            delay = min(BACKOFF_CAP_S, BACKOFF_START_S * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
            log.debug("transaction retried (%s), attempt %d", getattr(exc.orig, "sqlstate", "?"), attempt + 1)
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One write transaction: committed on success, rolled back on any error."""
    with sessionmaker(engine, expire_on_commit=False)() as session, session.begin():
        session.connection(execution_options={"write": True})  # BEGIN IMMEDIATE
        yield session
