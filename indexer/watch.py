"""The background indexer: file-system events -> the same `Indexer` calls as `moodindex index`.

Why it is shaped like this:

- watchdog's observer threads only *record* events (cheap name filters, then a deque);
  everything that touches files, models or the database runs in the one thread that
  calls `Watcher.run`, so the index sees a single writer and events are applied in order.
- A photo is indexed only once it is complete: after a close-write with nothing since
  (inotify), or when renamed into place, or else once its size and mtime have not changed
  for `settle` seconds (polling, or files that appeared without a close).  A file that is
  open for writing waits for its close (or `stall` seconds without a write).
- Events are coalesced per path and flushed in batches: a burst becomes one log line, a
  file written in many chunks is indexed once, and a deleted folder is one `remove`.
- Moves and renames re-point rows (`Indexer.move`), no model runs; a non-photo (an `.xmp`
  sidecar, the index's own files) never reaches the models.
- Roots that vanish (unmounted drives) are paused, never emptied, and rescanned when they
  come back.  When live events cannot be trusted (inotify watch limit, queue overflow, a
  watcher thread that died) it says so once and falls back to periodic full rescans.
- What happened while it was not running is found by `Indexer.scan` on start; since the
  index is only written in whole-photo transactions, kill -9 loses nothing.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from watchdog import events as wd_events
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.polling import PollingObserver

from indexer.paths import is_under, normalise_path
from indexer.scan import Indexer, root_problem
from indexer.summary import ScanSummary
from indexer.walk import IGNORE_FILE, WalkProblems, excluded, is_photo_name, may_be_indexed, walk_photos

log = logging.getLogger(__name__)

# The events worth waking up for.  Leaving out IN_OPEN and IN_CLOSE_NOWRITE matters: the
# indexer's own reads of a photo would otherwise wake the watcher for every photo it reads.
EVENT_TYPES: list[type[FileSystemEvent]] = [
    cls for cls in (getattr(wd_events, name, None) for name in (
        "FileCreatedEvent", "FileModifiedEvent", "FileAttribEvent", "FileClosedEvent", "FileDeletedEvent",
        "FileMovedEvent", "DirCreatedEvent", "DirDeletedEvent", "DirMovedEvent"))
    if cls is not None
]
WATCH_LIMIT_HINT = ("raise it with `sudo sysctl fs.inotify.max_user_watches=524288` "
                    "(and in /etc/sysctl.d/ to keep it)")


class WatchError(RuntimeError):
    """The watcher cannot start (bad roots); the message says why."""


@dataclass
class WatchOptions:
    settle: float = 2.0          # seconds a file's size and mtime must stay put when no close-write tells us
    poll: float | None = None    # poll every N seconds instead of inotify (network shares)
    recheck: float = 10.0        # how often roots are checked for being unmounted / back
    rescan: float = 300.0        # full-rescan period once live events cannot be trusted
    stall: float = 60.0          # a file open for writing this long without a write is indexed anyway
    max_delay: float = 2.0       # a continuous burst is still flushed this often
    max_batch: int = 256         # photos per batch (one log line each)
    pool_idle: float = 120.0     # worker processes are stopped after this long without work

    @property
    def quiet(self) -> float:
        """Events for a path must stop this long before it is looked at (coalesces bursts)."""
        return min(0.5, self.settle)


@dataclass
class _File:
    """A photo waiting to be (re)indexed."""

    root: str
    first: float
    last_event: float
    writing: bool = False        # modified since its last close-write (inotify only)
    complete: bool = False       # closed after writing, or renamed into place
    sig: tuple[int, int] | None = None
    sig_since: float = 0.0


@dataclass
class _Root:
    path: str
    watch: ObservedWatch | None = None
    identity: tuple[int, int] | None = None   # (st_dev, st_ino): a remount replaces it
    paused: str | None = None                 # why, while unmounted


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


def make_observer(poll: float | None) -> BaseObserver:
    """inotify (the platform default) or, with `poll`, watchdog's PollingObserver."""
    return PollingObserver(timeout=poll) if poll else Observer()


