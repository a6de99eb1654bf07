"""A photo's content fingerprint: what tells a moved, renamed or re-tagged photo from a new one.

digiKam, darktable, exiftool or moodindex itself writing tags, ratings or a corrected date into
a file changes its bytes but not its pixels, so the faces and scores found before still hold.
The fingerprint therefore leaves out the metadata:
- JPEG: the APP0-APP15 segments (EXIF, XMP, IPTC, ICC) and comments.  The quantisation and
  Huffman tables, frame header, entropy-coded scans and anything after them are hashed.
- PNG: the text chunks (tEXt, zTXt, iTXt: XMP lives there), eXIf, tIME and iCCP.
- WebP: the EXIF, XMP and ICCP chunks, and VP8X (its flags only say which of those exist; the
  pixels are in VP8/VP8L/ALPH/ANMF).
Other formats (TIFF, HEIC, RAW), and files whose structure cannot be walked, are hashed whole:
a metadata edit there re-runs the models, which is slower and never wrong.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from indexer.config import DEFAULT_MAX_FILE_BYTES
from indexer.media.source import open_photo

_SOI, _SOS = b"\xff\xd8", 0xDA
_METADATA_MARKERS = frozenset(range(0xE0, 0xF0)) | {0xFE}  # APPn, COM
_STANDALONE_MARKERS = frozenset(range(0xD0, 0xD8)) | {0x01}  # RSTn, TEM: no length field
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_METADATA = frozenset({b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME", b"iCCP"})
_WEBP_METADATA = frozenset({b"EXIF", b"XMP ", b"ICCP", b"VP8X"})
_PIECE = 1 << 20


@dataclass(frozen=True)
class KnownPhoto:
    """What the index holds for a file whose size or mtime changed: enough to tell a
    metadata-only edit (same fingerprint, same orientation) from new pixels."""
    content_hash: str
    orientation: int | None
    width: int | None = None     # displayed size, for named regions written in that frame
    height: int | None = None


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


def _chunk_format(head: bytes) -> str | None:
    """'png' or 'webp' for the chunked formats whose metadata can be left out, from the first 12 bytes."""
    if head.startswith(_PNG_SIGNATURE):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def _hash_chunks(f: BinaryIO, h: hashlib.blake2b, fmt: str) -> bool:
    """Feed `h` every chunk of a PNG or WebP but its metadata chunks, reading `f` from just after
    the file header (8 bytes for PNG, 12 for WebP, whose RIFF size changes with the metadata).
    False when the chunk structure is broken: the caller then hashes the whole file."""
    while head := f.read(8):
        if len(head) < 8:
            return False
        if fmt == "png":
            kind, size = head[4:], int.from_bytes(head[:4], "big") + 4  # data + CRC
            skip = kind in _PNG_METADATA
        else:
            kind, length = head[:4], int.from_bytes(head[4:], "little")
            size, skip = length + (length & 1), kind in _WEBP_METADATA  # chunks are padded to even
        if not kind.replace(b" ", b"A").isalnum():  # FourCCs are letters, digits, spaces ("VP8 ")
            return False
        if not skip:
            h.update(head)
        while size:
            piece = f.read(min(size, _PIECE))
            if not piece:
                return False
            if not skip:
                h.update(piece)
            size -= len(piece)
    return True


def _fingerprint_stream(f: BinaryIO) -> str:
    """Fingerprint of a seekable file that is not a JPEG."""
    h = hashlib.blake2b(digest_size=16)
    head = f.read(12)
    fmt = _chunk_format(head)
    if fmt is not None:
        f.seek(8 if fmt == "png" else 12)
        if _hash_chunks(f, h, fmt):
            return h.hexdigest()
        h = hashlib.blake2b(digest_size=16)
    f.seek(0)
    for piece in iter(lambda: f.read(_PIECE), b""):
        h.update(piece)
    return h.hexdigest()


def fingerprint(data: bytes) -> str:
    """128-bit BLAKE2b of the image data (see the module docstring)."""
    if not data.startswith(_SOI):
        return _fingerprint_stream(io.BytesIO(data))
    h = hashlib.blake2b(digest_size=16)
    parts = _jpeg_image_parts(data)
    for part in parts if parts is not None else [data]:
        h.update(part)
    return h.hexdigest()


def fingerprint_file(path: str | Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> str:
    """`fingerprint` of a file's bytes; a big non-JPEG file (PNG, TIFF, RAW) is streamed.
    Raises UnreadablePhoto (an OSError) for anything but a regular file within `max_bytes`."""
    with open_photo(path, max_bytes) as f:
        if f.read(2) == _SOI:
            f.seek(0)
            return fingerprint(f.read())
        f.seek(0)
        return _fingerprint_stream(f)
