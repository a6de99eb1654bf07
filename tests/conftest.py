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


@pytest.fixture()
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "index.db"


@pytest.fixture()
def engine(db_path: Path):
    """A fresh, migrated index in a temp dir."""
    from indexer.db.session import open_db

    eng = open_db(db_path)
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


@pytest.fixture()
def run_cli(db_path: Path):
    """Invoke `moodindex --db <temp index> ARGS...` in-process; returns click's Result."""
    from click.testing import CliRunner

    from indexer.cli import main

    def run(*args: str, input: str | None = None):
        return CliRunner().invoke(main, ["--db", str(db_path), *map(str, args)], input=input,
                                  catch_exceptions=False)

    return run


@pytest.fixture()
def yunet_installed(yunet_onnx: Path) -> Path:
    """YuNet installed in the (isolated) user data dir, so `--detector auto` picks it."""
    from indexer.vision.detector_install import add_yunet

    return add_yunet(yunet_onnx)
