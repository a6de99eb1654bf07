"""Executors: who runs `pipeline.Analyzer` on the photos a scan hands over.

The scan gives an executor paths (with the index's hash and orientation of changed files) and
stores the `PhotoResult`s it yields, in whatever order they finish; it never knows where they were
computed.  `LocalExecutor` is the one we have: a pool of spawned worker processes that survives a
worker dying, never this process (a decoder that segfaults would take the run, or the watcher,
with it).  A Dask (or other cluster) executor is a second class with the same methods.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Protocol

from indexer.config import Settings
from indexer.domain import STATUS_ERROR
from indexer.media.fingerprint import KnownPhoto
from indexer.results import PhotoResult
from indexer.vision.errors import ModelError
from indexer.worker import analyze_in_worker, init_worker, worker_ready

log = logging.getLogger(__name__)

ONE_WORKER_BELOW = 4   # fewer files than this go to one worker: starting more costs more than they save
QUEUED_PER_WORKER = 4  # tasks submitted ahead per worker, so none idles between photos


class Executor(Protocol):
    def results(self, paths: Sequence[str], known: Mapping[str, KnownPhoto],
                isolate: AbstractSet[str] = frozenset()) -> Iterator[PhotoResult]:
        """Analyse `paths`, yielding one result per path as each finishes; stop early once the
        executor's stop event is set.  Paths in `isolate` (a worker died on them before) each run
        alone in a fresh process, where that can be arranged.  A result whose analysing process
        died has `crashed` set.  Raises ModelError/DetectorError when the models cannot load."""
        ...

    def warm_up(self) -> None:
        """Load what analysing needs now, not with the first photo; raises ModelError/DetectorError."""
        ...

    def release_idle(self) -> None:
        """Nothing to do for a while (the watcher): let go of what is cheap to start again."""
        ...

    def close(self) -> None:
        """Let go of workers (idempotent); the next `results` starts them again."""
        ...


class LocalExecutor:
    """This machine: one worker process for -j 1 or a few files, else `settings.workers` of them.

    The pool is kept between `results` calls (the watcher's events pay the model load once), and
    checked when it starts: a model or detector that does not load is the caller's ModelError or
    DetectorError, with the message the worker got."""

    def __init__(self, settings: Settings, stop: threading.Event) -> None:
        self.settings = settings
        self.stop = stop
        self._pool: cf.ProcessPoolExecutor | None = None
        self._pool_size = 0

    def results(self, paths: Sequence[str], known: Mapping[str, KnownPhoto],
                isolate: AbstractSet[str] = frozenset()) -> Iterator[PhotoResult]:
        for p in [p for p in paths if p in isolate]:
            if self.stop.is_set():
                return
            yield self._alone(p, known)
        paths = [p for p in paths if p not in isolate]
        if paths:
            yield from self._pooled(paths, known, self._workers_for(len(paths)))

    def warm_up(self) -> None:
        """One worker, loaded and checked (a running pool of any size will do)."""
        self._open_pool(1)

    def release_idle(self) -> None:
        """A single worker stays (what the next few files would start again: the model load);
        a larger pool gives its memory back."""
        if self._pool_size > 1:
            self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool, self._pool_size = None, 0

    def _workers_for(self, files: int) -> int:
        if self.settings.workers <= 1 or files < ONE_WORKER_BELOW:
            return 1
        return min(self.settings.workers, files)

    def _new_pool(self, workers: int) -> cf.ProcessPoolExecutor:
        ctx = multiprocessing.get_context("spawn")
        return cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker,
                                      initargs=(self.settings, os.getpid()))

    def _open_pool(self, workers: int) -> cf.ProcessPoolExecutor:
        """The running pool if it has enough workers, else a new one whose workers loaded the
        model and detector (checked here, so that a load failure stops the run before any photo)."""
        if self._pool is not None and self._pool_size >= workers:
            return self._pool
        self.close()
        pool = self._new_pool(workers)
        try:
            # one check per worker: each submit starts a process, so they all load at once
            said = [f.result() for f in [pool.submit(worker_ready) for _ in range(workers)]]
        except cf.process.BrokenProcessPool:
            pool.shutdown(wait=False, cancel_futures=True)
            raise ModelError("a worker process died while loading the emotion model and face detector "
                             "(out of memory?)") from None
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        for name, message in dict.fromkeys(line for lines in said for line in lines):  # once, not once per worker
            logging.getLogger(name).warning("%s", message)
        self._pool, self._pool_size = pool, workers
        return pool

    def _pooled(self, paths: Sequence[str], known: Mapping[str, KnownPhoto], workers: int) -> Iterator[PhotoResult]:
        pending: dict[cf.Future, str] = {}
        queue = iter(paths)
        try:
            while True:
                while len(pending) < workers * QUEUED_PER_WORKER and not self.stop.is_set():
                    nxt = next(queue, None)
                    if nxt is None:
                        break
                    pending[self._open_pool(workers).submit(analyze_in_worker, nxt, known.get(nxt))] = nxt
                if not pending:
                    return
                done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    path = pending.pop(fut)
                    try:
                        yield fut.result()
                    except cf.process.BrokenProcessPool:
                        yield from self._after_crash(path, pending, known)
                        break
        finally:
            for fut in pending:
                fut.cancel()

    def _after_crash(self, path: str, pending: dict[cf.Future, str],
                     known: Mapping[str, KnownPhoto]) -> Iterator[PhotoResult]:
        """A worker died (a decoder crash, the OOM killer): blame the file, not the run.

        Every file in flight is retried once, one at a time in a fresh pool, so only the
        file that really kills a worker is recorded as the culprit."""
        suspects = [path, *pending.values()]
        pending.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool, self._pool_size = None, 0
        for p in suspects:
            yield self._alone(p, known)

    def _alone(self, path: str, known: Mapping[str, KnownPhoto]) -> PhotoResult:
        """`path` analysed in a fresh worker of its own; `crashed` when that worker dies too."""
        with self._new_pool(1) as solo:
            try:
                return solo.submit(analyze_in_worker, path, known.get(path)).result()
            except cf.process.BrokenProcessPool:
                log.error("%s: the analysing process died on this file", path)
        try:
            st = os.stat(path)
            size, mtime = st.st_size, st.st_mtime_ns
        except OSError:
            size, mtime = 0, 0
        return PhotoResult(path, size, mtime, STATUS_ERROR,
                           "the decoder or detector crashed on this file (worker process died)", crashed=True)
