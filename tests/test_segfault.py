"""A decoder that really segfaults must not stop a run or the watcher.

The crash here is a real one: a `sitecustomize` put on PYTHONPATH makes every Python process of the
command (moodindex itself and each spawned worker) read address 0 through ctypes, a native SIGSEGV,
when it reads the named file, as a decoder bug on a crafted file would.  So the test does not know or
care which process analyses the file: were it the indexing process (as it was for `-j 1` and
batches under 4 files, which is what the watcher usually hands over), the command would die with it.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.polling import wait_for

SEGFAULT_ENV = "MOODINDEX_TEST_SEGFAULT_ON"
SITECUSTOMIZE = f'''
import os

_doomed = os.environ.get({SEGFAULT_ENV!r})
if _doomed:
    import ctypes
    import resource

    from indexer.media import source

    _real_read_photo = source.read_photo

    def read_photo(path, *args, **kwargs):
        if os.path.basename(os.fsdecode(path)) == _doomed:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file
            ctypes.string_at(0)  # SIGSEGV
        return _real_read_photo(path, *args, **kwargs)

    source.read_photo = read_photo  # before indexer.pipeline imports it
'''
CRASHED = "the decoder or detector crashed on this file (worker process died)"


@pytest.fixture()
def segfault_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """segfault_on(name): from now on, any moodindex process reading a file so named segfaults."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    repo = Path(__file__).resolve().parents[1]
    monkeypatch.setenv("PYTHONPATH", f"{site}:{repo}")

    def arm(name: str) -> None:
        monkeypatch.setenv(SEGFAULT_ENV, name)

    return arm


@pytest.fixture()
def photos(tmp_path: Path, dev_faces_dir: Path) -> list[Path]:
    """Real face photos (JPEG) from the shared dev set."""
    found = sorted((dev_faces_dir / "images").glob("*.jpg"))[:6]
    assert len(found) == 6
    return found


def moodindex(db: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "indexer", "--db", str(db), *args], capture_output=True,
                          text=True, timeout=300)


def _errors(db: Path) -> dict[str, dict]:
    res = moodindex(db, "errors", "--format", "json")
    assert res.returncode == 0, res.stderr
    return {Path(e["path"]).name: e for e in json.loads(res.stdout)}


def _statuses(db: Path) -> dict[str, str]:
    """name -> status of every row, read as another process would."""
    from test_watch_cli import db_rows

    return {Path(p).name: status for p, (status, _) in db_rows(db).items()} if db.exists() else {}


def test_the_crash_is_real(tmp_path: Path, photos: list[Path], segfault_on) -> None:  # noqa: ANN001
    """The harness itself: a Python process that reads the file dies of SIGSEGV."""
    shutil.copy(photos[0], tmp_path / "bad.jpg")
    segfault_on("bad.jpg")
    probe = subprocess.run([sys.executable, "-c", "from indexer.media.source import read_photo; "
                            f"read_photo({str(tmp_path / 'bad.jpg')!r})"], capture_output=True, timeout=60)
    assert probe.returncode == -signal.SIGSEGV


@pytest.mark.parametrize(("names", "workers"), [
    (["a.jpg", "b.jpg", "bad.jpg", "c.jpg", "d.jpg"], "1"),  # -j 1: one worker process for all
    (["a.jpg", "bad.jpg"], "2"),                            # a batch too small for a pool of two
])
def test_index_survives_a_segfaulting_decoder(tmp_path: Path, photos: list[Path], segfault_on,  # noqa: ANN001
                                              names: list[str], workers: str) -> None:
    lib, db = tmp_path / "lib", tmp_path / "index.db"
    lib.mkdir()
    for src, name in zip(photos, names, strict=False):
        shutil.copy(src, lib / name)
    segfault_on("bad.jpg")
    res = moodindex(db, "index", str(lib), "-j", workers, "--detector", "haar", "--format", "json")
    assert res.returncode == 0, f"rc {res.returncode}\n{res.stderr}"
    summary = json.loads(res.stdout)
    assert (summary["new"], summary["failed"], summary["retry_next"]) == (len(names) - 1, 1, 1), summary
    assert "bad.jpg: the analysing process died on this file" in res.stderr
    assert _statuses(db) == {**{n: "ok" for n in names}, "bad.jpg": "retry"}
    err = _errors(db)["bad.jpg"]
    assert err["status"] == "retry" and err["error"].startswith(CRASHED)


def test_the_watcher_survives_a_segfaulting_decoder(tmp_path: Path, photos: list[Path], segfault_on,  # noqa: ANN001
                                                    db_path: Path) -> None:
    from test_watch_cli import Daemon

    root = tmp_path / "photos"
    root.mkdir()
    segfault_on("bad.jpg")
    watcher = Daemon(db_path, tmp_path / "watch.log", str(root), "--detector", "haar")
    try:
        watcher.wait_log("with inotify")
        shutil.copy(photos[0], root / "good.jpg")
        shutil.copy(photos[1], root / "bad.jpg")
        expected = {"good.jpg": "ok", "bad.jpg": "retry"}
        wait_for(lambda: _statuses(db_path) == expected or watcher.proc.poll() is not None,
                 "good.jpg indexed and bad.jpg recorded", 90)
        assert watcher.proc.poll() is None, f"the watcher died:\n{watcher.text()}"
        assert _errors(db_path)["bad.jpg"]["error"].startswith(CRASHED)
        shutil.copy(photos[2], root / "later.jpg")  # a fresh worker takes the next event
        wait_for(lambda: _statuses(db_path).get("later.jpg") == "ok" or watcher.proc.poll() is not None,
                 "later.jpg indexed", 90)
        assert watcher.proc.poll() is None, f"the watcher died:\n{watcher.text()}"
        assert "bad.jpg: the analysing process died on this file" in watcher.text()
        assert watcher.stop(signal.SIGTERM) == 0, watcher.text()
        assert "Traceback" not in watcher.text()
    finally:
        watcher.cleanup()
