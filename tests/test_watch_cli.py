"""`moodindex watch` as a real process: SIGTERM/SIGINT exit 0, kill -9 and restart loses nothing,
readers and writers in other processes never see "database is locked", roots from the config."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.polling import wait_for as poll
from tests.procfs import cmdline, descendants, survivors

pytestmark = pytest.mark.slow
DEADLINE = 60.0


def wait_for(check, what: str, timeout: float = DEADLINE):  # noqa: ANN001, ANN201
    return poll(check, what, timeout)


def moodindex(*args: str, **kwargs) -> subprocess.CompletedProcess:  # noqa: ANN003
    return subprocess.run([sys.executable, "-m", "indexer", *args], capture_output=True, text=True, timeout=120,
                          **kwargs)


class Daemon:
    """`moodindex --db DB watch ...` in its own session, stderr to a log file."""

    def __init__(self, db: Path, log: Path, *args: str) -> None:
        self.log = log
        with open(log, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "indexer", "--db", str(db), "watch", "--settle", "0.3", "--recheck", "0.5",
                 *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_log(self, needle: str, count: int = 1) -> None:
        wait_for(lambda: self.text().count(needle) >= count or self.proc.poll() is not None,
                 f"{needle!r} in the watcher's log", DEADLINE)
        assert self.proc.poll() is None, f"watcher exited early:\n{self.text()}"

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(DEADLINE)

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(DEADLINE)
        try:  # worker processes orphaned by a kill -9
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@pytest.fixture()
def daemons():  # noqa: ANN201
    started: list[Daemon] = []

    def start(*args, **kwargs) -> Daemon:  # noqa: ANN002, ANN003
        d = Daemon(*args, **kwargs)
        started.append(d)
        return d

    yield start
    for d in started:
        d.cleanup()


def db_rows(db: Path) -> dict[str, tuple[str, int]]:
    """path -> (status, id), read as another process would (read-only, WAL)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return {p: (s, i) for p, s, i in con.execute("SELECT path, status, id FROM photos")}
    finally:
        con.close()


def ok_set(db: Path) -> set[str]:
    return {p for p, (s, _) in db_rows(db).items() if s == "ok"} if db.exists() else set()


