"""The content fingerprint ignores JPEG metadata segments and nothing else."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image

from indexer.media.fingerprint import fingerprint, fingerprint_file
from tests.photo_factory import background, exif_bytes, write_photo


def _jpeg(image: np.ndarray, **save: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", **{"quality": 90, **save})
    return buf.getvalue()


def test_jpeg_metadata_does_not_change_the_fingerprint():
    img = background(320, 240, seed=1)
    plain = _jpeg(img)
    tagged = _jpeg(img, exif=exif_bytes(taken=datetime(2019, 7, 14, 18, 3)), comment=b"a comment",
                   icc_profile=b"\0" * 600)
    assert plain != tagged
    assert fingerprint(plain) == fingerprint(tagged)


def test_pixels_tables_and_trailers_do_change_it():
    img = background(320, 240, seed=1)
    plain = _jpeg(img)
    other_pixels = img.copy()
    other_pixels[100:110, 100:110] = 255
    assert fingerprint(_jpeg(other_pixels)) != fingerprint(plain)
    assert fingerprint(_jpeg(img, quality=70)) != fingerprint(plain)  # other quantisation tables
    assert fingerprint(plain + b"appended video") != fingerprint(plain)


def test_other_formats_and_broken_headers_are_hashed_whole(tmp_path: Path):
    png = write_photo(tmp_path / "a.png", background(64, 48), taken=datetime(2020, 1, 1))
    assert fingerprint_file(png) == fingerprint(png.read_bytes())
    png2 = write_photo(tmp_path / "b.png", background(64, 48), taken=datetime(2021, 1, 1))
    assert fingerprint_file(png2) != fingerprint_file(png)  # metadata counts outside JPEG
    broken = b"\xff\xd8\xff\xe1\x00"  # an APP1 segment cut short
    assert fingerprint(broken) != fingerprint(broken + b"x")
    jpg = tmp_path / "c.jpg"
    jpg.write_bytes(_jpeg(background(64, 48)))
    assert fingerprint_file(jpg) == fingerprint(jpg.read_bytes())
