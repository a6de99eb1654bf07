"""The content fingerprint ignores JPEG metadata segments and nothing else."""

from __future__ import annotations

import hashlib
import io
import subprocess
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image

from indexer.media.fingerprint import fingerprint, fingerprint_file
from tests.photo_factory import background, exif_bytes, write_photo


def _exiftool(*args: str) -> None:
    from fixtures.tagkit import need_exiftool

    subprocess.run([need_exiftool(), "-q", "-overwrite_original", *args], check=True)


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


def test_png_and_webp_metadata_do_not_change_it(tmp_path: Path):
    """Pillow writes eXIf (PNG) and a VP8X + EXIF chunk (WebP); exiftool adds XMP in iTXt / an XMP chunk."""
    img = background(96, 64, seed=3)
    for ext in (".png", ".webp"):
        plain = write_photo(tmp_path / f"plain{ext}", img)
        dated = write_photo(tmp_path / f"dated{ext}", img, taken=datetime(2021, 1, 1))
        tagged = tmp_path / f"tagged{ext}"
        tagged.write_bytes(plain.read_bytes())
        _exiftool("-XMP-dc:Subject=Emotion/happy", "-XMP-digiKam:TagsList=Emotion/happy", str(tagged))
        assert len({plain.read_bytes(), dated.read_bytes(), tagged.read_bytes()}) == 3
        assert fingerprint_file(plain) == fingerprint_file(dated) == fingerprint_file(tagged), ext
        assert fingerprint_file(tagged) == fingerprint(tagged.read_bytes())
        other = img.copy()
        other[10:20, 10:20] = 255
        assert fingerprint_file(write_photo(tmp_path / f"other{ext}", other)) != fingerprint_file(plain), ext


def test_other_formats_and_broken_files_are_hashed_whole(tmp_path: Path):
    tif = write_photo(tmp_path / "a.tif", background(64, 48), taken=datetime(2020, 1, 1))
    tif2 = write_photo(tmp_path / "b.tif", background(64, 48), taken=datetime(2021, 1, 1))
    assert fingerprint_file(tif) == fingerprint(tif.read_bytes())
    assert fingerprint_file(tif2) != fingerprint_file(tif)  # metadata counts in TIFF
    whole = lambda data: hashlib.blake2b(data, digest_size=16).hexdigest()  # noqa: E731
    broken = b"\xff\xd8\xff\xe1\x00"  # an APP1 segment cut short
    assert fingerprint(broken) == whole(broken) != fingerprint(broken + b"x")
    png = write_photo(tmp_path / "c.png", background(64, 48)).read_bytes()
    for cut in (png[:-7], png[:30], png[:8] + b"\0\0\0\x05\xff\xfe\xfd\xfcxxxxx"):  # short chunk, bad type
        assert fingerprint(cut) == whole(cut)
    jpg = tmp_path / "d.jpg"
    jpg.write_bytes(_jpeg(background(64, 48)))
    assert fingerprint_file(jpg) == fingerprint(jpg.read_bytes())
