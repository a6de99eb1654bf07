"""`path:` through the trigram index (migration 0008): the same photos as reading every path, the
index in the plan, kept in step with inserts, moves and deletes, and migrated up and down."""

from __future__ import annotations

import logging
from datetime import date

import pytest
from sqlalchemy import select, text

from indexer.db import path_index
from indexer.db.models import Photo
from indexer.db.session import migrations_dir, open_db, session_scope
from indexer.query import engine as query_engine
from indexer.query import filters, parse, search
from tests.factories import add_photo

TODAY = date(2024, 3, 15)
NAMES = ["/lib/Trips/solo.jpg", "/lib/trips 2019/pair.jpg", "/lib/100%_real/x.jpg", "/lib/100xxreal/y.jpg",
         "/lib/back\\slash/z.jpg", "/lib/bad\udcffbyte/w.jpg", '/lib/say "cheese"/v.jpg', "/lib/Ärger/u.jpg",
         "/lib/ärger/t.jpg", "/lib/a_b/s.jpg", "/lib/axb/r.jpg", "/lib/event00042/IMG_1.jpg",
         "/lib/event00420/IMG_2.jpg"]
# (query, the names it must find) with the trigram index, with it switched off, on both databases
CASES = [
    ("path:trips", ["/lib/Trips/solo.jpg", "/lib/trips 2019/pair.jpg"]),  # ASCII case ignored
    ("path:TRIPS/SOLO", ["/lib/Trips/solo.jpg"]),
    ("path:100%_real", ["/lib/100%_real/x.jpg"]),  # % and _ are literal
    ("path:a_b", ["/lib/a_b/s.jpg"]),
    ("path:%", ["/lib/100%_real/x.jpg"]),  # shorter than a trigram
    ("path:_", ["/lib/100%_real/x.jpg", "/lib/a_b/s.jpg", "/lib/event00042/IMG_1.jpg", "/lib/event00420/IMG_2.jpg"]),
    ("path:k\\s", ["/lib/back\\slash/z.jpg"]),  # a backslash, stored doubled
    ("path:\\", ["/lib/back\\slash/z.jpg"]),
    ("path:\udcffb", ["/lib/bad\udcffbyte/w.jpg"]),  # a byte that is not UTF-8, stored as \xff
    ("path:\\xff", []),  # the stored text of that byte is not what the name holds
    ("""path:'"cheese"'""", ['/lib/say "cheese"/v.jpg']),  # quotes inside (an FTS5 string doubles them)
    ("path:'trips 2019'", ["/lib/trips 2019/pair.jpg"]),
    ("path:ärger", None),  # folded or not by the database's locale, but the same with the index as without
    ("path:ri", ["/lib/Trips/solo.jpg", "/lib/trips 2019/pair.jpg"]),
    ("path:event00042", ["/lib/event00042/IMG_1.jpg"]),
    ("path:event0004", ["/lib/event00042/IMG_1.jpg"]),
    ("path:lib path:solo", ["/lib/Trips/solo.jpg"]),
    ("path:nowhere", []),
]


def _library(engine) -> None:  # noqa: ANN001
    with session_scope(engine) as s:
        for name in NAMES:
            add_photo(s, name, faces=[("happy", 0.6)])


def _found(engine, query: str, emotion: str = "") -> list[str]:  # noqa: ANN001
    with session_scope(engine) as s:
        return sorted(m.photo.path for m in search(s, parse(f"{emotion} {query}".strip(), TODAY), limit=None))


def _without_index(engine) -> None:  # noqa: ANN001
    """The same database read without its trigram index: SQLite's LIKE alone, PostgreSQL with the
    GIN index dropped."""
    if engine.dialect.name == "sqlite":  # as an SQLite without FTS5's trigram tokenizer has it
        with engine.begin() as conn:
            for trigger in path_index.SQLITE_TRIGGERS:
                conn.exec_driver_sql(f"DROP TRIGGER {trigger}")
            conn.exec_driver_sql(f"DROP TABLE {path_index.SQLITE_TABLE}")
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP INDEX {path_index.POSTGRES_INDEX}")


