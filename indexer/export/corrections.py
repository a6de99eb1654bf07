"""Corrected faces -> a folder `models/training/train.py --extra DIR` adds to its training data:
48x48 grey PNG crops cut by THE preprocessing (`vision.crop`, with the margin of the detector
that found the face) and a `labels.csv` of `file,label`.

Only corrections of one face with an emotion are exported ("not a face" and "not happy" have no
class to learn, a correction of a whole photo no face to cut); a correction
whose photo is not in the index, or no longer readable, is counted and skipped, never fatal."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
from sqlalchemy import select
from sqlalchemy.orm import Session

from indexer.config import DEFAULT_MAX_FILE_BYTES
from indexer.db.models import Correction, Photo
from indexer.domain import STATUS_OK
from indexer.media.decode import DecodeError, MissingExtra, decode
from indexer.media.exif import read_exif
from indexer.media.source import UnreadablePhoto, read_photo
from indexer.vision.crop import FACE_MARGIN, FACE_MARGINS, crop_face, to_gray


@dataclass
class ExportSummary:
    written: int = 0
    skipped: list[str] = field(default_factory=list)  # why each correction was left out


def _margin(detector: str | None) -> float:
    name = (detector or "").split("-", 1)[0]
    return FACE_MARGINS.get(name, FACE_MARGIN)


def export_corrections(s: Session, folder: Path, max_pixels: int = 200_000_000,
                       max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> ExportSummary:
    """Write `folder/faces/*.png` and `folder/labels.csv` (replaced whole, atomically)."""
    summary = ExportSummary()
    faces_dir = folder / "faces"
    faces_dir.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str]] = []
    corrections = s.scalars(select(Correction).where(Correction.emotion.is_not(None),
                                                     Correction.photo_level.is_(False))
                            .order_by(Correction.content_hash, Correction.id)).all()
    decoded_cache: dict[str, tuple] = {}
    for c in corrections:
        photo = s.scalar(select(Photo).where(Photo.content_hash == c.content_hash, Photo.status == STATUS_OK)
                         .order_by(Photo.path).limit(1))
        if photo is None:
            summary.skipped.append(f"{c.content_hash[:12]} box {[c.x, c.y, c.w, c.h]}: photo not in the index")
            continue
        if photo.path not in decoded_cache:
            try:
                data = read_photo(photo.path, max_file_bytes)
                decoded = decode(data, Path(photo.path).suffix, read_exif(data).orientation, max_pixels)
            except (UnreadablePhoto, DecodeError, MissingExtra) as exc:
                summary.skipped.append(f"{photo.path}: {exc}")
                continue
            decoded_cache = {photo.path: (to_gray(decoded.image), decoded.scale)}  # one photo in memory
        gray, scale = decoded_cache[photo.path]
        box = (c.x / scale, c.y / scale, c.w / scale, c.h / scale)  # displayed px -> decoded px
        name = f"faces/{c.content_hash[:16]}_{c.x}_{c.y}_{c.w}.png"
        ok, png = cv2.imencode(".png", crop_face(gray, box, _margin(photo.detector)))
        if not ok:
            summary.skipped.append(f"{photo.path}: the crop could not be encoded")
            continue
        _write_atomic(folder / name, png.tobytes())
        rows.append((name, c.emotion or ""))
        summary.written += 1
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["file", "label"])
    writer.writerows(rows)
    _write_atomic(folder / "labels.csv", buf.getvalue().encode())
    return summary


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
