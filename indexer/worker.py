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
# its own Analyzer on first use (LiteRT interpreters are not shared between threads) and keeps it.
_LOCAL = threading.local()


def _cluster_analyzer(settings: Settings):  # noqa: ANN202 (Analyzer: keep the import lazy)
    cache = getattr(_LOCAL, "analyzers", None)
    if cache is None:
        cache = _LOCAL.analyzers = {}
    if settings not in cache:
        from indexer.pipeline import Analyzer

        logging.getLogger("indexer").setLevel(logging.ERROR)
        cache[settings] = Analyzer.from_settings(settings)
    return cache[settings]


def analyzer_identity(settings: Settings) -> dict[str, str]:
    """The model and detector this process would use for `settings` (compared before a cluster run)."""
    analyzer = _cluster_analyzer(settings)
    return {"model": str(analyzer.model.model_id), "detector": str(analyzer.detector.version)}


def analyze_on_cluster(settings: Settings, path: str, known: KnownPhoto | None):  # noqa: ANN201
    return _cluster_analyzer(settings).analyze(path, known=known)
