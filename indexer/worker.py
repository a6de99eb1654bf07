"""What runs inside the indexer's worker processes: one Analyzer each, one photo per call.

Kept apart from scan.py so that a spawned worker imports OpenCV, the detector and the model but
not SQLAlchemy or the database layer: ~0.25 s less start-up per worker, which is most of a short
run's overhead.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from indexer.config import Settings
from indexer.lifeline import die_with_parent
from indexer.media.fingerprint import KnownPhoto

_ANALYZER = None
_LOAD_ERROR: Exception | None = None  # why the model or detector did not load here (raised, not lost)
_LOAD_WARNINGS: tuple[tuple[str, str], ...] = ()  # (logger, message) said while loading


class _Heard(logging.Handler):
    """Keeps what the loaders log (a detector falling back to OpenCV, LiteRT's stderr), so that
    the parent says it once: this process has no terminal of its own to say it on."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.name, record.getMessage()))


def init_worker(settings: Settings, parent_pid: int | None = None) -> None:
    global _ANALYZER, _LOAD_ERROR, _LOAD_WARNINGS
    if parent_pid is not None:  # first: a kill -9 of moodindex must not leave us behind (lifeline.py)
        die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    import cv2

    cv2.setNumThreads(1)  # one worker per core already: OpenCV's own threads would only contend
    from indexer.pipeline import Analyzer

    logger, heard = logging.getLogger("indexer"), _Heard()
    logger.addHandler(heard)
    try:
        _ANALYZER = Analyzer.from_settings(settings)
    except Exception as exc:  # noqa: BLE001 (an initializer that raises breaks the pool and loses the message)
        _LOAD_ERROR = exc
    finally:
        logger.removeHandler(heard)
        # per-photo problems come back as results, not log lines
        logger.setLevel(logging.ERROR)
    _LOAD_WARNINGS = tuple(heard.lines)


def worker_ready() -> tuple[tuple[str, str], ...]:
    """Asked by the parent before it hands over photos: raises the ModelError/DetectorError (or
    other error) the load failed with, so the user reads the same line as from a load in the
    parent; else returns the warnings said while loading, for the parent to log."""
    if _LOAD_ERROR is not None:
        raise _LOAD_ERROR
    return _LOAD_WARNINGS


# Tests only: a worker given a file of this name SIGKILLs itself, as the OOM killer would.  A real
# process death, so the tests exercise the parent's real handling of it (executor, scan).
KILL_ON_ENV = "MOODINDEX_TEST_KILL_WORKER_ON"


def analyze_in_worker(path: str, known: KnownPhoto | None):  # noqa: ANN201 (PhotoResult: keep the import lazy)
    doomed = os.environ.get(KILL_ON_ENV)
    if doomed and os.path.basename(path) == doomed:
        os.kill(os.getpid(), signal.SIGKILL)
    if _LOAD_ERROR is not None:
        raise _LOAD_ERROR
    return _ANALYZER.analyze(path, known=known)


# --- on a Dask worker (indexer.cluster): no initializer runs there, so each worker thread builds
# its own Analyzer with its first photo (LiteRT interpreters are not shared between threads) and
# keeps it.  Each task also checks it: the model and detector this worker loaded are the ones the
# machine that submitted it loads, or the task raises WorkerRefused and the run stops.  Checked in
# the task, on the thread that analyses, so the worker loads its model once (a check run apart, as
# `client.run` does on the worker's event loop, loaded a second one there and blocked the loop),
# and a worker that joins or replaces a dead one mid-run is checked like the others.
_LOCAL = threading.local()


class WorkerRefused(Exception):
    """This worker must not analyse for this run (another model or detector, or none loads):
    the message says which worker and why.  The client stops the run on it (indexer.cluster)."""


def _cluster_analyzer(settings: Settings):  # noqa: ANN202 (Analyzer: keep the import lazy)
    cache = getattr(_LOCAL, "analyzers", None)
    if cache is None:
        cache = _LOCAL.analyzers = {}
    if settings not in cache:
        from indexer.pipeline import Analyzer

        logging.getLogger("indexer").setLevel(logging.ERROR)
        cache[settings] = Analyzer.from_settings(settings)
    return cache[settings]


def analyzer_identity(analyzer) -> dict[str, str]:  # noqa: ANN001 (pipeline.Analyzer)
    """What a cluster run compares: the model and detector `analyzer` loaded."""
    return {"model": str(analyzer.model.model_id), "detector": str(analyzer.detector.version)}


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):  # not inside a Dask task
        return f"process {os.getpid()}"


def analyze_on_cluster(settings: Settings, path: str, known: KnownPhoto | None,
                       expected: dict[str, str]):  # noqa: ANN201 (PhotoResult)
    """`path` analysed on this Dask worker, if it loads the model and detector `expected` (the
    submitting machine's `analyzer_identity`); else WorkerRefused, before anything is analysed."""
    try:
        analyzer = _cluster_analyzer(settings)
    except Exception as exc:  # noqa: BLE001 - any load failure refuses the worker, with its reason
        raise WorkerRefused(f"worker {_worker_name()} cannot load the model or detector: {exc} (workers need "
                            "moodindex, the same model files and the photos at the same paths)") from None
    got = analyzer_identity(analyzer)
    if got != expected:
        raise WorkerRefused(f"worker {_worker_name()} has model {got['model']} and detector {got['detector']}, "
                            f"this machine {expected['model']} and {expected['detector']}: refused, so that one "
                            "index never mixes two models; install the same version on every worker")
    return analyzer.analyze(path, known=known)