@pytest.mark.parametrize("emotion", ["", "happy"])
def test_the_index_finds_what_reading_every_path_finds(engine, emotion: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _library(engine)
    monkeypatch.setattr(query_engine, "FEW_PHOTOS", 0)  # the face streams too, not only the few-photos path
    with_index = {q: _found(engine, q, emotion) for q, _ in CASES}
    _without_index(engine)
    without = {q: _found(engine, q, emotion) for q, _ in CASES}
    assert with_index == without
    assert {q: with_index[q] for q, want in CASES if want is not None} == {
        q: sorted(want) for q, want in CASES if want is not None}
    assert "/lib/ärger/t.jpg" in with_index["path:ärger"]


def _plan(engine, stmt) -> str:  # noqa: ANN001
    with engine.connect() as conn:
        compiled = stmt.compile(conn)
        if conn.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), tuple(compiled.params.values()))
            return "\n".join(r[-1] for r in rows)
        # a handful of rows: reading them all wins; leave the planner the choice of bitmap scans only,
        # which the trigram index alone can serve (at a million photos it picks it by itself:
        # benchmarks/query_scale.py --plans)
        conn.exec_driver_sql("SET enable_seqscan = off")
        conn.exec_driver_sql("SET enable_indexscan = off")
        rows = conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params)
        return "\n".join(r[0] for r in rows)


def test_the_plan_uses_the_trigram_index_and_short_texts_do_without(engine, monkeypatch: pytest.MonkeyPatch) -> None:
    _library(engine)
    where = "photos_path_trigrams VIRTUAL TABLE" if engine.dialect.name == "sqlite" else path_index.POSTGRES_INDEX
    def candidates(q: str):  # noqa: ANN202 (the condition the path: filter adds, as the engine plans it)
        with session_scope(engine) as s:
            query = query_engine.with_path_plan(s, parse(q, TODAY))
        return select(Photo.id).where(*filters.filter_for("path").conditions(query))

    assert where in _plan(engine, candidates("happy path:event00042"))
    if engine.dialect.name == "sqlite":
        assert where not in _plan(engine, candidates("happy path:ev"))  # no trigram in two characters
        # newest first (no emotion): the listed photos sorted, not the newest-first index walked until they come
        with session_scope(engine) as s:
            newest = query_engine.date_select(query_engine.with_path_plan(s, parse("path:event00042", TODAY)))
        assert where in _plan(engine, newest) and "ix_photos_status_newest" not in _plan(engine, newest)
        monkeypatch.setattr(path_index, "NARROW_MAX", 1)  # in more paths than this: walked, not listed
        assert where not in _plan(engine, candidates("happy path:trips"))
        assert where in _plan(engine, candidates("happy path:event00042"))
        _without_index(engine)
        assert where not in _plan(engine, candidates("happy path:event00042"))


def test_the_index_follows_inserts_moves_and_deletes(engine) -> None:
    _library(engine)
    with session_scope(engine) as s:
        moved = s.scalars(select(Photo).where(Photo.path == "/lib/event00042/IMG_1.jpg")).one()
        moved.path = "/lib/event77777/IMG_1.jpg"
        gone = s.scalars(select(Photo).where(Photo.path == "/lib/axb/r.jpg")).one()
        s.delete(gone)
        add_photo(s, "/lib/new\\dir/IMG_9.jpg", faces=[("sad", 0.7)])
    assert _found(engine, "path:event00042") == []
    assert _found(engine, "path:event77777") == ["/lib/event77777/IMG_1.jpg"]
    assert _found(engine, "path:axb") == []
    assert _found(engine, "path:w\\dir") == ["/lib/new\\dir/IMG_9.jpg"]
    if engine.dialect.name == "sqlite":  # FTS5 compares its index with photos, row by row
        with engine.begin() as conn:
            conn.exec_driver_sql(f"INSERT INTO {path_index.SQLITE_TABLE}({path_index.SQLITE_TABLE}, rank) "
                                 "VALUES ('integrity-check', 1)")


def _alembic(engine, action: str, revision: str) -> None:  # noqa: ANN001
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, action)(cfg, revision)


def _trigram_objects(engine) -> set[str]:  # noqa: ANN001
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            return {r[0] for r in conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE name LIKE 'photos\\_path\\_trigrams%' ESCAPE '\\'")}
        return {r[0] for r in conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'photos' "
                                                "AND schemaname = current_schema() AND indexname = :n"),
                                           {"n": path_index.POSTGRES_INDEX})}


