"""Executors: who runs `pipeline.Analyzer` on the photos a scan hands over.

The scan gives an executor paths (with the index's hash and orientation of changed files) and
stores the `PhotoResult`s it yields, in whatever order they finish; it never knows where they were
computed.  `LocalExecutor` is the one we have: in-process for a handful of files, else a pool of
spawned worker processes that survives a worker dying.  A Dask (or other cluster) executor is a
second class with the same two methods.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Protocol

from indexer.config import Settings
from indexer.domain import STATUS_ERROR
from indexer.media.fingerprint import KnownPhoto
from indexer.worker import analyze_in_worker, init_worker

if TYPE_CHECKING:  # the pipeline imports OpenCV: loaded when the first photo needs it
    from indexer.pipeline import PhotoResult

log = logging.getLogger(__name__)

IN_PROCESS_BELOW = 4   # fewer files than this are analysed in-process: a pool's start-up costs more
QUEUED_PER_WORKER = 4  # tasks submitted ahead per worker, so none idles between photos


class Executor(Protocol):
    def results(self, paths: Sequence[str], known: Mapping[str, KnownPhoto],
                isolate: AbstractSet[str] = frozenset()) -> Iterator[PhotoResult]:
        """Analyse `paths`, yielding one result per path as each finishes; stop early once the
        executor's stop event is set.  Paths in `isolate` (a worker died on them before) each run
        alone in a fresh process, where that can be arranged.  A result whose analysing process
        died has `crashed` set.  Raises ModelError/DetectorError when the models cannot load."""
        ...

    def close(self) -> None:
        """Let go of workers (idempotent); the next `results` starts them again."""
        ...


class LocalExecutor:
    """This machine: in-process for one worker or a few files, else `settings.workers` processes."""

    def __init__(self, settings: Settings, stop: threading.Event) -> None:
        self.settings = settings
        self.stop = stop
        self._analyzer = None
        self._pool: cf.ProcessPoolExecutor | None = None

    def results(self, paths: Sequence[str], known: Mapping[str, KnownPhoto],
                isolate: AbstractSet[str] = frozenset()) -> Iterator[PhotoResult]:
        if self._analyzer is None:  # also checks, here and clearly, that the model and detector load
            from indexer.pipeline import Analyzer

            self._analyzer = Analyzer.from_settings(self.settings)
        for p in [p for p in paths if p in isolate]:  # never in this process: it may kill it
            if self.stop.is_set():
                return
            yield self._alone(p, known)
        paths = [p for p in paths if p not in isolate]
        if not paths:
            return
        workers = max(1, min(self.settings.workers, len(paths)))
        if workers == 1 or len(paths) < IN_PROCESS_BELOW:
            for p in paths:
                if self.stop.is_set():
                    return
                yield self._analyzer.analyze(p, known=known.get(p))
            return
        yield from self._pooled(paths, known, workers)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _new_pool(self, workers: int) -> cf.ProcessPoolExecutor:
        ctx = multiprocessing.get_context("spawn")
        return cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker,
                                      initargs=(self.settings, os.getpid()))

    def _pooled(self, paths: Sequence[str], known: Mapping[str, KnownPhoto], workers: int) -> Iterator[PhotoResult]:
        pending: dict[cf.Future, str] = {}
        queue = iter(paths)
        try:
            while True:
                if self._pool is None:
                    self._pool = self._new_pool(workers)
                while len(pending) < workers * QUEUED_PER_WORKER and not self.stop.is_set():
                    nxt = next(queue, None)
                    if nxt is None:
                        break
                    pending[self._pool.submit(analyze_in_worker, nxt, known.get(nxt))] = nxt
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
        self._pool = None
        for p in suspects:
            yield self._alone(p, known)

    def _alone(self, path: str, known: Mapping[str, KnownPhoto]) -> PhotoResult:
        """`path` analysed in a fresh worker of its own; `crashed` when that worker dies too."""
        from indexer.pipeline import PhotoResult

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
