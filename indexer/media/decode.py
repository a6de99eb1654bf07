"""Robust decoding: bytes -> an upright BGR image at analysis resolution, or a reason why not.

Large JPEGs are decoded at 1/2, 1/4 or 1/8 scale inside libjpeg (DCT scaling), which is
most of the indexer's speed.  Every decoder (OpenCV and Pillow formats, HEIF through
pillow-heif, a RAW file's JPEG preview) first has its header read and checked against
`max_pixels`, so a decompression bomb is refused before a single pixel is decoded; that
setting is the only pixel limit (Pillow's own MAX_IMAGE_PIXELS is switched off, see `probe`).
The EXIF orientation is applied here, once, so every box the detector returns is in the
displayed image's coordinates.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import cv2
import numpy as np

from indexer.media.formats import HEIF_EXTENSIONS, RAW_EXTENSIONS

# Long side of the decoded image that faces are cropped from: a 150 px face in a 12 MP photo
# is ~40 px here, close to the model's 48 px input.  JPEGs are decoded at the DCT scale
# (1/2, 1/4, 1/8) that lands between 3/4 of this and this, so most need no resize at all.
ANALYSIS_LONG_SIDE = 1024
MIN_ANALYSIS_LONG_SIDE = 768


class DecodeError(Exception):
    """The file cannot be analysed; str() is the reason recorded for the user."""


class MissingExtra(DecodeError):
    """A known format whose optional dependency is not installed (photo status 'skipped')."""


@dataclass(frozen=True)
class Decoded:
    image: np.ndarray      # upright BGR uint8 at analysis resolution
    width: int             # displayed (upright) size of the full-resolution photo
    height: int
    scale: float           # full-resolution displayed pixels per analysis pixel


def _oriented_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Rotate/flip a stored image into its displayed position (EXIF orientation 1..8)."""
    if orientation == 2:
        return cv2.flip(image, 1)
    if orientation == 3:
        return cv2.rotate(image, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(image, 0)
    if orientation == 5:
        return cv2.flip(cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE), 1)
    if orientation == 6:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.flip(cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE), 1)
    if orientation == 8:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image


def check_pixels(width: int, height: int, max_pixels: int) -> None:
    """The decompression-bomb guard, called with the header's size before any decoder runs."""
    if width * height > max_pixels:
        raise DecodeError(f"refused: {width}x{height} is {width * height / 1e6:.0f} MP, over the "
                          f"{max_pixels / 1e6:.0f} MP limit (max_pixels; decompression-bomb guard)")


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """A WebP's canvas size from its first chunk (VP8X, VP8 or VP8L), or None if it has none."""
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    kind = data[12:16]
    if kind == b"VP8X":
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    if kind == b"VP8 ":
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    if kind == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def probe(data: bytes, max_pixels: int | None = None) -> tuple[str, int, int]:
    """(format, width, height) from the header alone, whatever the file is named; with
    `max_pixels`, a larger image is refused (DecodeError) before anything is decoded."""
    from PIL import Image, UnidentifiedImageError

    # Pillow's own bomb check (a warning at 89 MP, an error at 179 MP) would fire before ours and
    # cap a larger max_pixels: `check_pixels` is the one limit.
    Image.MAX_IMAGE_PIXELS = None
    if not data:
        raise DecodeError("empty file (0 bytes)")
    webp = _webp_size(data)
    if webp and max_pixels:  # Pillow's WebP opener allocates the whole canvas: check before it runs
        check_pixels(*webp, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                fmt, width, height = (im.format or "unknown").upper(), im.width, im.height
    except UnidentifiedImageError as exc:
        raise DecodeError("not an image, or a format that is not supported") from exc
    except Exception as exc:  # damaged headers raise all sorts
        raise DecodeError(f"unreadable image header: {exc}") from exc
    if max_pixels:
        check_pixels(width, height, max_pixels)
    return fmt, width, height


def _jpeg_truncated(data: bytes) -> bool:
    """A JPEG whose last scan has no end-of-image marker after it was cut short."""
    last_scan = data.rfind(b"\xff\xda")
    return last_scan == -1 or data.rfind(b"\xff\xd9") < last_scan


_REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}


