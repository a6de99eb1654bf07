"""Build real test photos: faces from ../shared pasted into larger canvases, with EXIF."""

from __future__ import annotations

import csv
import io
import struct
import zlib
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

EXIF_IFD = 0x8769
TAG_ORIENTATION = 0x0112
TAG_MAKE, TAG_MODEL = 0x010F, 0x0110
TAG_DATETIME_ORIGINAL = 0x9003
TAG_OFFSET_TIME_ORIGINAL = 0x9011


def dev_faces(dev_dir: Path, label: str | None = None, limit: int = 10) -> list[Path]:
    """Labelled face photos from ../shared/data/facial_expressions_dev."""
    with open(dev_dir / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if label is None or r["label"] == label]
    return [dev_dir / "images" / r["file"] for r in rows[:limit]]


def background(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth, slightly noisy gradient: photo-like, no fake faces for the detectors."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([90 + 60 * xx / width, 120 + 50 * yy / height, 150 - 40 * xx / width], axis=-1)
    noise = cv2.resize(rng.normal(0, 12, (height // 16 + 1, width // 16 + 1, 3)).astype(np.float32), (width, height))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def compose(faces: list[Path], size: tuple[int, int] = (2400, 1800), face_px: int = 400,
            seed: int = 0) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Canvas (BGR) with each face photo pasted at `face_px` size in a row; returns where."""
    width, height = size
    canvas = background(width, height, seed)
    boxes = []
    gap = (width - len(faces) * face_px) // (len(faces) + 1)
    for i, face in enumerate(faces):
        img = cv2.resize(cv2.imread(str(face)), (face_px, face_px), interpolation=cv2.INTER_AREA)
        x, y = gap + i * (face_px + gap), (height - face_px) // 2
        canvas[y:y + face_px, x:x + face_px] = img
        boxes.append((x, y, face_px, face_px))
    return canvas, boxes


def exif_bytes(taken: datetime | None = None, offset: str | None = None, orientation: int | None = None,
               camera: tuple[str, str] | None = None) -> bytes:
    exif = Image.Exif()
    if orientation:
        exif[TAG_ORIENTATION] = orientation
    if camera:
        exif[TAG_MAKE], exif[TAG_MODEL] = camera
    ifd = exif.get_ifd(EXIF_IFD)
    if taken:
        ifd[TAG_DATETIME_ORIGINAL] = taken.strftime("%Y:%m:%d %H:%M:%S")
    if offset:
        ifd[TAG_OFFSET_TIME_ORIGINAL] = offset
    return exif.tobytes()


def write_photo(path: Path, image_bgr: np.ndarray, taken: datetime | None = None, offset: str | None = None,
                orientation: int | None = None, camera: tuple[str, str] | None = None, quality: int = 88) -> Path:
    """Save as JPEG/PNG/WebP/TIFF (by suffix) with the given EXIF, through Pillow."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
           ".bmp": "BMP"}[path.suffix.lower()]
    kwargs = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    if fmt != "BMP":
        kwargs["exif"] = exif_bytes(taken, offset, orientation, camera)
    buf = io.BytesIO()
    im.save(buf, fmt, **kwargs)
    path.write_bytes(buf.getvalue())
    return path


def rotate_for_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Store an upright image the way a camera would for this EXIF orientation (inverse transform)."""
    if orientation == 6:   # displayed = stored rotated 90 CW, so store it rotated 90 CCW
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    if orientation == 8:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 3:
        return cv2.rotate(image, cv2.ROTATE_180)
    if orientation == 1:
        return image
    raise ValueError(orientation)


def iou(a: tuple, b: tuple) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / (aw * ah + bw * bh - inter)


def jpeg_with_junk_before_eoi(path: Path, image_bgr: np.ndarray) -> Path:
    """A JPEG that decodes but makes libjpeg say "Corrupt JPEG data: 3 extraneous bytes before marker 0xd9"."""
    data = cv2.imencode(".jpg", image_bgr)[1].tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[:-2] + b"\0\0\0" + data[-2:])
    return path


def png_with_bad_srgb(path: Path, image_bgr: np.ndarray) -> Path:
    """A PNG whose sRGB chunk holds a rendering intent that does not exist: libpng warns and decodes the rest."""
    data = cv2.imencode(".png", image_bgr)[1].tobytes()
    body = b"\x07"
    chunk = struct.pack(">I", len(body)) + b"sRGB" + body + struct.pack(">I", zlib.crc32(b"sRGB" + body))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[:33] + chunk + data[33:])  # right after IHDR
    return path
