"""EXIF through exifread: when the photo was taken, how to turn it, which camera.

Date fallbacks, in order: DateTimeOriginal (+ OffsetTimeOriginal), DateTimeDigitized
(+ OffsetTimeDigitized), IFD0 DateTime (+ OffsetTime); with none of them the caller uses
the file's modification time and flags the date as estimated.  A date that cannot be a
photo's (before FIRST_PHOTO_YEAR, like the 0001:01:01 some cameras write after a reset)
counts as absent, so the next source is used; an offset outside UTC-12:00..UTC+14:00 or with
minutes past 59 (`+99:99`) is dropped, and the date kept without it.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from datetime import datetime

import exifread

log = logging.getLogger(__name__)

_DATE_TAGS = (
    ("EXIF DateTimeOriginal", "EXIF OffsetTimeOriginal", "EXIF SubSecTimeOriginal"),
    ("EXIF DateTimeDigitized", "EXIF OffsetTimeDigitized", "EXIF SubSecTimeDigitized"),
    ("Image DateTime", "EXIF OffsetTime", "EXIF SubSecTime"),
)
_DATE_RE = re.compile(r"^\s*(\d{4})[:\-](\d{2})[:\-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET_RE = re.compile(r"^\s*([+-])(\d{2}):?(\d{2})\s*$")
FIRST_PHOTO_YEAR = 1826  # Niépce's view from the window at Le Gras: no photo was taken before
_OFFSET_RANGE_MIN = (-12 * 60, 14 * 60)  # the UTC offsets in use on Earth


@dataclass(frozen=True)
class ExifInfo:
    taken_at: datetime | None = None     # local time of capture, naive
    utc_offset_min: int | None = None
    orientation: int = 1                 # EXIF 1..8; 1 = as stored
    camera: str | None = None


def parse_exif_datetime(text: str) -> datetime | None:
    """'2019:07:14 18:03:22' -> datetime; the blank or zeroed dates cameras write -> None."""
    m = _DATE_RE.match(text or "")
    if not m:
        return None
    try:
        taken = datetime(*(int(g) for g in m.groups()))
    except ValueError:  # 0000:00:00 00:00:00 and friends
        return None
    return taken if taken.year >= FIRST_PHOTO_YEAR else None


def parse_offset(text: str | None) -> int | None:
    """'+02:00' -> 120 minutes; None for an offset no place on Earth has ('+99:99')."""
    m = _OFFSET_RE.match(text or "")
    if not m or int(m.group(3)) > 59:
        return None
    minutes = int(m.group(2)) * 60 + int(m.group(3))
    minutes = -minutes if m.group(1) == "-" else minutes
    low, high = _OFFSET_RANGE_MIN
    return minutes if low <= minutes <= high else None


def _text(tags: dict, key: str) -> str | None:
    value = tags.get(key)
    if value is None:
        return None
    s = str(value.values if isinstance(value.values, str) else value).strip().strip("\x00").strip()
    return s or None


def read_exif(data: bytes) -> ExifInfo:
    """EXIF of an image held in memory; an unreadable or absent block gives ExifInfo()."""
    try:
        tags = exifread.process_file(io.BytesIO(data), details=False, extract_thumbnail=False)
    except Exception as exc:  # exifread raises assorted errors on damaged blocks
        log.debug("unreadable EXIF: %s", exc)
        return ExifInfo()
    taken, offset = None, None
    for date_key, offset_key, _ in _DATE_TAGS:
        taken = parse_exif_datetime(_text(tags, date_key) or "")
        if taken:
            offset = parse_offset(_text(tags, offset_key))
            break
    orientation = 1
    tag = tags.get("Image Orientation")
    if tag is not None:
        try:
            value = int(tag.values[0])
            orientation = value if 1 <= value <= 8 else 1
        except (IndexError, TypeError, ValueError):
            pass
    make, model = _text(tags, "Image Make"), _text(tags, "Image Model")
    if make and model and model.lower().startswith(make.lower().split()[0]):
        camera = model
    else:
        camera = " ".join(p for p in (make, model) if p) or None
    return ExifInfo(taken_at=taken, utc_offset_min=offset, orientation=orientation, camera=camera)