class _Handler(FileSystemEventHandler):
    """Runs in watchdog's thread: drop what can never matter, queue the rest, wake the loop."""

    def __init__(self, watcher: Watcher) -> None:
        self._watcher = watcher

    def dispatch(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            if event.event_type in ("created", "deleted", "moved"):
                self._watcher._post(event)
            return
        names = [os.path.basename(os.fsdecode(event.src_path))]
        if event.event_type == "moved":
            names.append(os.path.basename(os.fsdecode(event.dest_path)))
        if any(is_photo_name(n) or n == IGNORE_FILE for n in names):
            self._watcher._post(event)


class _OverflowFilter(logging.Filter):
    """watchdog reports a kernel queue overflow only as a log record: turn it into a call."""

    def __init__(self, on_overflow: Callable[[], None]) -> None:
        super().__init__()
        self._on_overflow = on_overflow

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "overflow" in message.lower():
            self._on_overflow()
            return False  # the watcher logs its own single line
        return "called when the thread is inactive" not in message  # a harmless race when a root is paused


class Watcher:
    """Keeps the index in step with `roots` until `indexer.stop` is set."""

    def __init__(self, indexer: Indexer, roots: Sequence[str | Path], options: WatchOptions | None = None,
                 observer_factory: Callable[[], BaseObserver] | None = None) -> None:
        self.indexer = indexer
        self.options = options or WatchOptions()
        self.stop = indexer.stop
        self.ready = threading.Event()       # set once watching and the start-up reconcile is done
        self.totals = WatchTotals()
        self._roots = [_Root(r) for r in _distinct_roots(roots)]
        self._factory = observer_factory or (lambda: make_observer(self.options.poll))
        self._observer: BaseObserver | None = None
        self._close_events = False           # does this observer report close-write?
        self._handler = _Handler(self)
        self._inbox: deque[tuple[float, FileSystemEvent]] = deque()
        self._wake = threading.Event()
        self._pending: dict[str, _File] = {}
        self._ops: list[tuple[str, str, str, float]] = []   # (kind, path, dest, time) in event order
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
        filters = self._install_hooks()
        try:
            self._start()
            while not self.stop.is_set():
                now = time.monotonic()
                self._wake.wait(max(0.0, self._next_wake(now) - now))
                self._wake.clear()
                if self.stop.is_set():
                    break
                self._drain()
                self._timers(time.monotonic())
                self._flush(time.monotonic())
        finally:
            self._stop_observer()
            self.indexer.close()
            self._remove_hooks(filters)
        s = self.totals.summary
        log.info("stopped: %d batches; %d new, %d changed, %d moved, %d removed since start",
                 self.totals.batches, s.new, s.changed, s.moved + self.totals.moved, s.deleted + self.totals.removed)
        return self.totals

    def paused_roots(self) -> dict[str, str]:
        """Roots that are paused (unmounted, gone), with the reason."""
        return {r.path: r.paused for r in self._roots if r.paused}

    def wake(self) -> None:
        """Make `run` look at its state now (after `stop` was set from a signal handler)."""
        self._wake.set()

    def _start(self) -> None:
        try:
            self._observer = self._factory()
            self._close_events = "inotify" in type(self._observer).__name__.lower()
            self._observer.start()
        except OSError as exc:
            self._observer = None
            self._fall_back(_watch_failure(exc), time.monotonic())
        for root in self._roots:
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
        log.info("watching %s with %s", ", ".join(r.path for r in self._roots), kind)
        active = [r.path for r in self._roots if r.paused is None]
        if active:
            self._rescan(active, "start-up reconcile", record_idle=True)
        if self._rescan_at is not None:  # fell back already: the reconcile was the first rescan
            self._rescan_at = time.monotonic() + self.options.rescan
        self._recheck_at = time.monotonic() + self.options.recheck
        self.ready.set()

    def _schedule(self, root: _Root) -> None:
        root.identity = _identity(root.path)
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
                self._fall_back(_watch_failure(exc), time.monotonic())
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
        for root in self._roots:
            root.watch = None

    # -- hooks into watchdog's threads ------------------------------------------------------
    def _post(self, event: FileSystemEvent) -> None:
        self._inbox.append((time.monotonic(), event))
        self._wake.set()

    def _install_hooks(self) -> list[tuple[logging.Logger, logging.Filter]]:
        flt = _OverflowFilter(self._on_overflow)
        installed = []
        for name in ("watchdog.observers.inotify_c", "watchdog.observers.inotify"):
            lg = logging.getLogger(name)
            lg.addFilter(flt)
            if lg.getEffectiveLevel() > logging.WARNING:
                lg.setLevel(logging.WARNING)  # with -q the overflow warning must still be seen by the filter
            installed.append((lg, flt))
        self._old_excepthook = threading.excepthook
        threading.excepthook = self._excepthook
        return installed

    def _remove_hooks(self, installed: list[tuple[logging.Logger, logging.Filter]]) -> None:
        for lg, flt in installed:
            lg.removeFilter(flt)
        threading.excepthook = self._old_excepthook

    def _on_overflow(self) -> None:
        self._overflowed.set()
        self._wake.set()

    def _excepthook(self, args: threading.ExceptHookArgs) -> None:
        """A watchdog thread that dies (e.g. the watch limit hit on a new folder) stops live events silently."""
        thread_module = type(args.thread).__module__ if args.thread is not None else ""
        if thread_module.startswith("watchdog") and args.exc_value is not None:
            exc = args.exc_value
            self._thread_failure = _watch_failure(exc) if isinstance(exc, OSError) else \
                f"file watching stopped ({type(exc).__name__}: {exc})"
            self._wake.set()
            return
        self._old_excepthook(args)

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
                root = self._root_of(p) if p else None
                if root:
                    self._rescan_roots.add(root)
            return
        if ev.is_directory:
            if kind == "created":
                self._ops.append(("scandir", src, "", t))
            elif kind == "deleted":
                self._drop_pending(src)
                self._ops.append(("delete", src, "", t))
            elif kind == "moved":
                self._rekey_pending(src, dest, t)
                self._ops.append(("movedir", src, dest, t))
            return
        if kind == "deleted":
            self._drop_pending(src)
            self._ops.append(("delete", src, "", t))
        elif kind == "moved":
            entry = self._pending.pop(src, None)
            if self._indexable(dest):
                if entry is not None:
                    entry.root = self._root_of(dest) or entry.root
                    entry.last_event, entry.complete = t, not entry.writing
                    self._pending[dest] = entry
            if self._indexable(src):
                self._ops.append(("move", src, dest, t))
            elif self._indexable(dest):
                self._touch(dest, t, complete=True)
        elif self._indexable(src):
            if kind == "closed":
                self._touch(src, t, closed=True)
            elif kind == "modified":
                self._touch(src, t, writing=self._close_events)
            else:  # created, attrib
                self._touch(src, t)

    def _indexable(self, path: str) -> bool:
        """A photo name below an active root and not in a hidden folder (.moodignore is checked at flush)."""
        root = self._root_of(path)
        return root is not None and may_be_indexed(path, root)

    def _touch(self, path: str, t: float, writing: bool = False, closed: bool = False,
               complete: bool = False) -> None:
        entry = self._pending.get(path)
        if entry is None:
            root = self._root_of(path)
            if root is None:
                return
            entry = self._pending[path] = _File(root, first=t, last_event=t)
        entry.last_event = max(entry.last_event, t)
        if writing:
            entry.writing, entry.complete = True, False
        elif closed:
            entry.writing, entry.complete = False, True
        elif complete and not entry.writing:
            entry.complete = True
        if not (entry.writing or entry.complete):
            entry.sig, entry.sig_since = _signature(path), t

    def _drop_pending(self, path: str) -> None:
        for p in [p for p in self._pending if is_under(p, path)]:
            del self._pending[p]

    def _rekey_pending(self, src: str, dest: str, t: float) -> None:
        for p in [p for p in self._pending if is_under(p, src, strict=True)]:
            entry = self._pending.pop(p)
            new = dest + p[len(src):]
            if self._indexable(new):
                entry.root, entry.last_event = self._root_of(new) or entry.root, t
                self._pending[new] = entry

    # -- timers -------------------------------------------------------------------------
    def _next_wake(self, now: float) -> float:
        o = self.options
        due = [self._recheck_at]
        if self._rescan_at is not None:
            due.append(self._rescan_at)
        if self._ops:
            due.append(min(self._last_event + o.quiet, self._ops[0][3] + o.max_delay))
        if self._rescan_roots:
            due.append(self._last_event + o.quiet)
        for entry in self._pending.values():
            # its own readiness, then the batch window (quiet everywhere, or waited max_delay already)
            due.append(max(self._due(entry), min(self._last_event + o.quiet, entry.first + o.max_delay)))
        if self._release_at is not None:
            due.append(self._release_at)
        return min(due)

    def _due(self, entry: _File) -> float:
        o = self.options
        if entry.writing:
            return entry.last_event + o.stall
        if entry.complete or entry.sig is None:
            return entry.last_event + o.quiet
        wait = o.settle if entry.sig[0] > 0 else o.stall  # an empty file is not a photo yet
        return max(entry.last_event + o.quiet, entry.sig_since + wait)

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
            self._rescan([r.path for r in self._roots if r.paused is None], "periodic rescan")
            self._rescan_at = time.monotonic() + self.options.rescan
        if self._release_at is not None and now >= self._release_at:
            self._release_at = None
            self.indexer.close()  # idle: give the worker processes' memory back (a no-op without any)

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
            self._fall_back("the file watcher thread stopped", time.monotonic())
        for root in self._roots:
            if self.stop.is_set():
                return
            why = root_problem(self.indexer.engine, root.path)
            if root.paused is None:
                identity = _identity(root.path)
                if why and (identity is None or identity != root.identity or "empty" not in why):
                    # gone, unreadable, or an unmount left the empty mount point: an empty folder that
                    # is still the one watched was emptied by the user, and its events said so
                    self._pause(root, why)
                elif identity != root.identity:
                    log.info("%s was replaced (remounted?): rescanning it", root.path)
                    self._unschedule(root)
                    self._schedule(root)
                    self._rescan([root.path], f"rescan of {root.path}")
                elif root.watch is not None and not self._emitter_alive(root.watch):
                    self._unschedule(root)  # a polling emitter stops when its folder vanished for a moment
                    self._schedule(root)
                    self._rescan([root.path], f"rescan of {root.path}")
            elif why is None:
                log.info("%s is back: rescanning it", root.path)
                self._schedule(root)
                if root.paused is None:
                    self._rescan([root.path], f"rescan of {root.path}")

    def _emitter_alive(self, watch: ObservedWatch) -> bool:
        obs = self._observer
        if obs is None:
            return True
        return any(e.watch == watch and e.is_alive() for e in obs.emitters)

    def _pause(self, root: _Root, why: str) -> None:
        log.warning("%s: %s; paused: its photos stay in the index, watching for it to come back", root.path, why)
        root.paused = why
        self._unschedule(root)
        self._drop_pending(root.path)
        self._ops = [op for op in self._ops if not is_under(op[1], root.path)]
        self._rescan_roots.discard(root.path)

    def _unschedule(self, root: _Root) -> None:
        if root.watch is not None and self._observer is not None:
            try:
                self._observer.unschedule(root.watch)
            except (KeyError, OSError) as exc:
                log.debug("unschedule %s: %s", root.path, exc)
        root.watch = None

    def _root_alive(self, root: str) -> bool:
        """Before deleting rows: a root that vanished is paused instead (unmount, not deletion)."""
        for r in self._roots:
            if r.path == root and r.paused is None:
                if os.path.isdir(root) and _identity(root) == r.identity:
                    return True
                self._pause(r, "not found (unmounted drive?)" if not os.path.isdir(root) else "replaced")
                return False
        return False

    def _root_of(self, path: str) -> str | None:
        best = None
        for r in self._roots:
            if r.paused is None and is_under(path, r.path):
                if best is None or len(r.path) > len(best):
                    best = r.path
        return best

    # -- batches ----------------------------------------------------------------------------
    def _flush(self, now: float) -> None:
        o = self.options
        quiet = now - self._last_event >= o.quiet
        ops_due = self._ops and (quiet or now - self._ops[0][3] >= o.max_delay)
        ready = [p for p, e in self._pending.items() if self._is_ready(p, e, now)]
        files_due = ready and (quiet or now - min(self._pending[p].first for p in ready) >= o.max_delay)
        rescan_due = self._rescan_roots and quiet
        if not (ops_due or files_due or rescan_due):
            return
        started = time.monotonic()
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
                ready = [p for p in ready if p in self._pending][: o.max_batch]
                self._index(ready, batch)
            self._failures = 0
        except Exception as exc:
            from indexer.vision.emotion import ModelError
            from indexer.vision.faces import DetectorError

            if isinstance(exc, (ModelError, DetectorError)):
                raise
            self._failures += 1
            if self._failures > 5:
                raise
            log.error("batch failed (%s: %s); everything will be rescanned", type(exc).__name__, exc)
            self._rescan_roots.update(r.path for r in self._roots if r.paused is None)
            return
        self._release_at = time.monotonic() + self.options.pool_idle
        if ops_due or files_due or rescan_due:
            self.totals.batches += 1
            self.totals.moved += moved
            self.totals.removed += removed
            self.totals.add(batch)
            line = batch.brief(time.monotonic() - started, moved, removed)
            if line:
                log.info("%s", line)

    def _is_ready(self, path: str, entry: _File, now: float) -> bool:
        if now < self._due(entry):
            return False
        if entry.writing or entry.complete:
            return True  # closed, renamed into place, or stalled for `stall` seconds
        sig = _signature(path)
        if sig is None:
            return True  # gone: index_files removes its row
        if sig != entry.sig:
            entry.sig, entry.sig_since = sig, now
            return False
        return now >= self._due(entry)

    def _index(self, paths: list[str], batch: ScanSummary) -> None:
        roots = {p: self._pending.pop(p).root for p in paths}
        keep = [p for p in paths if not excluded(p, roots[p])]
        if not keep:
            return
        summary = self.indexer.index_files(keep, lambda p: roots[p])
        batch.merge(summary)

    def _run_ops(self, ops: list[tuple[str, str, str, float]]) -> tuple[int, int]:
        moved = removed = 0
        for kind, path, dest, _t in _coalesce(ops):
            if self.stop.is_set():
                self._ops = []  # the start-up reconcile of the next run finds them
                break
            if kind == "delete":
                root = self._root_of(path) or next((r.path for r in self._roots if r.path == path), None)
                if root is None:
                    continue
                if path == root or not self._root_alive(root):
                    r = next(r for r in self._roots if r.path == root)
                    if r.paused is None:
                        self._pause(r, "deleted or unmounted")
                    continue
                removed += self.indexer.remove(path)
            elif kind == "scandir":
                self._pend_tree(path, complete=False)
            elif kind in ("move", "movedir"):
                m, r = self._move(path, dest, kind == "movedir")
                moved, removed = moved + m, removed + r
        return moved, removed

    def _move(self, src: str, dest: str, is_dir: bool) -> tuple[int, int]:
        src_root, dest_root = self._root_of(src), self._root_of(dest)
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
                self._touch(dest, time.monotonic(), complete=True)
            return n, 0
        if src_in:
            return 0, self.indexer.remove(src)
        if dest_in:
            if is_dir:
                self._pend_tree(dest, complete=False)
            else:
                self._touch(dest, time.monotonic(), complete=True)
        return 0, 0

    def _pend_tree(self, folder: str, complete: bool) -> None:
        """A folder that appeared (moved in, or created and being filled): its photos wait like new files."""
        root = self._root_of(folder)
        if root is None or not os.path.isdir(folder) or excluded(folder, root, is_dir=True):
            return
        now = time.monotonic()
        for path, _st in walk_photos(folder, WalkProblems()):
            if path not in self._pending:
                self._touch(path, now, complete=complete)

    def _rescan(self, roots: list[str], label: str | None, into: ScanSummary | None = None,
                record_idle: bool = False) -> None:
        if not roots:
            return
        summary = self.indexer.scan(roots, record_idle=record_idle)
        self._release_at = time.monotonic() + self.options.pool_idle
        if into is not None:
            into.merge(summary)
            return
        self.totals.add(summary)
        line = summary.brief(summary.seconds)
        log.info("%s: %s", label, line or f"{summary.unchanged} unchanged, nothing to do")


# -- helpers ---------------------------------------------------------------------------------
def _distinct_roots(roots: Iterable[str | Path]) -> list[str]:
    """Normalised, deduplicated, and without roots nested in another (their events arrive twice)."""
    out: list[str] = []
    for r in sorted({normalise_path(r) for r in roots}):
        if os.path.isfile(r):
            raise WatchError(f"{r}: not a folder (watch folders; index single files with `moodindex index`)")
        if any(is_under(r, o) for o in out):
            log.info("%s is inside another watched folder", r)
            continue
        out.append(r)
    if not out:
        raise WatchError("no folders to watch")
    return out


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _signature(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _watch_failure(exc: BaseException) -> str:
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC:
        try:
            limit = Path("/proc/sys/fs/inotify/max_user_watches").read_text().strip()
        except OSError:
            limit = "?"
        return f"inotify watch limit reached (fs.inotify.max_user_watches = {limit})"
    if code == errno.EMFILE:
        return "inotify instance limit reached (fs.inotify.max_user_instances)"
    return f"file watching failed ({exc})"


def _coalesce(ops: list[tuple[str, str, str, float]]) -> list[tuple[str, str, str, float]]:
    """Within each run of consecutive deletes, drop those inside another deleted folder (rm -r)."""
    out: list[tuple[str, str, str, float]] = []
    run: list[tuple[str, str, str, float]] = []

    def close_run() -> None:
        paths = {op[1] for op in run}
        seen: set[str] = set()
        for op in run:
            p = op[1]
            parents = (p[:i] for i in range(len(p)) if p[i] == "/" and i > 0)
            if p in seen or any(q in paths for q in parents):
                continue
            seen.add(p)
            out.append(op)
        run.clear()

    for op in ops:
        if op[0] == "delete":
            run.append(op)
            continue
        close_run()
        if out and out[-1][:3] == op[:3]:
            continue  # a duplicate event
        out.append(op)
    close_run()
    return out
