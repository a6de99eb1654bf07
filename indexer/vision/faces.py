"""Face detectors behind one interface.

- `yunet`: OpenCV Zoo's YuNet CNN, run by ONNX Runtime when installed (yunet_ort.py, ~3x
  faster) or else by `cv2.FaceDetectorYN`: accurate, fast, few false faces.  Its weights are
  not ours to ship: `moodindex model fetch yunet` downloads them (pinned sha256) or
  `moodindex model add yunet PATH` installs a local copy.
- `haar`: the frontal-face Haar cascade inside OpenCV 4.x wheels: zero downloads, weaker.
- `auto`: YuNet when installed, else Haar.

Both return boxes in the pixels of the image they were given; implausible boxes (too
small, badly shaped, mostly outside the picture, low confidence) are dropped here.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from indexer.domain import DETECTOR_CHOICES
from indexer.vision import yunet_ort
from indexer.vision.errors import DetectorError

# where YuNet lives and which detectors exist are known without OpenCV (vision/identity.py)
from indexer.vision.identity import YUNET_FILE, available_detectors, yunet_path  # noqa: F401

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # x, y, w, h
    confidence: float


class FaceDetector(Protocol):
    name: str
    version: str

    def detect(self, image: np.ndarray, min_face: int) -> list[Detection]: ...


def plausible(box: tuple[float, float, float, float], shape: tuple[int, ...], min_face: int) -> bool:
    """Reject boxes no real face makes: tiny, far from square, or mostly outside the image."""
    x, y, w, h = box
    if w < min_face or h < min_face or not 0.5 <= w / h <= 2.0:
        return False
    ih, iw = shape[:2]
    inside_w = max(0.0, min(x + w, iw) - max(x, 0.0))
    inside_h = max(0.0, min(y + h, ih) - max(y, 0.0))
    return inside_w * inside_h >= 0.6 * w * h


def _nms(dets: list[Detection], iou: float = 0.3) -> list[Detection]:
    """Greedy non-maximum suppression: overlapping boxes of one face become one."""
    if len(dets) < 2:
        return dets
    boxes = [list(map(float, d.box)) for d in dets]
    keep = cv2.dnn.NMSBoxes(boxes, [d.confidence for d in dets], 0.0, iou)
    return [dets[i] for i in np.array(keep).flatten()]


class HaarDetector:
    """OpenCV's frontal-face cascade, tuned for few false faces (minNeighbors, NMS)."""

    name = "haar"

    def __init__(self, min_neighbors: int = 6) -> None:
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise DetectorError(f"the Haar cascade is missing from this OpenCV build ({path})")
        self._min_neighbors = min_neighbors
        self.version = f"haar-frontalface-default/opencv-{cv2.__version__}"

    def detect(self, image: np.ndarray, min_face: int) -> list[Detection]:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        small, f = cv2.equalizeHist(gray), 1.0
        side = max(20, min_face)
        boxes, _levels, weights = self._cascade.detectMultiScale3(
            small, scaleFactor=1.1, minNeighbors=self._min_neighbors, minSize=(side, side), outputRejectLevels=True)
        dets = []
        for box, weight in zip(boxes, np.asarray(weights).flatten(), strict=True):
            # level weight: ~1-2 for weak hits, 5+ for clear faces; squash to 0..1
            conf = float(1.0 / (1.0 + np.exp(-(float(weight) - 2.0))))
            dets.append(Detection(tuple(float(v) / f for v in box), conf))
        return [d for d in _nms(dets) if plausible(d.box, gray.shape, min_face) and d.confidence >= 0.5]


# YuNet's score cut-off, calibrated on facial_expressions_dev (1,095 labelled real photos, one
# face each) and the index benchmark's photos (real scenes with pasted faces): 0.8 finds a face
# in 98.2 % of the real photos and 86.4 % of the benchmark's faces at 800 px; 0.6 finds 98.9 %
# and 94.4 %, with one real photo getting a second box and no false faces on the benchmark.
# Real faces that are grey, small or tilted score 0.6-0.8; OpenCV Zoo's demo cut-off (0.9)
# finds 89.6 %.  (`python benchmarks/calibrate_crop.py --yunet-cutoffs 0.8,0.9`,
# `python benchmarks/index_bench.py --photos 60 --sweep`)
YUNET_SCORE_THRESHOLD = 0.6
NMS_IOU = 0.3  # OpenCV's default for FaceDetectorYN


class YuNetDetector:
    """YuNet (OpenCV Zoo) on ONNX Runtime (yunet_ort.py) or, without it, cv2.FaceDetectorYN."""

    name = "yunet"

    def __init__(self, model: Path | None = None, score_threshold: float = YUNET_SCORE_THRESHOLD,
                 threads: int = 1, runtime: str = "auto") -> None:
        path = Path(model) if model else yunet_path()
        if not path.exists():
            raise DetectorError(f"YuNet weights not installed ({path}); run `moodindex model fetch yunet` "
                                "or `moodindex model add yunet PATH`")
        self._ort = self._net = None
        data = path.read_bytes()
        if runtime == "onnxruntime" and not yunet_ort.available():
            raise DetectorError("onnxruntime is not installed: pip install onnxruntime")
        if runtime in ("auto", "onnxruntime") and yunet_ort.available():
            try:
                self._ort = yunet_ort.YuNetOrt(data, score_threshold, NMS_IOU, threads=threads)
            except yunet_ort.FixedInputError as exc:
                if runtime == "onnxruntime":
                    raise DetectorError(str(exc)) from exc
                log.warning("YuNet at %s: %s; using OpenCV's DNN module instead (slower)", path, exc)
            except Exception as exc:  # noqa: BLE001 (ONNX Runtime raises its own exception types)
                raise DetectorError(f"YuNet weights at {path} do not load: {str(exc).strip()[:300]}") from exc
        if self._ort is not None:
            self.runtime = self._ort.runtime
        else:
            try:
                self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score_threshold, NMS_IOU, 5000)
            except cv2.error as exc:
                raise DetectorError(f"YuNet weights at {path} do not load: {exc.msg.strip()}") from exc
            self.runtime = f"opencv {cv2.__version__}"  # what `status` shows
        self.version = f"yunet-{hashlib.sha256(data).hexdigest()[:12]}/{self.runtime.replace(' ', '-')}"

    def _raw(self, image: np.ndarray) -> np.ndarray | None:
        if self._ort is not None:
            return self._ort.detect(image)
        h, w = image.shape[:2]
        self._net.setInputSize((w, h))
        return self._net.detect(image)[1]

    def detect(self, image: np.ndarray, min_face: int) -> list[Detection]:
        faces = self._raw(image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
        if faces is None:
            return []
        dets = [Detection(tuple(float(v) for v in f[:4]), float(f[14])) for f in faces]
        return [d for d in dets if plausible(d.box, image.shape, min_face)]


def make_detector(name: str = "auto", threads: int = 1) -> FaceDetector:
    """'auto' picks the best installed detector."""
    if name == "auto":
        name = available_detectors()[0]
    if name == "yunet":
        return YuNetDetector(threads=threads)
    if name == "haar":
        return HaarDetector()
    raise DetectorError(f"unknown detector {name!r}; choose {', '.join(DETECTOR_CHOICES)}")
