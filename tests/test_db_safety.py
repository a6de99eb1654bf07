"""The index file: owner-only whatever the umask, and a failed write (disk full) is one clear line
that leaves what was stored intact."""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
import sys
from pathlib import Path

from indexer.db.session import open_db
from tests.photo_factory import background, write_photo

ROOT = Path(__file__).resolve().parents[1]


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_new_index_folders_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)  # what a careless service unit or container gives: 0777 folders
    try:
        db = tmp_path / "data" / "moodindex" / "index.db"
        engine = open_db(db)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE scratch (x)")  # a write: the -wal file appears
        assert _mode(db) == 0o600 and _mode(db.parent) == 0o700 and _mode(db.parent.parent) == 0o700
        assert _mode(db.with_name("index.db-wal")) == 0o600
        engine.dispose()
    finally:
        os.umask(old)


def test_an_existing_index_readable_by_others_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "index.db"
    open_db(db).dispose()
    holder = sqlite3.connect(db)  # keeps -wal and -shm in place, as a running watcher would
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("CREATE TABLE scratch (x)")
    files = [db, db.with_name("index.db-wal"), db.with_name("index.db-shm")]
    for f in files:
        os.chmod(f, 0o644)
    open_db(db).dispose()
    assert [_mode(f) for f in files] == [0o600] * 3
    holder.close()


def _fsize_limit(limit: int):  # noqa: ANN202
    def apply() -> None:  # a file may not grow past `limit`: writes past it fail like on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def _index(db: Path, config: Path, folder: Path, limit: int | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "indexer", "--db", str(db), "--config", str(config), "index",
                           str(folder), "-j", "1"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          preexec_fn=_fsize_limit(limit) if limit else None)


def test_disk_full_is_one_clear_line_and_the_index_stays_intact(tmp_path: Path) -> None:
    """It was "internal error: OperationalError ... (Background on this error at: https://sqlalche.me/...)"."""
    photos = tmp_path / "photos"
    for i in range(8):
        write_photo(photos / f"a{i}.jpg", background(64, 48, seed=i))
    config, db = tmp_path / "cfg.toml", tmp_path / "index.db"
    config.write_text('detector = "haar"\n')
    assert _index(db, config, photos).returncode == 0
    for i in range(400):  # enough rows that the index must grow
        write_photo(photos / f"b{i:03d}.jpg", background(32, 24, seed=100 + i))
    full = _index(db, config, photos, limit=db.stat().st_size + 8192)
    assert full.returncode == 1
    lines = full.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("moodindex: the index database failed:"), full.stderr
    assert "disk" in lines[0] and "sqlalche.me" not in full.stderr and "internal error" not in full.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        stored = {Path(p).name for (p,) in conn.execute("SELECT path FROM photos WHERE status = 'ok'")}
    assert {f"a{i}.jpg" for i in range(8)} <= stored
    again = _index(db, config, photos)  # room again: the next run finishes the job
    assert again.returncode == 0, again.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM photos WHERE status = 'ok'").fetchone() == (408,)
