"""Seeing inside the real worker processes, for tests that count what the models did.

Photos are analysed in spawned workers, never in the test's process, so patching `Analyzer` here
would see nothing.  The `worker_spy` fixture (conftest.py) swaps the executor's pool initializer
for `init_spying_worker`: it runs the real `init_worker`, then wraps, inside that worker, what the
tests count, and appends one JSON line per event to the file named by SPY_LOG_ENV:

- {"event": "load", "pid": N}: a worker loaded the model and detector;
- {"event": "analyze", "path": P, "pid": N, "status": S, "pixels_unchanged": B}: one photo;
- {"event": "detect", "path": P}: the detector ran on a decoded image (not for a metadata edit);
- {"event": "predict", "crops": K}: one call of the emotion model.

With FAIL_FACES_ENV set to a file name, detection raises a RuntimeError on that file, as an ONNX
Runtime or LiteRT failure on one picture would.  Nothing of this is in the package itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

SPY_LOG_ENV = "MOODINDEX_TEST_WORKER_SPY_LOG"
FAIL_FACES_ENV = "MOODINDEX_TEST_FAIL_FACES_ON"


def _note(**event: object) -> None:
    line = (json.dumps(event) + "\n").encode()
    fd = os.open(os.environ[SPY_LOG_ENV], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line)  # one write with O_APPEND: whole lines, whichever worker writes
    finally:
        os.close(fd)


def init_spying_worker(settings, parent_pid=None) -> None:  # noqa: ANN001
    from indexer import worker
    from indexer.pipeline import Analyzer
    from indexer.vision.emotion import EmotionModel

    worker.init_worker(settings, parent_pid)
    if worker._LOAD_ERROR is None:
        _note(event="load", pid=os.getpid())
    real_analyze, real_faces_in, real_predict = Analyzer.analyze, Analyzer.faces_in, EmotionModel.predict
    doomed = os.environ.get(FAIL_FACES_ENV)
    current: list[str] = [""]

    def analyze(self, path, st=None, known=None):  # noqa: ANN001, ANN202
        current[0] = str(path)
        result = real_analyze(self, path, st, known)
        _note(event="analyze", path=str(path), pid=os.getpid(), status=result.status,
              pixels_unchanged=result.pixels_unchanged)
        return result

    def faces_in(self, image, scale=1.0):  # noqa: ANN001, ANN202
        _note(event="detect", path=current[0])
        if doomed and os.path.basename(current[0]) == doomed:
            raise RuntimeError("onnxruntime: bad allocation")
        return real_faces_in(self, image, scale)

    def predict(self, crops):  # noqa: ANN001, ANN202
        _note(event="predict", crops=len(crops))
        return real_predict(self, crops)

    Analyzer.analyze, Analyzer.faces_in, EmotionModel.predict = analyze, faces_in, predict


@dataclass
class WorkerSpy:
    """What the workers started since the fixture (or the last `reset`) reported."""

    log: Path

    def events(self, kind: str) -> list[dict]:
        if not self.log.exists():
            return []
        return [e for e in map(json.loads, self.log.read_text().splitlines()) if e["event"] == kind]

    @property
    def analysed(self) -> list[str]:
        """Every path a worker analysed, in the order they finished."""
        return [e["path"] for e in self.events("analyze")]

    @property
    def detected(self) -> list[str]:
        return [e["path"] for e in self.events("detect")]

    @property
    def predicted(self) -> list[int]:
        """Faces per call of the emotion model."""
        return [e["crops"] for e in self.events("predict")]

    @property
    def loads(self) -> int:
        return len(self.events("load"))

    @property
    def pids(self) -> set[int]:
        """The processes that analysed photos."""
        return {e["pid"] for e in self.events("analyze")}

    def reset(self) -> None:
        self.log.unlink(missing_ok=True)


class Live(Sequence):
    """A list read afresh on every look (`analysed == [...]`, `.count(p)`, `len`), for tests that
    keep one name for what the workers have done so far."""

    def __init__(self, read: Callable[[], list]) -> None:
        self._read = read

    def __getitem__(self, i):  # noqa: ANN001, ANN204
        return self._read()[i]

    def __len__(self) -> int:
        return len(self._read())

    def __eq__(self, other: object) -> bool:
        return self._read() == list(other) if isinstance(other, (list, tuple, Sequence)) else NotImplemented

    __hash__ = None

    def __repr__(self) -> str:
        return repr(self._read())


LOAD_WARNING = "YuNet at /x/face_detection_yunet.onnx: fixed input size; using OpenCV's DNN module instead (slower)"


def init_worker_warning_on_load(settings, parent_pid=None) -> None:  # noqa: ANN001
    """The real `init_worker`, in a worker whose detector says LOAD_WARNING while it loads (as a
    YuNet model with a fixed input size makes it fall back): what the user must read once."""
    import logging

    from indexer import worker
    from indexer.vision import faces

    real_make_detector = faces.make_detector

    def make_detector(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        logging.getLogger("indexer.vision.faces").warning("%s", LOAD_WARNING)
        return real_make_detector(*args, **kwargs)

    faces.make_detector = make_detector
    worker.init_worker(settings, parent_pid)
