"""The watcher in-process, with a real observer (inotify, or polling) on temporary folders,
real photos, the real pipeline and a real SQLite index.  Waits poll the index with a deadline."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from watchdog.observers import Observer

from indexer.config import Settings
from indexer.db.models import Face, Photo, Run
from indexer.scan import Indexer
from indexer.watch import Watcher, WatchOptions
from tests.polling import wait_for as poll
from tests.worker_spy import Live

DEADLINE = 30.0


def wait_for(check, what: str, timeout: float = DEADLINE):  # noqa: ANN001, ANN201
    return poll(check, what, timeout)


def rows(engine) -> dict[str, tuple[str, int, int]]:  # noqa: ANN001
    """path -> (status, id, face_count) for every row, tombstones included."""
    with Session(engine) as s:
        return {p.path: (p.status, p.id, p.face_count) for p in s.scalars(select(Photo))}


def ok_paths(engine) -> set[str]:  # noqa: ANN001
    return {p for p, (status, _, _) in rows(engine).items() if status == "ok"}


@pytest.fixture(scope="module")
def faces(dev_faces_dir: Path) -> list[Path]:
    """Real face photos (JPEG) from the shared dev set."""
    found = sorted((dev_faces_dir / "images").glob("*.jpg"))[:12]
    assert len(found) == 12
    return found


@pytest.fixture()
def analysed(worker_spy) -> Sequence[str]:  # noqa: ANN001
    """Every path the models ran on, as the watcher's worker process reports it (tests/worker_spy.py)."""
    return Live(lambda: worker_spy.analysed)


@pytest.fixture()
def start(engine, db_location: Path | str, analysed: Sequence[str]):  # noqa: ANN001, ANN201
    """start(roots, **options) -> a Watcher running in a thread, stopped (and checked) at teardown."""
    running: list[tuple[Watcher, threading.Thread]] = []

    def _start(roots: list[Path], observer_factory=None, **options) -> Watcher:  # noqa: ANN001
        settings = Settings(db=db_location, workers=1, detector="haar")
        opts = WatchOptions(**{"settle": 0.3, "recheck": 0.3, "max_delay": 1.0, **options})
        watcher = Watcher(Indexer(engine, settings), roots, opts, observer_factory=observer_factory)
        thread = threading.Thread(target=watcher.run, name="watcher", daemon=True)
        thread.start()
        assert watcher.ready.wait(DEADLINE), "watcher did not start"
        running.append((watcher, thread))
        return watcher

    yield _start
    for watcher, thread in running:
        watcher.stop.set()
        watcher.wake()
        thread.join(DEADLINE)
        assert not thread.is_alive(), "watcher did not stop"


def copy_slowly(src: Path, dest: Path, chunks: int = 4) -> None:
    """Write in several chunks (several modify events for one file)."""
    data = src.read_bytes()
    step = len(data) // chunks + 1
    with open(dest, "wb") as f:
        for i in range(0, len(data), step):
            f.write(data[i:i + step])
            f.flush()


def test_new_photo_is_indexed_and_listed(start, engine, tmp_path: Path, faces: list[Path],  # noqa: ANN001
                                         db_location: Path | str) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    shutil.copy(faces[0], root / "before.jpg")  # found by the start-up reconcile
    start([root])
    assert ok_paths(engine) == {str(root / "before.jpg")}
    shutil.copy(faces[1], root / "after.jpg")
    wait_for(lambda: str(root / "after.jpg") in ok_paths(engine), "the new photo in the index")
    status, _, face_count = rows(engine)[str(root / "after.jpg")]
    assert status == "ok" and face_count >= 1

    result = CliRunner().invoke(__import__("indexer.cli", fromlist=["main"]).main,
                                ["--db", str(db_location), "list", "--format", "paths"])
    assert result.exit_code == 0, result.output
    assert set(result.output.split()) == {str(root / "before.jpg"), str(root / "after.jpg")}