def _fit(image: np.ndarray, long_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    if max(h, w) <= long_side:
        return image
    f = long_side / max(h, w)
    return cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def _decode_standard(data: bytes, fmt: str, width: int, height: int, long_side: int, floor: float) -> np.ndarray:
    factor = 1
    if fmt in ("JPEG", "MPO"):
        if _jpeg_truncated(data):
            raise DecodeError("truncated JPEG (no end-of-image marker)")
        while factor < 8 and max(width, height) / (factor * 2) >= floor:
            factor *= 2
    buf = np.frombuffer(data, np.uint8)
    image = cv2.imdecode(buf, _REDUCED[factor] | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise DecodeError(f"corrupt or truncated {fmt} data")
    return image


def _decode_heif(data: bytes, max_pixels: int) -> np.ndarray:
    try:
        import pillow_heif
    except ImportError as exc:
        raise MissingExtra("HEIC/HEIF needs an extra: pip install 'moodindex[heif]'") from exc
    try:
        heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)  # reads the boxes, decodes nothing
        width, height = heif.size
    except Exception as exc:
        raise DecodeError(f"corrupt HEIF data: {exc}") from exc
    check_pixels(width, height, max_pixels)
    try:
        rgb = np.asarray(heif.to_pillow().convert("RGB"))  # transforms (rotation) already applied
    except Exception as exc:
        raise DecodeError(f"corrupt HEIF data: {exc}") from exc
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


_LIBRAW_FLIP_TO_EXIF = {0: 1, 3: 3, 5: 8, 6: 6}


def _decode_raw_preview(data: bytes) -> tuple[bytes | np.ndarray, int]:
    """The camera's embedded preview and LibRaw's orientation for it.  A JPEG preview comes back
    undecoded (the caller checks its header); a bitmap one was unpacked by LibRaw, whose own cap on
    preview size (LIBRAW_MAX_THUMBNAIL_MB) bounds it, since rawpy cannot tell its size before."""
    try:
        import rawpy
    except ImportError as exc:
        raise MissingExtra("RAW files need an extra: pip install 'moodindex[raw]'") from exc
    try:
        with rawpy.imread(io.BytesIO(data)) as raw:
            flip = _LIBRAW_FLIP_TO_EXIF.get(raw.sizes.flip, 1)
            thumb = raw.extract_thumb()
    except Exception as exc:  # rawpy.LibRawError and friends
        raise DecodeError(f"RAW file has no usable embedded preview: {exc}") from exc
    if thumb.format == rawpy.ThumbFormat.JPEG:
        return thumb.data, flip
    return cv2.cvtColor(np.asarray(thumb.data), cv2.COLOR_RGB2BGR), flip


def decode(data: bytes, ext: str, orientation: int = 1, max_pixels: int = 200_000_000,
           long_side: int = ANALYSIS_LONG_SIDE, exact: bool = False) -> Decoded:
    """Decode an image file's bytes for analysis; raises DecodeError with the reason.

    The long side comes out between 3/4 of `long_side` and `long_side` (whatever libjpeg's
    DCT scaling gives for free), or exactly `long_side` with `exact` (thumbnails)."""
    ext = ext.lower()
    floor = long_side if exact else long_side * MIN_ANALYSIS_LONG_SIDE / ANALYSIS_LONG_SIDE
    if ext in RAW_EXTENSIONS:
        preview, flip = _decode_raw_preview(data)
        if isinstance(preview, np.ndarray):
            check_pixels(preview.shape[1], preview.shape[0], max_pixels)
            image = preview
        else:
            fmt, w, h = probe(preview, max_pixels)
            image = _decode_standard(preview, fmt, w, h, long_side, floor)
        if orientation == 1:
            orientation = flip
        full_w, full_h = image.shape[1], image.shape[0]
    elif ext in HEIF_EXTENSIONS:
        image = _decode_heif(data, max_pixels)
        orientation = 1
        full_w, full_h = image.shape[1], image.shape[0]
    else:
        fmt, full_w, full_h = probe(data, max_pixels)
        image = _decode_standard(data, fmt, full_w, full_h, long_side, floor)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    image = _fit(apply_orientation(image, orientation), long_side)
    width, height = _oriented_size(full_w, full_h, orientation)
    return Decoded(image=image, width=width, height=height, scale=max(width, height) / max(image.shape[:2]))