def test_migration_0008_down_and_up_again(db_location) -> None:  # noqa: ANN001
    engine = open_db(db_location)
    _library(engine)
    expected = {"photos_path_trigrams", *path_index.SQLITE_TRIGGERS} if engine.dialect.name == "sqlite" \
        else {path_index.POSTGRES_INDEX}
    assert expected <= _trigram_objects(engine)
    _alembic(engine, "downgrade", "0007")
    assert _trigram_objects(engine) == set()
    with session_scope(engine) as s:  # written while there is no index: the rebuild takes it in
        add_photo(s, "/lib/event00042/IMG_3.jpg", faces=[("happy", 0.6)])
    engine.dispose()
    engine = open_db(db_location)  # at 0007: migrated again on open
    assert expected <= _trigram_objects(engine)
    assert _found(engine, "path:event00042") == ["/lib/event00042/IMG_1.jpg", "/lib/event00042/IMG_3.jpg"]
    engine.dispose()


def test_a_server_without_pg_trgm_still_finds_paths(pg_server_url: str, db_backend: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """A role that may not create extensions, on a database without pg_trgm: the migration says
    what to run and leaves the index out; `path:` reads every path and finds the same photos."""
    if db_backend != "postgresql":
        pytest.skip("PostgreSQL only")
    import secrets
    import uuid

    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    admin_url = make_url(pg_server_url).set(drivername="postgresql+psycopg")
    name, password = f"notrgm_{uuid.uuid4().hex[:12]}", secrets.token_urlsafe(12)
    admin = create_engine(admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
        conn.exec_driver_sql(f"CREATE DATABASE {name} OWNER moodindex")  # owned by someone else
    owner = create_engine(admin_url.set(database=name), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with owner.connect() as conn:
        conn.exec_driver_sql(f"GRANT CONNECT ON DATABASE {name} TO {name}")
        conn.exec_driver_sql(f"CREATE SCHEMA AUTHORIZATION {name}")  # its tables; not CREATE on the database
    owner.dispose()
    engine = None
    try:
        url = admin_url.set(drivername="postgresql", username=name, password=password, database=name)
        with caplog.at_level(logging.WARNING):
            engine = open_db(url.render_as_string(hide_password=False))
        assert "pg_trgm could not be created" in caplog.text and "CREATE EXTENSION pg_trgm" in caplog.text
        assert _trigram_objects(engine) == set()
        _library(engine)
        assert {q: _found(engine, q) for q, want in CASES if want is not None} == {
            q: sorted(want) for q, want in CASES if want is not None}
    finally:
        if engine is not None:
            engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {name}")
        admin.dispose()


def test_an_sqlite_that_cannot_make_the_table_still_finds_paths(db_path, caplog: pytest.LogCaptureFixture) -> None:
    """The migration's CREATE VIRTUAL TABLE failing (here: the name taken, as "no such module:
    fts5" would on an SQLite without FTS5) leaves a warning and an index that reads every path."""
    engine = open_db(db_path, migrate=False)
    _alembic(engine, "upgrade", "0007")
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {path_index.SQLITE_TABLE} (taken TEXT)")
    engine.dispose()
    with caplog.at_level(logging.WARNING):
        engine = open_db(db_path)
    assert "cannot make a trigram index" in caplog.text
    assert not set(path_index.SQLITE_TRIGGERS) & _trigram_objects(engine)
    _library(engine)
    assert {q: _found(engine, q) for q, want in CASES if want is not None} == {
        q: sorted(want) for q, want in CASES if want is not None}
    engine.dispose()


def test_an_sqlite_without_the_trigram_module_refuses_the_file_clearly(tmp_path) -> None:  # noqa: ANN001
    """A file whose trigram table needs a module this SQLite lacks (made on a machine whose SQLite has
    FTS5, opened by one without) would fail every insert through the triggers: opening it says why
    and leaves the file and its photos as they were."""
    import sqlite3

    from indexer.db.session import DatabaseError

    db = tmp_path / "index.db"
    engine = open_db(db)
    _library(engine)
    engine.dispose()
    # what a library without FTS5 sees: a virtual table whose module it does not have
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute("UPDATE sqlite_master SET sql = replace(sql, 'USING fts5(', 'USING fts5absent(') "
                 "WHERE name = 'photos_path_trigrams'")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(DatabaseError) as err:
        open_db(db)
    message = str(err.value)
    assert str(db) in message and "no such module: fts5absent" in message and "trigram" in message
    assert db.read_bytes() == before
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM photos").fetchone()[0] == len(NAMES)
