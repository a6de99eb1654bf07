"""THE preprocessing: one face box in a photo -> the model's input tensor.

Training (models/train.py), export validation (models/export.py), `moodindex model eval`
and the indexer all import these functions, so the model sees at serving time exactly
what it saw in training.  FER-2013 faces are tight 48x48 grayscale crops of roughly the
face box a detector returns, enlarged a little; `FACE_MARGIN` reproduces that framing on
real photos (calibrated on ../shared/data/facial_expressions_dev, see models/README.md).
"""

from __future__ import annotations

import cv2
import numpy as np

from indexer.domain import CLASSES

__all__ = ["CLASSES", "FACE_MARGIN", "FACE_MARGINS", "INPUT_SIZE", "crop_face", "crop_faces", "normalise",
           "square_box", "to_gray"]

INPUT_SIZE = 48
# Fraction of the detector box added on each side before cropping (square crop).
FACE_MARGIN = 0.1
# Detectors frame faces differently (YuNet: tight, chin to brows; Haar: a looser square), so
# each gets the margin that best reproduces FER framing: benchmarks/calibrate_crop.py.
# Measured on 1,095 labelled real photos (top-face accuracy, int8 model 1.1): YuNet 0.00 -> 55.2 %
# (-0.05 -> 54.3 %, 0.10 -> 53.2 %, 0.20 -> 46.5 %); Haar 0.10 -> 60.3 % (0.00 -> 55.6 %, 0.20 -> 57.0 %).
FACE_MARGINS: dict[str, float] = {"yunet": 0.0, "haar": 0.1}


def normalise(faces_u8: np.ndarray) -> np.ndarray:
    """uint8 grayscale faces (N, 48, 48) -> float32 (N, 48, 48, 1) in [0, 1]."""
    faces = np.asarray(faces_u8)
    if faces.dtype != np.uint8:
        raise ValueError(f"faces must be uint8, got {faces.dtype}")
    if faces.ndim == 2:
        faces = faces[None]
    return (faces.astype(np.float32) / 255.0)[..., None]


def to_gray(image: np.ndarray) -> np.ndarray:
    """BGR/BGRA/gray image -> 2-D uint8 gray."""
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def square_box(box: tuple[float, float, float, float], margin: float = FACE_MARGIN) -> tuple[int, int, int]:
    """Detector box (x, y, w, h) -> square (x0, y0, side) centred on it, enlarged by `margin`."""
    x, y, w, h = box
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    return int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), max(1, int(round(side)))


def crop_face(gray: np.ndarray, box: tuple[float, float, float, float], margin: float = FACE_MARGIN) -> np.ndarray:
    """Cut one face out of a gray image as a 48x48 uint8 crop; pads by edge replication
    where the square runs off the image, so faces at the border keep their framing."""
    x0, y0, side = square_box(box, margin)
    h, w = gray.shape[:2]
    pad = max(0, -x0, -y0, x0 + side - w, y0 + side - h)
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0 = x0 + pad, y0 + pad
    patch = gray[y0 : y0 + side, x0 : x0 + side]
    interp = cv2.INTER_AREA if side > INPUT_SIZE else cv2.INTER_LINEAR
    return cv2.resize(patch, (INPUT_SIZE, INPUT_SIZE), interpolation=interp)


def crop_faces(
    image: np.ndarray, boxes: list[tuple[float, float, float, float]], margin: float = FACE_MARGIN
) -> np.ndarray:
    """Image + boxes -> (N, 48, 48) uint8 crops, ready for `normalise`."""
    gray = to_gray(image)
    if not boxes:
        return np.zeros((0, INPUT_SIZE, INPUT_SIZE), np.uint8)
    return np.stack([crop_face(gray, b, margin) for b in boxes])
