"""A photo's content fingerprint: what tells a moved, renamed or re-tagged photo from a new one.

For JPEG the fingerprint leaves out the metadata segments (APP0-APP15: EXIF, XMP, IPTC,
ICC; and comments): digiKam, darktable, exiftool or moodindex itself writing tags, ratings or
a corrected date into the file changes its bytes but not its pixels, so the faces and scores
found before still hold.  The pixel-defining parts -- quantisation and Huffman tables, frame
header, the entropy-coded scans -- and anything after them are all hashed.  Other formats
are hashed whole (a metadata edit there re-runs the models: slower, never wrong).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

_SOI, _SOS = b"\xff\xd8", 0xDA
_METADATA_MARKERS = frozenset(range(0xE0, 0xF0)) | {0xFE}  # APPn, COM
_STANDALONE_MARKERS = frozenset(range(0xD0, 0xD8)) | {0x01}  # RSTn, TEM: no length field


@dataclass(frozen=True)
class KnownPhoto:
    """What the index holds for a file whose size or mtime changed: enough to tell a
    metadata-only edit (same fingerprint, same orientation) from new pixels."""
    content_hash: str
    orientation: int | None


def _jpeg_image_parts(data: bytes) -> list[memoryview] | None:
    """The slices of a JPEG that define its pixels, or None when its header cannot be walked."""
    view = memoryview(data)
    parts, pos, start = [], 2, 0
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE_MARKERS:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if length < 2:
            return None
        if marker == _SOS:
            parts.append(view[start:])
            return parts
        if marker in _METADATA_MARKERS:
            parts.append(view[start:pos])
            start = pos + 2 + length
        pos += 2 + length
    return None


def fingerprint(data: bytes) -> str:
    """128-bit BLAKE2b of the image data (see the module docstring)."""
    h = hashlib.blake2b(digest_size=16)
    parts = _jpeg_image_parts(data) if data.startswith(_SOI) else None
    for part in parts if parts is not None else [data]:
        h.update(part)
    return h.hexdigest()


def fingerprint_file(path: str | Path) -> str:
    """`fingerprint` of a file's bytes; a big non-JPEG file (TIFF, RAW) is streamed."""
    with open(path, "rb") as f:
        if f.read(2) == _SOI:
            f.seek(0)
            return fingerprint(f.read())
        f.seek(0)
        h = hashlib.blake2b(digest_size=16)
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
        return h.hexdigest()