def test_slow_write_is_indexed_once_when_complete(start, engine, tmp_path: Path, faces: list[Path],  # noqa: ANN001
                                                  analysed: Sequence[str]) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    start([root], settle=0.3)
    data = faces[2].read_bytes()
    dest = root / "import.jpg"
    with open(dest, "wb") as f:
        f.write(data[: len(data) // 2])
        f.flush()
        end = time.monotonic() + 1.5  # five settle intervals with the file open and idle: must not be indexed
        while time.monotonic() < end:
            assert str(dest) not in rows(engine), "a half-written photo was indexed"
            time.sleep(0.05)
        f.write(data[len(data) // 2:])
    wait_for(lambda: str(dest) in ok_paths(engine), "the completed photo in the index")
    time.sleep(0.5)  # would a second, late indexing follow?
    assert analysed.count(str(dest)) == 1
    with Session(engine) as s:
        photo = s.scalar(select(Photo).where(Photo.path == str(dest)))
        assert photo.size == len(data) and photo.face_count >= 1


def test_burst_is_batched_and_each_photo_analysed_once(start, engine, tmp_path: Path,  # noqa: ANN001
                                                       faces: list[Path], analysed: Sequence[str]) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    watcher = start([root])
    for i, src in enumerate(faces[:8]):
        copy_slowly(src, root / f"burst{i}.jpg")
        os.utime(root / f"burst{i}.jpg")  # an extra attribute event per file
    expected = {str(root / f"burst{i}.jpg") for i in range(8)}
    wait_for(lambda: ok_paths(engine) == expected, "all 8 photos of the burst")
    assert sorted(analysed) == sorted(expected)  # once each: duplicate events coalesced
    assert watcher.totals.batches <= 3, watcher.totals


def test_sidecars_hidden_and_ignored_files_never_run_the_models(start, engine, tmp_path: Path,  # noqa: ANN001
                                                                faces: list[Path], analysed: Sequence[str],
                                                                worker_spy) -> None:  # noqa: ANN001
    root = tmp_path / "photos"
    (root / "skip").mkdir(parents=True)
    (root / ".moodignore").write_text("skip/\n")
    shutil.copy(faces[0], root / "a.jpg")
    start([root])
    assert analysed == [str(root / "a.jpg")]
    (root / "a.xmp").write_text("<x:xmpmeta/>")
    with open(root / "a.xmp", "a") as f:
        f.write("<!-- edited -->")
    (root / "notes.txt").write_text("hello")
    shutil.copy(faces[1], root / ".hidden.jpg")
    shutil.copy(faces[2], root / "skip" / "ignored.jpg")
    (root / ".cache").mkdir()
    shutil.copy(faces[3], root / ".cache" / "thumb.jpg")
    # a sentinel after all that: events are handled in order, so once it is in, the rest was seen
    shutil.copy(faces[4], root / "sentinel.jpg")
    wait_for(lambda: str(root / "sentinel.jpg") in ok_paths(engine), "the sentinel photo")
    # the sidecar's photo is read again for its names and tags, on the metadata-only path
    assert analysed == [str(root / "a.jpg"), str(root / "a.jpg"), str(root / "sentinel.jpg")]
    assert worker_spy.predicted == [1, 1], "the models ran on a.jpg and the sentinel only"
    assert ok_paths(engine) == {str(root / "a.jpg"), str(root / "sentinel.jpg")}


def test_moves_and_renames_keep_results_without_models(start, engine, tmp_path: Path,  # noqa: ANN001
                                                       faces: list[Path], analysed: Sequence[str]) -> None:
    root = tmp_path / "photos"
    (root / "album").mkdir(parents=True)
    shutil.copy(faces[0], root / "a.jpg")
    start([root])
    before = rows(engine)[str(root / "a.jpg")]
    with Session(engine) as s:
        face_ids = sorted(s.scalars(select(Face.id).where(Face.photo_id == before[1])))
    assert face_ids
    os.rename(root / "a.jpg", root / "renamed.jpg")
    wait_for(lambda: str(root / "renamed.jpg") in ok_paths(engine), "the renamed photo")
    os.rename(root / "renamed.jpg", root / "album" / "moved.jpg")
    wait_for(lambda: ok_paths(engine) == {str(root / "album" / "moved.jpg")}, "the moved photo")
    after = rows(engine)[str(root / "album" / "moved.jpg")]
    assert after[1] == before[1]  # the same row, re-pointed
    with Session(engine) as s:
        assert sorted(s.scalars(select(Face.id).where(Face.photo_id == after[1]))) == face_ids
    assert analysed == [str(root / "a.jpg")]  # only the first indexing


def test_directory_rename_and_move_keep_results(start, engine, tmp_path: Path, faces: list[Path],  # noqa: ANN001
                                                analysed: Sequence[str]) -> None:
    root = tmp_path / "photos"
    (root / "2024" / "trip" / "day1").mkdir(parents=True)
    for i in range(3):
        shutil.copy(faces[i], root / "2024" / "trip" / ("day1" if i else ".") / f"p{i}.jpg")
    start([root])
    ids = {os.path.basename(p): v[1] for p, v in rows(engine).items()}
    assert len(ids) == 3
    os.rename(root / "2024" / "trip", root / "2024" / "holiday")
    expected = {str(root / "2024" / "holiday" / "p0.jpg"), str(root / "2024" / "holiday" / "day1" / "p1.jpg"),
                str(root / "2024" / "holiday" / "day1" / "p2.jpg")}
    wait_for(lambda: ok_paths(engine) == expected, "the renamed folder's photos")
    os.rename(root / "2024", root / "archive")
    expected = {p.replace(f"{root}/2024/", f"{root}/archive/") for p in expected}
    wait_for(lambda: ok_paths(engine) == expected, "the moved folder's photos")
    assert {os.path.basename(p): v[1] for p, v in rows(engine).items()} == ids
    assert len(analysed) == 3


@pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")  # watchdog re-watching the folder
def test_folder_moved_in_out_and_back(start, engine, tmp_path: Path, faces: list[Path],  # noqa: ANN001
                                      analysed: Sequence[str]) -> None:
    root, outside = tmp_path / "photos", tmp_path / "elsewhere" / "card"
    root.mkdir()
    outside.mkdir(parents=True)
    for i in range(2):
        shutil.copy(faces[i], outside / f"img{i}.jpg")
    start([root])
    os.rename(outside, root / "card")  # a folder arriving from outside the roots
    inside = {str(root / "card" / f"img{i}.jpg") for i in range(2)}
    wait_for(lambda: ok_paths(engine) == inside, "the photos of the folder moved in")
    assert len(analysed) == 2
    os.rename(root / "card", outside)  # leaves the roots: gone from the index (tombstones)
    wait_for(lambda: not ok_paths(engine), "the folder moved out to be removed")
    assert {status for status, _, _ in rows(engine).values()} == {"deleted"}
    os.rename(outside, root / "back")  # comes back: recognised by content, no model runs
    back = {str(root / "back" / f"img{i}.jpg") for i in range(2)}
    wait_for(lambda: ok_paths(engine) == back, "the folder moved back in")
    assert len(analysed) == 2


def test_deletes_remove_files_and_folders(start, engine, tmp_path: Path, faces: list[Path]) -> None:  # noqa: ANN001
    root = tmp_path / "photos"
    (root / "sub" / "deeper").mkdir(parents=True)
    shutil.copy(faces[0], root / "keep.jpg")
    shutil.copy(faces[1], root / "gone.jpg")
    shutil.copy(faces[2], root / "sub" / "x.jpg")
    shutil.copy(faces[3], root / "sub" / "deeper" / "y.jpg")
    start([root])
    assert len(ok_paths(engine)) == 4
    os.unlink(root / "gone.jpg")
    wait_for(lambda: str(root / "gone.jpg") not in ok_paths(engine), "the deleted photo to leave the index")
    shutil.rmtree(root / "sub")
    wait_for(lambda: ok_paths(engine) == {str(root / "keep.jpg")}, "the deleted folder to leave the index")


def test_unmounted_root_is_paused_not_emptied_and_rescanned_when_back(start, engine, tmp_path: Path,  # noqa: ANN001
                                                                      faces: list[Path],
                                                                      analysed: Sequence[str]) -> None:
    drive, parked = tmp_path / "media" / "disk", tmp_path / "parked"
    drive.mkdir(parents=True)
    for i in range(2):
        shutil.copy(faces[i], drive / f"d{i}.jpg")
    watcher = start([drive])
    indexed = ok_paths(engine)
    assert len(indexed) == 2
    os.rename(drive, parked)  # the drive goes away
    wait_for(lambda: str(drive) in watcher.paused_roots(), "the root to be paused")
    assert ok_paths(engine) == indexed  # kept, not emptied
    shutil.copy(faces[2], parked / "added-elsewhere.jpg")  # changed while "unmounted"
    os.unlink(parked / "d0.jpg")
    os.rename(parked, drive)  # the drive comes back
    expected = {str(drive / "d1.jpg"), str(drive / "added-elsewhere.jpg")}
    wait_for(lambda: ok_paths(engine) == expected, "the rescan of the returning root")
    assert not watcher.paused_roots()
    assert analysed.count(str(drive / "d1.jpg")) == 1
    shutil.copy(faces[3], drive / "live-again.jpg")  # watched live again
    wait_for(lambda: str(drive / "live-again.jpg") in ok_paths(engine), "a new photo after the return")


def test_root_missing_at_start_is_picked_up_when_it_appears(start, engine, tmp_path: Path,  # noqa: ANN001
                                                            faces: list[Path]) -> None:
    drive = tmp_path / "not-yet-mounted"
    watcher = start([drive])
    assert str(drive) in watcher.paused_roots()
    staging = tmp_path / "staging"
    staging.mkdir()
    shutil.copy(faces[0], staging / "p.jpg")
    os.rename(staging, drive)
    wait_for(lambda: ok_paths(engine) == {str(drive / "p.jpg")}, "the photo on the root that appeared")


class _NoWatchesLeft(Observer):  # type: ignore[misc, valid-type]
    """An inotify observer on a system whose fs.inotify.max_user_watches is used up."""

    def schedule(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        raise OSError(errno.ENOSPC, "inotify watch limit reached")


def test_watch_limit_falls_back_to_periodic_rescans(start, engine, tmp_path: Path, faces: list[Path],  # noqa: ANN001
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="indexer.watch")
    root = tmp_path / "photos"
    root.mkdir()
    start([root], observer_factory=_NoWatchesLeft, rescan=0.5)
    shutil.copy(faces[0], root / "seen-by-rescan.jpg")
    wait_for(lambda: str(root / "seen-by-rescan.jpg") in ok_paths(engine), "a periodic rescan to find the photo")
    shutil.copy(faces[1], root / "again.jpg")
    wait_for(lambda: str(root / "again.jpg") in ok_paths(engine), "the next rescan")
    lines = [r.getMessage() for r in caplog.records if "falling back" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "inotify watch limit reached" in lines[0] and "max_user_watches" in lines[0]


def test_queue_overflow_falls_back_with_one_line(start, engine, tmp_path: Path, faces: list[Path],  # noqa: ANN001
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="indexer.watch")
    root = tmp_path / "photos"
    root.mkdir()
    start([root], rescan=0.5)
    # what watchdog's inotify reader logs when the kernel reports IN_Q_OVERFLOW
    for _ in range(3):
        logging.getLogger("watchdog.observers.inotify_c").warning("Inotify queue overflowed; filesystem events "
                                                                  "were lost")
    wait_for(lambda: sum("periodic rescan" in r.getMessage() for r in caplog.records) >= 2, "periodic rescans")
    lines = [r.getMessage() for r in caplog.records if "falling back" in r.getMessage()]
    assert len(lines) == 1 and "overflowed" in lines[0], lines
    with Session(engine) as s:  # the start-up reconcile is a run; rescans that found nothing to do are not
        assert s.scalar(select(func.count()).select_from(Run)) == 1
    assert not [r for r in caplog.records if r.name.startswith("watchdog")]  # replaced by our line
    shutil.copy(faces[0], root / "still-live.jpg")  # inotify keeps working after an overflow
    wait_for(lambda: str(root / "still-live.jpg") in ok_paths(engine), "a live event after the overflow")


def test_dead_watchdog_thread_falls_back(start, engine, tmp_path: Path, faces: list[Path],  # noqa: ANN001
                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="indexer.watch")
    root = tmp_path / "photos"
    root.mkdir()
    start([root], rescan=0.5)

    class Reader(threading.Thread):
        def run(self) -> None:
            raise OSError(errno.ENOSPC, "inotify watch limit reached")

    Reader.__module__ = "watchdog.observers.inotify_c"  # as if watchdog's reader died adding a watch
    t = Reader()
    t.start()
    t.join()
    wait_for(lambda: any("falling back" in r.getMessage() for r in caplog.records), "the fallback line")
    shutil.copy(faces[0], root / "found.jpg")
    wait_for(lambda: str(root / "found.jpg") in ok_paths(engine), "a rescan to find the photo")


def test_polling_observer(start, engine, tmp_path: Path, faces: list[Path], analysed: Sequence[str]) -> None:  # noqa: ANN001
    root = tmp_path / "share"
    root.mkdir()
    start([root], poll=0.2)
    copy_slowly(faces[0], root / "p.jpg")
    wait_for(lambda: str(root / "p.jpg") in ok_paths(engine), "the polled photo")
    os.rename(root / "p.jpg", root / "q.jpg")
    wait_for(lambda: ok_paths(engine) == {str(root / "q.jpg")}, "the polled rename")
    assert analysed == [str(root / "p.jpg")]


def test_a_name_that_is_not_utf8_never_stops_the_watcher(start, engine, tmp_path: Path,  # noqa: ANN001
                                                         faces: list[Path]) -> None:
    """It used to exit at start-up, or after 5 "batch failed" lines when such a file appeared later."""
    root = tmp_path / "photos"
    root.mkdir()
    at_start = root / os.fsdecode(b"d\xe9j\xe0.jpg")  # Latin-1, as old Windows archives have them
    shutil.copy(faces[0], at_start)
    start([root])
    assert ok_paths(engine) == {str(at_start)}
    later = root / os.fsdecode(b"apr\xe8s.jpg")
    shutil.copy(faces[1], later)
    shutil.copy(faces[2], root / "plain.jpg")
    wait_for(lambda: ok_paths(engine) == {str(at_start), str(later), str(root / "plain.jpg")},
             "both names in the index")
