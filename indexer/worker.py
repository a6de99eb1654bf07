"""What runs inside the indexer's worker processes: one Analyzer each, one photo per call.

Kept apart from scan.py so that a spawned worker imports OpenCV, the detector and the model but
not SQLAlchemy or the database layer: ~0.25 s less start-up per worker, which is most of a short
run's overhead.
"""

from __future__ import annotations

import signal

from indexer.config import Settings
from indexer.media.fingerprint import KnownPhoto

_ANALYZER = None


def init_worker(settings: Settings) -> None:
    global _ANALYZER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    import cv2

    cv2.setNumThreads(1)  # one worker per core already: OpenCV's own threads would only contend
    from indexer.pipeline import Analyzer

    _ANALYZER = Analyzer(settings.detector, settings.model, settings.threads, settings.max_pixels)


def analyze_in_worker(path: str, known: KnownPhoto | None):  # noqa: ANN201 (PhotoResult: keep the import lazy)
    return _ANALYZER.analyze(path, known=known)