def photo_files(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*.jpg")}


@pytest.fixture(scope="module")
def many_faces(dev_faces_dir: Path) -> list[Path]:
    found = sorted((dev_faces_dir / "images").glob("*.jpg"))[:40]
    assert len(found) == 40
    return found


def test_sigterm_and_sigint_finish_the_current_photo_and_exit_0(daemons, tmp_path: Path,  # noqa: ANN001
                                                                many_faces: list[Path], db_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    d = daemons(db_path, tmp_path / "watch.log", str(root), "-j", "1")
    d.wait_log("with inotify")
    for i, src in enumerate(many_faces):
        shutil.copy(src, root / f"p{i:02}.jpg")
    wait_for(lambda: ok_set(db_path), "the first photo indexed", DEADLINE)
    assert d.stop(signal.SIGTERM) == 0, d.text()
    assert "SIGTERM: finishing the current photo" in d.text() and "stopped:" in d.text()
    assert "Traceback" not in d.text()
    rows = db_rows(db_path)
    assert {s for s, _ in rows.values()} == {"ok"}  # whole photos only
    con = sqlite3.connect(db_path)
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    con.close()

    d2 = daemons(db_path, tmp_path / "watch2.log", str(root), "-j", "1")  # the rest is found on restart
    wait_for(lambda: ok_set(db_path) == photo_files(root), "the restart to index the rest", DEADLINE)
    assert d2.stop(signal.SIGINT) == 0, d2.text()
    assert "SIGINT: finishing the current photo" in d2.text()
    listed = moodindex("--db", str(db_path), "list", "--format", "paths")
    assert listed.returncode == 0, listed.stderr
    assert set(listed.stdout.splitlines()) == photo_files(root)


def test_kill_9_loses_nothing_and_restart_catches_up(daemons, tmp_path: Path, many_faces: list[Path],  # noqa: ANN001
                                                     db_path: Path) -> None:
    root = tmp_path / "photos"
    (root / "album").mkdir(parents=True)
    d = daemons(db_path, tmp_path / "watch.log", str(root), "-j", "2")  # worker processes too
    d.wait_log("with inotify")
    for i, src in enumerate(many_faces):
        shutil.copy(src, root / f"p{i:02}.jpg")
    workers = wait_for(lambda: [p for p in descendants(d.proc.pid) if "spawn_main" in cmdline(p)],
                       "its pool workers", DEADLINE)
    children = descendants(d.proc.pid)  # the workers and the resource tracker
    first = wait_for(lambda: sorted(ok_set(db_path)), "the first photos indexed", DEADLINE)
    children.update(descendants(d.proc.pid))
    assert set(workers) <= set(children)
    d.proc.kill()  # SIGKILL, mid-burst
    assert d.proc.wait(DEADLINE) == -signal.SIGKILL
    assert not survivors(children, within_s=10)  # they die with it, instead of living on
    done_before = ok_set(db_path)
    # while it is down: a move, a delete and a new photo
    moved_src = first[0]
    moved_id = db_rows(db_path)[moved_src][1]
    moved_dest = str(root / "album" / "moved-while-down.jpg")
    os.rename(moved_src, moved_dest)
    deleted = next(p for p in sorted(photo_files(root)) if p not in done_before and p != moved_dest)
    os.unlink(deleted)
    shutil.copy(many_faces[0], root / "album" / "new-while-down.jpg")

    d2 = daemons(db_path, tmp_path / "watch2.log", str(root), "-j", "2")
    wait_for(lambda: ok_set(db_path) == photo_files(root), "the restarted watcher to catch up", DEADLINE)
    assert db_rows(db_path)[moved_dest][1] == moved_id  # the move was recognised, not re-analysed
    # the rows are committed before the summary line is logged: under load, wait for the whole line
    line = wait_for(lambda: re.search(r"start-up reconcile:([^\n]*)\n", d2.text()), "the start-up summary line",
                    DEADLINE)
    assert "moved" in line.group(1)
    assert deleted not in ok_set(db_path)
    assert d2.stop() == 0, d2.text()
    listed = moodindex("--db", str(db_path), "list", "--format", "paths")
    assert set(listed.stdout.splitlines()) == photo_files(root)


READER = r"""
import json, sys, time
from datetime import datetime
from sqlalchemy import select
from sqlalchemy.orm import Session
from indexer.db.models import Photo, Run
from indexer.db.read import iter_photos
from indexer.db.session import open_db, session_scope
from indexer.db.photos import counts

engine = open_db(sys.argv[1])
end = time.monotonic() + float(sys.argv[2])
write = sys.argv[3] == "write"
loops, errors = 0, []
while time.monotonic() < end:
    try:
        with Session(engine) as s:              # what `list` and `query` do
            paths = [p.path for p in iter_photos(s)]
        counts(engine)                          # what `status` does
        if write:
            with session_scope(engine) as s:    # a read-then-write transaction, as tagging would do
                s.scalar(select(Photo.id).limit(1))
                s.add(Run(kind="reader", started_at=datetime.now(), roots="[]", summary="{}"))
        loops += 1
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
print(json.dumps({"loops": loops, "errors": errors[:5], "n_errors": len(errors)}))
"""


def _concurrent(daemons, tmp_path: Path, faces: list[Path], db_path: Path, mode: str) -> dict:  # noqa: ANN001
    """Run READER in another process for 8 s while the watcher indexes, moves and lists photos."""
    root = tmp_path / "photos"
    root.mkdir()
    d = daemons(db_path, tmp_path / "watch.log", str(root), "-j", "1")
    d.wait_log("with inotify")
    reader = subprocess.Popen([sys.executable, "-c", READER, str(db_path), "8", mode], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    for i, src in enumerate(faces[:24]):
        shutil.copy(src, root / f"p{i:02}.jpg")
        if i % 8 == 7:  # the CLI readers too, while the watcher writes
            for args in (("list", "--format", "paths"), ("status",)):
                r = moodindex("--db", str(db_path), *args)
                assert r.returncode == 0 and "locked" not in r.stderr, r.stderr
    (root / "sub").mkdir()
    for i in range(0, 24, 3):
        os.rename(root / f"p{i:02}.jpg", root / "sub" / f"p{i:02}.jpg")
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    wait_for(lambda: ok_set(db_path) == photo_files(root), "every photo indexed", DEADLINE)
    assert d.stop() == 0
    result = json.loads(out)
    result["watch_log"] = d.text()
    return result


def test_readers_in_other_processes_never_see_database_locked(daemons, tmp_path: Path,  # noqa: ANN001
                                                              many_faces: list[Path], db_path: Path) -> None:
    result = _concurrent(daemons, tmp_path, many_faces, db_path, "read")
    assert result["n_errors"] == 0, result["errors"]
    assert result["loops"] >= 10, result
    assert "locked" not in result["watch_log"]


def test_read_then_write_transactions_beside_the_watcher_never_see_database_locked(
        daemons, tmp_path: Path, many_faces: list[Path], db_path: Path) -> None:  # noqa: ANN001
    result = _concurrent(daemons, tmp_path, many_faces, db_path, "write")
    assert result["n_errors"] == 0, result["errors"]
    assert result["loops"] >= 10, result
    assert "locked" not in result["watch_log"]


def test_watch_reads_roots_from_the_config_and_refuses_without(daemons, tmp_path: Path,  # noqa: ANN001
                                                               dev_faces_dir: Path, db_path: Path) -> None:
    no_roots = moodindex("--db", str(db_path), "watch")
    assert no_roots.returncode == 2
    assert "no folders to watch" in no_roots.stderr and "Traceback" not in no_roots.stderr

    root = tmp_path / "my photos"  # a space in the name
    root.mkdir()
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "moodindex" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"roots = [{json.dumps(str(root))}]\ndetector = \"haar\"\nworkers = 1\n", encoding="utf-8")
    d = daemons(db_path, tmp_path / "watch.log")
    d.wait_log("with inotify")
    assert str(root) in d.text()
    src = next((dev_faces_dir / "images").glob("*.jpg"))
    shutil.copy(src, root / "from-config.jpg")
    wait_for(lambda: ok_set(db_path) == {str(root / "from-config.jpg")}, "the photo under the configured root")
    assert d.stop() == 0


def test_watch_refuses_a_file_root(tmp_path: Path, db_path: Path) -> None:
    f = tmp_path / "x.jpg"
    f.write_bytes(b"not a folder")
    r = moodindex("--db", str(db_path), "watch", str(f))
    assert r.returncode == 2 and "not a folder" in r.stderr and "Traceback" not in r.stderr
