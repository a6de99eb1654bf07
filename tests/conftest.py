"""Fixtures shared by every test module."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the project root; tests that need it skip with a reason when absent."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED} (see README: tests read ../shared)")
    return SHARED


@pytest.fixture(scope="session")
def fer_val(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "fer2013" / "fer2013_val.npz"
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="session")
def dev_faces_dir(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "facial_expressions_dev"
    if not (path / "labels.csv").exists():
        pytest.skip(f"{path}/labels.csv not found")
    return path


@pytest.fixture(scope="session")
def yunet_onnx(shared_dir: Path) -> Path:
    path = shared_dir / "models" / "face_detection_yunet_2026may.onnx"
    if not path.exists():
        pytest.skip(f"YuNet test weights not found at {path}")
    return path


# Test modules whose index tests run on SQLite and on PostgreSQL (through the `db_location`,
# `engine` and `run_cli` fixtures); every other module runs on SQLite only.
BOTH_BACKENDS = {"test_db", "test_db_copy", "test_index", "test_corrections", "test_names", "test_photo_warnings",
                 "test_path_index", "test_query_cli", "test_query_engine", "test_query_filters", "test_roots",
                 "test_tag_cli", "test_tag_corrections", "test_watch", "test_postgres"}
PG_URL_ENV = "MOODINDEX_TEST_PG_URL"
# CI sets this: a missing server is then a failure, not a skip
REQUIRE_SERVERS_ENV = "MOODINDEX_TEST_REQUIRE_SERVERS"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_backend" in metafunc.fixturenames and metafunc.module.__name__.rsplit(".", 1)[-1] in BOTH_BACKENDS:
        metafunc.parametrize("db_backend", ["sqlite", "postgresql"])


@pytest.fixture()
def db_backend() -> str:
    """Which database the index fixtures use; parametrised for the modules in BOTH_BACKENDS."""
    return "sqlite"


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """The test PostgreSQL server (tests/servers.sh start), or a skip saying how to get one."""
    import os

    url = os.environ.get(PG_URL_ENV)
    if not url:
        message = (f"no PostgreSQL test server: {PG_URL_ENV} is not set "
                   "(run `eval \"$(tests/servers.sh start)\"` first; .ci/run does)")
        if os.environ.get(REQUIRE_SERVERS_ENV):
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture()
def pg_url(pg_server_url: str):
    """A URL to a fresh, empty schema of its own on the test server, dropped afterwards."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(make_url(pg_server_url).set(drivername="postgresql+psycopg"), poolclass=_null_pool())
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(pg_server_url).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    try:  # a connection left in a transaction must not hang the suite: leave its schema behind
        with admin.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '10s'"))
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    except Exception as exc:  # noqa: BLE001
        import warnings

        warnings.warn(f"schema {schema} left on the test server: {exc}", stacklevel=1)
    admin.dispose()


def _null_pool():  # noqa: ANN202
    from sqlalchemy.pool import NullPool

    return NullPool


@pytest.fixture()
def db_path(tmp_path: Path) -> Path:
    """A SQLite index file in a temp dir (tests of the file itself: mode, WAL, disk full...)."""
    return tmp_path / "index.db"


@pytest.fixture()
def db_location(db_backend: str, request: pytest.FixtureRequest, db_path: Path) -> Path | str:
    """The index the test works on: the SQLite file, or a fresh schema on the PostgreSQL server."""
    if db_backend == "postgresql":
        return request.getfixturevalue("pg_url")
    return db_path


@pytest.fixture()
def engine(db_location: Path | str):
    """A fresh, migrated index (SQLite in a temp dir, or PostgreSQL in a schema of its own)."""
    from indexer.db.session import open_db

    eng = open_db(db_location)
    yield eng
    eng.dispose()


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the real user's config, data or index."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.delenv("MOODINDEX_DB", raising=False)
    monkeypatch.delenv("MOODINDEX_CONFIG", raising=False)
    # no background warm-start servers left behind by tests that run `moodindex` as a process;
    # tests/test_warm_start.py turns it on where it is the subject
    monkeypatch.setenv("MOODINDEX_WARM", "0")


@pytest.fixture()
def run_cli(db_location: Path | str):
    """Invoke `moodindex --db <temp index> ARGS...` in-process; returns click's Result."""
    from click.testing import CliRunner

    from indexer.cli import main

    def run(*args: str, input: str | None = None):
        return CliRunner().invoke(main, ["--db", str(db_location), *map(str, args)], input=input,
                                  catch_exceptions=False)

    return run


@pytest.fixture()
def yunet_installed(yunet_onnx: Path) -> Path:
    """YuNet installed in the (isolated) user data dir, so `--detector auto` picks it."""
    from indexer.vision.detector_install import add_yunet

    return add_yunet(yunet_onnx)


@pytest.fixture()
def worker_spy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201 (tests.worker_spy.WorkerSpy)
    """What the real worker processes analysed, detected, predicted and loaded (tests/worker_spy.py).
    Photos are never analysed in the test's own process: patching there would count nothing."""
    from tests.worker_spy import SPY_LOG_ENV, WorkerSpy, init_spying_worker

    log = tmp_path / "worker-spy.jsonl"
    monkeypatch.setenv(SPY_LOG_ENV, str(log))
    monkeypatch.setattr("indexer.executor.init_worker", init_spying_worker)
    return WorkerSpy(log)
