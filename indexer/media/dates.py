"""When a photo was taken, and where that date came from (`date_source`).

Sources, in order (the first that gives a plausible date wins):
1. EXIF (`media.exif`: DateTimeOriginal, DateTimeDigitized, DateTime)           -> "exif"
2. the XMP sidecar next to the photo, `photo.jpg.xmp` then `photo.xmp`            -> "sidecar"
   (digiKam, darktable and Lightroom keep their view of a photo there, corrected dates included,
   so it goes before the copy inside the file)
3. the XMP inside the file (JPEG, PNG, TIFF, WebP, and HEIF's XMP item)           -> "xmp"
4. the file's modification time, an estimate                                      -> "file"
Within an XMP packet: exif:DateTimeOriginal, then xmp:CreateDate, then photoshop:DateCreated.
HEIF files carry their date in their EXIF item (read in 1) or their XMP item (read in 3).

An XMP date is ISO 8601 (`2019-07-14T18:03:22+02:00`, seconds, fraction and zone optional; darktable
writes EXIF's `2019:07:14 18:03:22.000`, also read); a
bare day (`2019-07-14`, as photoshop:DateCreated often is) counts as midnight; a bare year or
month is too vague and is skipped.  The zone becomes `utc_offset_min` as EXIF's OffsetTime does.
A sidecar or packet that cannot be read is skipped with a note, never an error: the photo is
still indexed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

# the source words live in indexer.domain; the SOURCE_* names stay for this module's readers
from indexer.domain import DATE_EXIF as SOURCE_EXIF
from indexer.domain import DATE_FILE as SOURCE_FILE
from indexer.domain import DATE_SIDECAR as SOURCE_SIDECAR
from indexer.domain import DATE_XMP as SOURCE_XMP
from indexer.domain import date_is_estimated
from indexer.media.exif import FIRST_PHOTO_YEAR, ExifInfo, parse_offset
from indexer.media.xmp import (
    NS_EXIF,
    NS_PHOTOSHOP,
    NS_XMP,
    XmpPacket,
    first_in_xmp,
)

XMP_DATE_PROPERTIES = ((NS_EXIF, "DateTimeOriginal"), (NS_XMP, "CreateDate"), (NS_PHOTOSHOP, "DateCreated"))
# ISO 8601 as the XMP spec says, or EXIF's colons, as darktable writes exif:DateTimeOriginal
# ("2026:11:20 22:50:49.000")
_XMP_DATE_RE = re.compile(r"^(\d{4})[-:](\d{2})[-:](\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?)?"
                          r"\s*(Z|[+-]\d{2}:?\d{2})?$")


@dataclass(frozen=True)
class DateTaken:
    taken_at: datetime
    source: str
    utc_offset_min: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)  # why a sidecar or packet was not read

    @property
    def estimated(self) -> bool:
        return date_is_estimated(self.source)


def parse_xmp_date(text: str) -> tuple[datetime, int | None] | None:
    """'2019-07-14T18:03:22+02:00' -> (naive local time, offset minutes); None if not a usable date."""
    m = _XMP_DATE_RE.match(text.strip())
    if not m:
        return None
    year, month, day, hour, minute, second, zone = m.groups()
    try:
        taken = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:
        return None
    if taken.year < FIRST_PHOTO_YEAR:
        return None
    offset = 0 if zone == "Z" else parse_offset(zone) if zone else None
    return taken, offset


def xmp_date(packet: XmpPacket) -> tuple[datetime, int | None] | None:
    for ns, name in XMP_DATE_PROPERTIES:
        for value in packet.values(ns, name):
            if parsed := parse_xmp_date(value):
                return parsed
    return None


def date_taken(path: str | Path, data: bytes, exif: ExifInfo, mtime_ns: int) -> DateTaken:
    """The photo's date and its source (see the module docstring).  Never raises for bad metadata."""
    if exif.taken_at is not None:
        return DateTaken(exif.taken_at, SOURCE_EXIF, exif.utc_offset_min)
    found, where, notes = first_in_xmp(path, data, xmp_date)
    if found:
        return DateTaken(found[0], SOURCE_SIDECAR if where == "sidecar" else SOURCE_XMP, found[1], tuple(notes))
    return DateTaken(datetime.fromtimestamp(mtime_ns / 1e9).replace(microsecond=0), SOURCE_FILE, None, tuple(notes))
