"""The watcher's loop: events -> pending state -> batches handed to the same `Indexer` as `index`.

The one thread that calls `Watcher.run` does everything that touches files, models or the
database; watchdog's threads only post events (observer.py).  Time comes from the injected
`clock`, so the loop's timers (settle, batch windows, rechecks, rescans, pool release) can be
driven by a fake clock in unit tests; the thread-and-sleep tests are the end-to-end ones.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from watchdog.events import FileSystemEvent
from watchdog.observers.api import BaseObserver, ObservedWatch

from indexer.media.xmp import photos_of_sidecar
from indexer.paths import is_under
from indexer.scan import Indexer, root_problem
from indexer.summary import ScanSummary
from indexer.walk import IGNORE_FILE, WalkProblems, excluded, is_sidecar_name, may_be_indexed, walk_photos
from indexer.watch.observer import (
    EVENT_TYPES,
    WATCH_LIMIT_HINT,
    EventHandler,
    WatchdogHooks,
    make_observer,
    reports_close_write,
    watch_failure,
)
from indexer.watch.pending import DELETE, MOVE, MOVEDIR, SCANDIR, Op, PendingFiles, Timing, coalesce
from indexer.watch.roots import BACK, PAUSE, REPLACED, RESCHEDULE, Roots, WatchedRoot, folder_identity, recheck_verdict

log = logging.getLogger("indexer.watch")

Clock = Callable[[], float]


@dataclass
class WatchOptions:
    settle: float = 2.0          # seconds a file's size and mtime must stay put when no close-write tells us
    poll: float | None = None    # poll every N seconds instead of inotify (network shares)
    recheck: float = 10.0        # how often roots are checked for being unmounted / back
    rescan: float = 300.0        # full-rescan period once live events cannot be trusted
    stall: float = 60.0          # a file open for writing this long without a write is indexed anyway
    max_delay: float = 2.0       # a continuous burst is still flushed this often
    max_batch: int = 256         # photos per batch (one log line each)
    pool_idle: float = 120.0     # a pool of several workers is stopped after this long without work

    @property
    def quiet(self) -> float:
        """Events for a path must stop this long before it is looked at (coalesces bursts)."""
        return min(0.5, self.settle)

    def timing(self) -> Timing:
        return Timing(settle=self.settle, stall=self.stall, quiet=self.quiet, max_delay=self.max_delay)


@dataclass
class WatchTotals:
    """What the watcher did since it started (for tests and the final log line)."""

    batches: int = 0
    analysed: int = 0
    summary: ScanSummary = field(default_factory=ScanSummary)
    removed: int = 0
    moved: int = 0

    def add(self, s: ScanSummary) -> None:
        self.summary.merge(s)
        self.analysed += s.analysed


class Watcher:
    """Keeps the index in step with `roots` until `indexer.stop` is set."""

    def __init__(self, indexer: Indexer, roots: Sequence[str | Path], options: WatchOptions | None = None,
                 observer_factory: Callable[[], BaseObserver] | None = None, clock: Clock = time.monotonic) -> None:
        self.indexer = indexer
        self.options = options or WatchOptions()
        self.clock = clock
        self.stop = indexer.stop
        self.ready = threading.Event()       # set once watching and the start-up reconcile is done
        self.totals = WatchTotals()
        self.roots = Roots(roots)
        self.pending = PendingFiles(self.options.timing())
        self._factory = observer_factory or (lambda: make_observer(self.options.poll))
        self._observer: BaseObserver | None = None
        self._close_events = False           # does this observer report close-write?
        self._handler = EventHandler(self._post)
        self._hooks = WatchdogHooks(self._on_overflow, self._on_thread_failure)
        self._inbox: deque[tuple[float, FileSystemEvent]] = deque()
        self._wake = threading.Event()
        self._ops: list[Op] = []             # folder operations, in event order
        self._rescan_roots: set[str] = set()
        self._last_event = 0.0
        self._overflowed = threading.Event()
        self._thread_failure: str | None = None
        self._fallback: str | None = None     # why live events are not trusted, once that happened
        self._rescan_at: float | None = None
        self._recheck_at = 0.0
        self._release_at: float | None = None  # when idle worker processes are let go
        self._failures = 0

    # -- life cycle -------------------------------------------------------------------
    def run(self) -> WatchTotals:
        """Watch until `stop` is set (SIGTERM/SIGINT in the CLI); the current photo is finished first."""
        self._hooks.install()
        try:
            self.start()
            while not self.stop.is_set():
                now = self.clock()
                self._wake.wait(max(0.0, self._next_wake(now) - now))
                self._wake.clear()
                if self.stop.is_set():
                    break
                self.step()
        finally:
            self._stop_observer()
            self.indexer.close()
            self._hooks.remove()
        s = self.totals.summary
        log.info("stopped: %d batches; %d new, %d changed, %d moved, %d removed since start",
                 self.totals.batches, s.new, s.changed, s.moved + self.totals.moved, s.deleted + self.totals.removed)
        return self.totals

    def step(self) -> None:
        """One turn of the loop: apply the events that arrived, run the timers that are due, flush."""
        self._drain()
        self._timers(self.clock())
        self._flush(self.clock())

    def paused_roots(self) -> dict[str, str]:
        """Roots that are paused (unmounted, gone), with the reason."""
        return self.roots.paused()

    def wake(self) -> None:
        """Make `run` look at its state now (after `stop` was set from a signal handler)."""
        self._wake.set()

    def start(self) -> None:
        """Start the observer, watch the roots that are there, and reconcile them with the index."""
        try:
            self._observer = self._factory()
            self._close_events = reports_close_write(self._observer)
            self._observer.start()
        except OSError as exc:
            self._observer = None
            self._fall_back(watch_failure(exc), self.clock())
        for root in self.roots:
            why = root_problem(self.indexer.engine, root.path)
            if why:
                root.paused = why
                log.warning("%s: %s; paused: its photos stay in the index, watching for it to come back",
                            root.path, why)
            else:
                self._schedule(root)
        if self._observer is None:
            kind = f"full rescans every {self.options.rescan:g}s"
        elif self.options.poll:
            kind = f"polling every {self.options.poll:g}s"
        else:
            kind = "inotify" if self._close_events else type(self._observer).__name__
        log.info("watching %s with %s", ", ".join(r.path for r in self.roots), kind)
        active = self.roots.active()
        if active:
            self._rescan(active, "start-up reconcile", record_idle=True)
        if self._rescan_at is not None:  # fell back already: the reconcile was the first rescan
            self._rescan_at = self.clock() + self.options.rescan
        self._recheck_at = self.clock() + self.options.recheck
        # the first photo must not wait for the model to load, and a model that cannot load is
        # said now, not when a photo first arrives
        self.indexer.warm_up()
        self.ready.set()

    def _schedule(self, root: WatchedRoot) -> None:
        root.identity = folder_identity(root.path)
        if root.identity is None:
            root.paused = "not found (unmounted drive?)"
            return
        root.paused = None
        if self._observer is None:
            return
        try:
            root.watch = self._observer.schedule(self._handler, root.path, recursive=True, event_filter=EVENT_TYPES)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EMFILE):
                self._fall_back(watch_failure(exc), self.clock())
            else:
                root.paused = f"cannot be watched: {exc.strerror or exc}"
                log.warning("%s %s; paused", root.path, root.paused)

    def _stop_observer(self) -> None:
        obs, self._observer = self._observer, None
        if obs is not None:
            try:
                obs.stop()
                obs.join(timeout=5)
            except RuntimeError:  # never started
                pass
        for root in self.roots:
            root.watch = None

    # -- called from watchdog's threads -------------------------------------------------------
    def _post(self, event: FileSystemEvent) -> None:
        self._inbox.append((self.clock(), event))
        self._wake.set()

    def _on_overflow(self) -> None:
        self._overflowed.set()
        self._wake.set()

    def _on_thread_failure(self, why: str) -> None:
        self._thread_failure = why
        self._wake.set()

    # -- events -> state (main thread) ------------------------------------------------------
    def _drain(self) -> None:
        while self._inbox:
            t, ev = self._inbox.popleft()
            self._last_event = max(self._last_event, t)
            try:
                self._apply(t, ev)
            except OSError as exc:  # a stat racing a delete: the next event or rescan settles it
                log.debug("event %s: %s", ev, exc)

    def _apply(self, t: float, ev: FileSystemEvent) -> None:
        kind = ev.event_type
        src = os.fsdecode(ev.src_path)
        dest = os.fsdecode(ev.dest_path) if kind == "moved" else ""
        if kind == "moved" and getattr(ev, "is_synthetic", False):
            return  # watchdog's per-file events for a moved folder: the folder move covers them
        if IGNORE_FILE in (os.path.basename(src), os.path.basename(dest)):
            for p in (src, dest):
                root = self.roots.root_of(p) if p else None
                if root:
                    self._rescan_roots.add(root)
            return
        if not ev.is_directory and any(is_sidecar_name(os.path.basename(p)) for p in (src, dest) if p):
            for photo in {ph for p in (src, dest) if p for ph in photos_of_sidecar(p)}:
                if self._indexable_root(photo):
                    self._touch(photo, t, complete=True)  # unchanged pixels: read on the metadata-only path
            return
        if ev.is_directory:
            if kind == "created":
                self._ops.append(Op(SCANDIR, src, "", t))
            elif kind == "deleted":
                self.pending.drop(src)
                self._ops.append(Op(DELETE, src, "", t))
            elif kind == "moved":
                self.pending.rename_folder(src, dest, self._indexable_root, t)
                self._ops.append(Op(MOVEDIR, src, dest, t))
            return
        if kind == "deleted":
            self.pending.drop(src)
            self._ops.append(Op(DELETE, src, "", t))
        elif kind == "moved":
            self.pending.rename(src, dest, self._indexable_root(dest), t)
            if self._indexable_root(src):
                self._ops.append(Op(MOVE, src, dest, t))
            elif self._indexable_root(dest):
                self._touch(dest, t, complete=True)
        elif self._indexable_root(src):
            if kind == "closed":
                self._touch(src, t, closed=True)
            elif kind == "modified":
                self._touch(src, t, writing=self._close_events)
            else:  # created, attrib
                self._touch(src, t)

    def _indexable_root(self, path: str) -> str | None:
        """The root of a photo name below an active root and not in a hidden folder, else None
        (.moodignore is checked at flush)."""
        root = self.roots.root_of(path)
        return root if root is not None and may_be_indexed(path, root) else None

    def _touch(self, path: str, t: float, **how: bool) -> None:
        entry = self.pending.get(path)
        root = entry.root if entry is not None else self.roots.root_of(path)
        if root is not None:
            self.pending.touch(path, root, t, **how)

    # -- timers -------------------------------------------------------------------------
    def _next_wake(self, now: float) -> float:
        o = self.options
        due = [self._recheck_at]
        if self._rescan_at is not None:
            due.append(self._rescan_at)
        if self._ops:
            due.append(min(self._last_event + o.quiet, self._ops[0].at + o.max_delay))
        if self._rescan_roots:
            due.append(self._last_event + o.quiet)
        files = self.pending.next_due(self._last_event)
        if files is not None:
            due.append(files)
        if self._release_at is not None:
            due.append(self._release_at)
        return min(due)

    def _timers(self, now: float) -> None:
        if self._overflowed.is_set():
            self._overflowed.clear()
            self._fall_back("the inotify event queue overflowed (events were lost)", now, keep_observer=True)
        if self._thread_failure:
            why, self._thread_failure = self._thread_failure, None
            self._fall_back(why, now)
        if now >= self._recheck_at:
            self._recheck_roots()
            self._recheck_at = now + self.options.recheck
        if self._rescan_at is not None and now >= self._rescan_at:
            self._rescan(self.roots.active(), "periodic rescan")
            self._rescan_at = self.clock() + self.options.rescan
        if self._release_at is not None and now >= self._release_at:
            self._release_at = None
            self.indexer.release_idle()  # idle: give a large pool's memory back, keep one worker

    def _fall_back(self, why: str, now: float, keep_observer: bool = False) -> None:
        """Live events cannot be trusted any more: rescan now and every `rescan` seconds, said once."""
        if self._fallback is None:
            hint = f"; {WATCH_LIMIT_HINT}" if "watch limit" in why else ""
            log.warning("%s: falling back to a full rescan every %gs%s", why, self.options.rescan, hint)
        else:
            log.debug("%s (already rescanning periodically)", why)
        self._fallback = why
        self._rescan_at = now
        if not keep_observer:
            self._stop_observer()

    # -- roots: unmounted, back, replaced ----------------------------------------------------------
    def _recheck_roots(self) -> None:
        obs = self._observer
        if obs is not None and self._fallback is None and not obs.is_alive():
            self._fall_back("the file watcher thread stopped", self.clock())
        for root in self.roots:
            if self.stop.is_set():
                return
            why = root_problem(self.indexer.engine, root.path)
            identity = folder_identity(root.path) if root.paused is None else None
            alive = root.watch is None or self._emitter_alive(root.watch)
            verdict = recheck_verdict(root, why, identity, alive)
            if verdict == PAUSE:
                self._pause(root, why)
            elif verdict in (REPLACED, RESCHEDULE):
                if verdict == REPLACED:
                    log.info("%s was replaced (remounted?): rescanning it", root.path)
                self._unschedule(root)
                self._schedule(root)
                self._rescan([root.path], f"rescan of {root.path}")
            elif verdict == BACK:
                log.info("%s is back: rescanning it", root.path)
                self._schedule(root)
                if root.paused is None:
                    self._rescan([root.path], f"rescan of {root.path}")

    def _emitter_alive(self, watch: ObservedWatch) -> bool:
        obs = self._observer
        if obs is None:
            return True
        return any(e.watch == watch and e.is_alive() for e in obs.emitters)

    def _pause(self, root: WatchedRoot, why: str) -> None:
        log.warning("%s: %s; paused: its photos stay in the index, watching for it to come back", root.path, why)
        root.paused = why
        self._unschedule(root)
        self.pending.drop(root.path)
        self._ops = [op for op in self._ops if not is_under(op.path, root.path)]
        self._rescan_roots.discard(root.path)

    def _unschedule(self, root: WatchedRoot) -> None:
        if root.watch is not None and self._observer is not None:
            try:
                self._observer.unschedule(root.watch)
            except (KeyError, OSError) as exc:
                log.debug("unschedule %s: %s", root.path, exc)
        root.watch = None

    def _root_alive(self, root: str) -> bool:
        """Before deleting rows: a root that vanished is paused instead (unmount, not deletion)."""
        r = self.roots.find(root)
        if r is None or r.paused is not None:
            return False
        if os.path.isdir(root) and folder_identity(root) == r.identity:
            return True
        self._pause(r, "not found (unmounted drive?)" if not os.path.isdir(root) else "replaced")
        return False

    # -- batches ----------------------------------------------------------------------------
    def _flush(self, now: float) -> None:
        o = self.options
        quiet = now - self._last_event >= o.quiet
        ops_due = self._ops and (quiet or now - self._ops[0].at >= o.max_delay)
        ready = self.pending.ready(now)
        files_due = ready and (quiet or now - self.pending.oldest_first_event(ready) >= o.max_delay)
        rescan_due = self._rescan_roots and quiet
        if not (ops_due or files_due or rescan_due):
            return
        started = self.clock()
        batch = ScanSummary()
        moved = removed = 0
        try:
            if ops_due:
                ops, self._ops = self._ops, []
                moved, removed = self._run_ops(ops)
            if rescan_due:
                roots, self._rescan_roots = sorted(self._rescan_roots), set()
                log.info("a %s changed: rescanning %s", IGNORE_FILE, ", ".join(roots))
                self._rescan(roots, None, batch)
            if files_due and not self.stop.is_set():
                ready = [p for p in ready if p in self.pending][: o.max_batch]
                self._index(ready, batch)
            self._failures = 0
        except Exception as exc:
            from indexer.vision.errors import DetectorError, ModelError

            if isinstance(exc, (ModelError, DetectorError)):
                raise
            self._failures += 1
            if self._failures > 5:
                raise
            log.error("batch failed (%s: %s); everything will be rescanned", type(exc).__name__, exc)
            self._rescan_roots.update(self.roots.active())
            return
        self._release_at = self.clock() + self.options.pool_idle
        self.totals.batches += 1
        self.totals.moved += moved
        self.totals.removed += removed
        self.totals.add(batch)
        line = batch.brief(self.clock() - started, moved, removed)
        if line:
            log.info("%s", line)

    def _index(self, paths: list[str], batch: ScanSummary) -> None:
        roots = self.pending.take(paths)
        keep = [p for p in paths if not excluded(p, roots[p])]
        if not keep:
            return
        batch.merge(self.indexer.index_files(keep, lambda p: roots[p]))

    def _run_ops(self, ops: list[Op]) -> tuple[int, int]:
        moved = removed = 0
        for op in coalesce(ops):
            if self.stop.is_set():
                self._ops = []  # the start-up reconcile of the next run finds them
                break
            if op.kind == DELETE:
                root = self.roots.root_of(op.path) or (op.path if self.roots.find(op.path) else None)
                if root is None:
                    continue
                if op.path == root or not self._root_alive(root):
                    r = self.roots.find(root)
                    if r.paused is None:
                        self._pause(r, "deleted or unmounted")
                    continue
                removed += self.indexer.remove(op.path)
            elif op.kind == SCANDIR:
                self._pend_tree(op.path, complete=False)
            elif op.kind in (MOVE, MOVEDIR):
                m, r = self._move(op.path, op.dest, op.kind == MOVEDIR)
                moved, removed = moved + m, removed + r
        return moved, removed

    def _move(self, src: str, dest: str, is_dir: bool) -> tuple[int, int]:
        src_root, dest_root = self.roots.root_of(src), self.roots.root_of(dest)
        src_in = src_root is not None and not excluded(src, src_root, is_dir)
        dest_in = dest_root is not None and not excluded(dest, dest_root, is_dir)
        if src_in and not self._root_alive(src_root):
            return 0, 0
        if src_in and dest_in:
            n = self.indexer.move(src, dest, dest_root)
            # Also look at what arrived: photos that were not indexed yet under the old name.
            if is_dir:
                self._pend_tree(dest, complete=True)
            else:
                self._touch(dest, self.clock(), complete=True)
            return n, 0
        if src_in:
            return 0, self.indexer.remove(src)
        if dest_in:
            if is_dir:
                self._pend_tree(dest, complete=False)
            else:
                self._touch(dest, self.clock(), complete=True)
        return 0, 0

    def _pend_tree(self, folder: str, complete: bool) -> None:
        """A folder that appeared (moved in, or created and being filled): its photos wait like new files."""
        root = self.roots.root_of(folder)
        if root is None or not os.path.isdir(folder) or excluded(folder, root, is_dir=True):
            return
        now = self.clock()
        for path, _st in walk_photos(folder, WalkProblems()):
            if path not in self.pending:
                self.pending.touch(path, root, now, complete=complete)

    def _rescan(self, roots: list[str], label: str | None, into: ScanSummary | None = None,
                record_idle: bool = False) -> None:
        if not roots:
            return
        summary = self.indexer.scan(roots, record_idle=record_idle)
        self._release_at = self.clock() + self.options.pool_idle
        if into is not None:
            into.merge(summary)
            return
        self.totals.add(summary)
        line = summary.brief(summary.seconds)
        log.info("%s: %s", label, line or f"{summary.unchanged} unchanged, nothing to do")
