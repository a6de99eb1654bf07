"""A `db` value is a SQLite path or a PostgreSQL URL: one engine factory, the same migrations, and
a password that never reaches the output."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from indexer.config import ConfigError, load_settings, parse_db
from indexer.db import path_index
from indexer.db.location import display, parse_location, scrub
from indexer.db.session import DatabaseError, open_db

PASSWORD = "Pw-s3cret-7f2c"
URL = f"postgresql://mood:{PASSWORD}@db.example:5432/photos"


def test_a_url_stays_a_url_and_anything_else_is_a_path(tmp_path: Path) -> None:
    assert parse_location(URL) == URL
    assert parse_location("postgres://u@h/d") == "postgres://u@h/d"
    assert parse_location(str(tmp_path / "i.db")) == tmp_path / "i.db"
    assert parse_location(f"sqlite:///{tmp_path}/i.db") == tmp_path / "i.db"
    assert parse_location("~/i.db") == Path.home() / "i.db"
    with pytest.raises(ConfigError, match="unsupported database mysql://"):
        parse_db("mysql://u@h/d")


def test_the_password_is_masked_wherever_the_location_is_shown() -> None:
    assert PASSWORD not in display(URL) and display(URL) == "postgresql://mood:***@db.example:5432/photos"
    assert scrub(f"could not connect to {URL} (password {PASSWORD})", URL) == (
        "could not connect to postgresql://mood:***@db.example:5432/photos (password ***)")


def test_db_from_env_and_config_file_may_be_a_url(tmp_path: Path) -> None:
    assert load_settings(env={"MOODINDEX_DB": URL}).db == URL
    config = tmp_path / "c.toml"
    config.write_text(f'db = "{URL}"\n')
    assert load_settings(config, env={}).db == URL


def test_missing_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg -> ImportError
    with pytest.raises(DatabaseError, match=r"\[postgres\] extra"):
        open_db(URL)


def test_a_server_that_refuses_gives_one_line_without_the_password(run_cli_at) -> None:  # noqa: ANN001
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://mood:{PASSWORD}@127.0.0.1:{port}/photos"
    result = run_cli_at(url, "status")
    assert result.exit_code == 1
    assert PASSWORD not in result.output
    assert "cannot open the index at postgresql://mood:***@127.0.0.1" in result.output
    assert "Traceback" not in result.output


@pytest.fixture()
def run_cli_at():  # noqa: ANN201
    from click.testing import CliRunner

    from indexer.cli import main

    return lambda db, *args: CliRunner().invoke(main, ["--db", db, *args])


# --- on the real server (skipped, with the reason, when there is none) ---

def test_migrations_build_the_same_schema_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    def schema(location: Path | str) -> dict:
        engine = open_db(location)
        try:
            insp = inspect(engine)
            return {t: ({c["name"] for c in insp.get_columns(t)},
                        {i["name"] for i in insp.get_indexes(t) if not i.get("duplicates_constraint")},
                        [u["column_names"] for u in insp.get_unique_constraints(t)])
                    for t in insp.get_table_names() if t != "alembic_version"}
        finally:
            engine.dispose()

    on_pg, on_sqlite = schema(pg_url), schema(tmp_path / "i.db")
    # the trigram index over paths is each engine's own (migration 0008): a GIN index, an FTS5 table
    assert path_index.POSTGRES_INDEX in on_pg["photos"][1]
    on_pg["photos"][1].discard(path_index.POSTGRES_INDEX)
    assert path_index.SQLITE_TABLE in on_sqlite
    on_sqlite = {t: v for t, v in on_sqlite.items() if not t.startswith(path_index.SQLITE_TABLE)}
    assert on_pg == on_sqlite and {"photos", "faces", "runs"} <= set(on_pg)
    open_db(pg_url).dispose()  # reopening an up-to-date index is a no-op


def test_status_and_db_upgrade_on_postgresql_hide_the_password(pg_url: str, run_cli_at) -> None:  # noqa: ANN001
    from sqlalchemy.engine import make_url

    password = make_url(pg_url).password
    assert password
    status = run_cli_at(pg_url, "status", "--format", "json")
    assert status.exit_code == 0, status.output
    assert password not in status.output
    shown = json.loads(status.stdout)["db"]
    assert shown.startswith("postgresql://moodindex:***@127.0.0.1:") and shown == display(pg_url)
    upgrade = run_cli_at(pg_url, "-v", "db", "upgrade")
    assert upgrade.exit_code == 0 and password not in upgrade.output and "***" in upgrade.output


def test_a_wrong_password_is_refused_without_echoing_it(pg_url: str, run_cli_at) -> None:  # noqa: ANN001
    from sqlalchemy.engine import make_url

    wrong = make_url(pg_url).set(password=PASSWORD).render_as_string(hide_password=False)
    result = run_cli_at(wrong, "status")
    assert result.exit_code == 1
    assert PASSWORD not in result.output and "password authentication failed" in result.output


def test_sqlite_only_settings_stay_on_sqlite(pg_url: str) -> None:
    engine = open_db(pg_url)
    try:
        with engine.connect() as conn:
            assert conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"
            assert conn.exec_driver_sql("SHOW transaction_isolation").scalar() == "read committed"
    finally:
        engine.dispose()


def test_processes_opening_a_fresh_database_at_once_migrate_it_once(pg_url: str) -> None:
    """Two index runs and a watcher started together on a new database: one migrates, the others
    wait for it (an advisory lock), instead of failing on Alembic's half-made version table."""
    import threading

    barrier = threading.Barrier(6, timeout=30)
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            barrier.wait()
            open_db(pg_url).dispose()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
