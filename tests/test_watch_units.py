"""The watcher's rules with a fake clock, no threads and no sleeps: settle, stall, close-write,
renames, coalescing, the batch window, pausing an unmounted root, and the fall-back after a queue
overflow.  (tests/test_watch.py runs the real thing end to end.)"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest
from watchdog.events import FileClosedEvent, FileCreatedEvent, FileModifiedEvent

from indexer.summary import ScanSummary
from indexer.watch import Op, PendingFiles, Watcher, WatchOptions, coalesce
from indexer.watch.observer import WatchdogHooks
from indexer.watch.pending import Timing
from indexer.watch.roots import BACK, KEEP, PAUSE, REPLACED, RESCHEDULE, WatchedRoot, recheck_verdict

TIMING = Timing(settle=2.0, stall=60.0, quiet=0.5, max_delay=2.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def pending_with(sigs: dict[str, tuple[int, int] | None]) -> PendingFiles:
    return PendingFiles(TIMING, signature=lambda p: sigs.get(p))


# -- pending files -------------------------------------------------------------------------
def test_a_file_without_close_write_waits_until_its_signature_settles() -> None:
    sigs = {"/r/a.jpg": (100, 1)}
    pending = pending_with(sigs)
    pending.touch("/r/a.jpg", "/r", 0.0)
    assert not pending.is_ready("/r/a.jpg", 1.9)
    sigs["/r/a.jpg"] = (200, 2)           # still growing when it first falls due
    assert not pending.is_ready("/r/a.jpg", 2.0)
    assert not pending.is_ready("/r/a.jpg", 3.9)
    assert pending.is_ready("/r/a.jpg", 4.0)  # settle seconds after the last change


def test_close_write_makes_it_ready_after_a_quiet_moment_without_a_stat() -> None:
    pending = PendingFiles(TIMING, signature=lambda p: pytest.fail("a closed file needs no stat"))
    pending.touch("/r/a.jpg", "/r", 0.0, writing=True)
    assert pending.due(pending.get("/r/a.jpg")) == 60.0  # open for writing: waits for its close (or stall)
    pending.touch("/r/a.jpg", "/r", 1.0, closed=True)
    assert not pending.is_ready("/r/a.jpg", 1.4)
    assert pending.is_ready("/r/a.jpg", 1.5)


def test_a_stalled_writer_and_an_empty_file_wait_stall_seconds() -> None:
    pending = pending_with({"/r/empty.jpg": (0, 5)})
    pending.touch("/r/open.jpg", "/r", 0.0, writing=True)
    pending.touch("/r/empty.jpg", "/r", 0.0)
    assert pending.ready(59.9) == []
    assert sorted(pending.ready(60.0)) == ["/r/empty.jpg", "/r/open.jpg"]


def test_a_vanished_file_is_ready_so_its_row_is_removed() -> None:
    sigs: dict = {"/r/a.jpg": (10, 1)}
    pending = pending_with(sigs)
    pending.touch("/r/a.jpg", "/r", 0.0)
    del sigs["/r/a.jpg"]
    assert pending.is_ready("/r/a.jpg", 2.0)


def test_renames_move_pending_files_and_drop_what_leaves() -> None:
    pending = pending_with({})
    for p in ("/r/d/a.jpg", "/r/d/sub/b.jpg", "/r/c.jpg"):
        pending.touch(p, "/r", 0.0, writing=True)
    pending.rename("/r/c.jpg", "/r/e.jpg", "/r", 1.0)
    assert "/r/e.jpg" in pending and "/r/c.jpg" not in pending
    assert not pending.get("/r/e.jpg").complete  # still being written: not complete by the rename
    pending.rename_folder("/r/d", "/r/x", lambda p: None if "sub" in p else "/r", 2.0)
    assert sorted(pending) == ["/r/e.jpg", "/r/x/a.jpg"]
    pending.drop("/r/x")
    assert list(pending) == ["/r/e.jpg"]
    assert pending.take(["/r/e.jpg"]) == {"/r/e.jpg": "/r"} and len(pending) == 0


def test_next_due_waits_for_quiet_or_max_delay() -> None:
    pending = pending_with({})
    pending.touch("/r/a.jpg", "/r", 0.0, closed=True)
    assert pending.next_due(last_event=0.0) == 0.5      # ready at 0.5, quiet since 0.0
    assert pending.next_due(last_event=10.0) == 2.0     # a burst goes on elsewhere: flushed after max_delay
    assert pending_with({}).next_due(0.0) is None


def test_coalesce_drops_deletes_inside_deleted_folders_and_duplicates() -> None:
    ops = [Op("delete", "/r/a/x.jpg", "", 1.0), Op("delete", "/r/a/b/y.jpg", "", 1.0), Op("delete", "/r/a", "", 1.0),
           Op("move", "/r/c.jpg", "/r/d.jpg", 2.0), Op("move", "/r/c.jpg", "/r/d.jpg", 2.0),
           Op("delete", "/r/ab.jpg", "", 3.0), Op("delete", "/r/ab.jpg", "", 3.0)]
    assert [op[:3] for op in coalesce(ops)] == [("delete", "/r/a", ""), ("move", "/r/c.jpg", "/r/d.jpg"),
                                                ("delete", "/r/ab.jpg", "")]


# -- roots -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("paused", "problem", "identity", "alive", "expected"), [
    (None, None, (1, 2), True, KEEP),
    (None, "not found (unmounted drive?)", None, True, PAUSE),
    (None, "empty while the index has photos there (unmounted drive?)", (1, 2), True, KEEP),  # emptied by the user
    (None, "empty while the index has photos there (unmounted drive?)", (9, 9), True, PAUSE),  # unmounted
    (None, None, (9, 9), True, REPLACED),
    (None, None, (1, 2), False, RESCHEDULE),
    ("not found", None, None, True, BACK),
    ("not found", "not found", None, True, KEEP),
])
def test_recheck_verdict(paused, problem, identity, alive, expected) -> None:  # noqa: ANN001
    root = WatchedRoot("/media/disk", watch=object(), identity=(1, 2), paused=paused)
    assert recheck_verdict(root, problem, identity, alive) == expected


# -- the loop, with a fake clock --------------------------------------------------------------
class FakeIndexer:
    """Records what the loop asks of the indexer (the real one is tested in test_index/test_watch)."""

    def __init__(self, engine) -> None:  # noqa: ANN001
        self.engine = engine
        self.stop = threading.Event()
        self.calls: list[tuple] = []

    def scan(self, roots, record_idle=False) -> ScanSummary:  # noqa: ANN001
        self.calls.append(("scan", tuple(roots)))
        return ScanSummary()

    def index_files(self, paths, root_of) -> ScanSummary:  # noqa: ANN001
        self.calls.append(("index", tuple(paths)))
        return ScanSummary(new=len(paths))

    def move(self, src, dest, dest_root) -> int:  # noqa: ANN001
        self.calls.append(("move", src, dest))
        return 1

    def remove(self, path) -> int:  # noqa: ANN001
        self.calls.append(("remove", path))
        return 1

    def warm_up(self) -> None:
        pass

    def release_idle(self) -> None:
        pass

    def close(self) -> None:
        pass


class FakeEmitter:
    def __init__(self, watch: object) -> None:
        self.watch = watch

    def is_alive(self) -> bool:
        return True


class FakeObserver:
    """An inotify-like observer that never fires by itself: the test posts the events."""

    def __init__(self) -> None:
        self.emitters: list[FakeEmitter] = []

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def join(self, timeout: float | None = None) -> None: ...

    def is_alive(self) -> bool:
        return True

    def schedule(self, handler, path, recursive=True, event_filter=None):  # noqa: ANN001, ANN201
        watch = object()
        self.emitters.append(FakeEmitter(watch))
        return watch

    def unschedule(self, watch) -> None:  # noqa: ANN001
        self.emitters = [e for e in self.emitters if e.watch is not watch]


FakeObserver.__name__ = "FakeInotifyObserver"  # reports close-write, like inotify


@pytest.fixture()
def loop(engine, tmp_path: Path):  # noqa: ANN001, ANN201
    root = tmp_path / "photos"
    root.mkdir()
    clock = FakeClock()
    indexer = FakeIndexer(engine)
    watcher = Watcher(indexer, [root], WatchOptions(settle=2.0, recheck=10.0, rescan=300.0), FakeObserver, clock)
    watcher.start()
    assert indexer.calls == [("scan", (str(root),))]  # the start-up reconcile
    indexer.calls.clear()
    return watcher, indexer, clock, root


def test_a_burst_of_events_is_one_batch_after_close_write(loop) -> None:  # noqa: ANN001
    watcher, indexer, clock, root = loop
    paths = [str(root / f"p{i}.jpg") for i in range(3)]
    for p in paths:
        Path(p).write_bytes(b"jpeg")
        watcher._post(FileCreatedEvent(p))
        watcher._post(FileModifiedEvent(p))
        watcher._post(FileModifiedEvent(p))
        watcher._post(FileClosedEvent(p))
    watcher.step()
    assert indexer.calls == []                     # not quiet yet
    clock.advance(0.5)
    watcher.step()
    assert indexer.calls == [("index", tuple(paths))]  # once each, one batch
    assert watcher.totals.batches == 1 and watcher.totals.summary.new == 3


def test_a_file_seen_without_close_is_indexed_once_it_settles(loop) -> None:  # noqa: ANN001
    watcher, indexer, clock, root = loop
    photo = root / "copied.jpg"
    photo.write_bytes(b"part")
    watcher._post(FileCreatedEvent(str(photo)))
    watcher.step()
    clock.advance(1.0)
    with open(photo, "ab") as f:                   # still growing
        f.write(b" more")
    os.utime(photo, ns=(1, 1))
    watcher.step()
    clock.advance(1.0)
    watcher.step()                                 # due, but the signature changed: wait again
    assert indexer.calls == []
    clock.advance(2.0)
    watcher.step()
    assert indexer.calls == [("index", (str(photo),))]


def test_an_unmounted_root_is_paused_with_its_pending_work_dropped(loop, tmp_path: Path) -> None:  # noqa: ANN001
    watcher, indexer, clock, root = loop
    watcher._post(FileCreatedEvent(str(root / "a.jpg")))
    watcher.step()
    assert str(root / "a.jpg") in watcher.pending
    root.rename(tmp_path / "parked")               # the drive goes away
    clock.advance(10.0)
    watcher.step()
    assert watcher.paused_roots() == {str(root): "not found (unmounted drive?)"}
    assert len(watcher.pending) == 0 and ("remove", str(root / "a.jpg")) not in indexer.calls
    (tmp_path / "parked").rename(root)             # back
    clock.advance(10.0)
    watcher.step()
    assert watcher.paused_roots() == {} and indexer.calls[-1] == ("scan", (str(root),))


def test_an_overflow_falls_back_to_periodic_rescans_said_once(loop, caplog) -> None:  # noqa: ANN001
    watcher, indexer, clock, root = loop
    caplog.set_level(logging.INFO, logger="indexer.watch")
    hooks = WatchdogHooks(watcher._on_overflow, watcher._on_thread_failure)
    hooks.install()
    try:
        for _ in range(3):  # what watchdog's inotify reader logs on IN_Q_OVERFLOW
            logging.getLogger("watchdog.observers.inotify_c").warning("Inotify queue overflowed")
    finally:
        hooks.remove()
    watcher.step()
    assert indexer.calls == [("scan", (str(root),))]    # a full rescan at once
    clock.advance(299.0)
    watcher.step()
    assert len(indexer.calls) == 1
    clock.advance(1.0)
    watcher.step()
    assert indexer.calls == [("scan", (str(root),))] * 2  # and every `rescan` seconds after
    lines = [r.getMessage() for r in caplog.records if "falling back" in r.getMessage()]
    assert len(lines) == 1 and "overflowed" in lines[0]
    assert watcher._observer is not None                  # inotify keeps working after an overflow
