"""Decoding and EXIF: orientation, dates and their fallbacks, DCT-scaled decode, bad files."""

from __future__ import annotations

import struct
import zlib
from datetime import datetime

import pytest

from indexer.media.decode import ANALYSIS_LONG_SIDE, DecodeError, MissingExtra, decode
from indexer.media.exif import parse_exif_datetime, parse_offset, read_exif
from tests.photo_factory import background, rotate_for_orientation, write_photo


def test_exif_date_offset_orientation_camera(tmp_path):
    p = write_photo(tmp_path / "a.jpg", background(640, 480), taken=datetime(2019, 7, 14, 18, 3, 22),
                    offset="+02:00", orientation=6, camera=("Canon", "Canon EOS R6"))
    info = read_exif(p.read_bytes())
    assert info.taken_at == datetime(2019, 7, 14, 18, 3, 22)
    assert info.utc_offset_min == 120
    assert info.orientation == 6
    assert info.camera == "Canon EOS R6"


def test_exif_absent_or_garbage_gives_defaults(tmp_path):
    p = write_photo(tmp_path / "a.png", background(64, 64))
    assert read_exif(p.read_bytes()).taken_at is None
    assert read_exif(b"not an image at all").orientation == 1


@pytest.mark.parametrize("text,expected", [
    ("2019:07:14 18:03:22", datetime(2019, 7, 14, 18, 3, 22)),
    ("2020-02-29T23:59:59", datetime(2020, 2, 29, 23, 59, 59)),
    ("0000:00:00 00:00:00", None),
    ("    :  :     :  :  ", None),
    ("2019:02:30 10:00:00", None),
])
def test_parse_exif_datetime(text, expected):
    assert parse_exif_datetime(text) == expected


def test_parse_offset():
    assert parse_offset("-05:30") == -330
    assert parse_offset("+0100") == 60
    assert parse_offset("garbage") is None
    for impossible in ("+99:99", "+14:30", "-12:01", "+05:60"):  # no place on Earth has these
        assert parse_offset(impossible) is None, impossible
    assert parse_offset("+14:00") == 840 and parse_offset("-12:00") == -720


def test_impossible_exif_dates_fall_back_to_the_next_source(tmp_path):
    """Year 0001 (a camera after a clock reset) was stored as the capture date, +99:99 as an offset."""
    from PIL import Image

    exif = Image.Exif()
    ifd = exif.get_ifd(0x8769)
    ifd[0x9003], ifd[0x9011] = "0001:01:01 00:00:00", "+02:00"  # DateTimeOriginal, OffsetTimeOriginal
    ifd[0x9004], ifd[0x9012] = "2021:05:04 10:11:12", "+99:99"  # DateTimeDigitized, OffsetTimeDigitized
    path = tmp_path / "reset.jpg"
    Image.fromarray(background(64, 48)).save(path, exif=exif.tobytes())
    info = read_exif(path.read_bytes())
    assert info.taken_at == datetime(2021, 5, 4, 10, 11, 12) and info.utc_offset_min is None
    ifd[0x9004] = "1800:01:01 00:00:00"  # before any photograph: absent too
    Image.fromarray(background(64, 48)).save(path, exif=exif.tobytes())
    assert read_exif(path.read_bytes()).taken_at is None  # the caller then uses the file's time


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_orientation_is_applied(tmp_path, orientation):
    upright = background(800, 600)
    upright[50:150, 50:250] = (0, 0, 255)  # a red mark top-left in the displayed image
    stored = rotate_for_orientation(upright, orientation)
    p = write_photo(tmp_path / "o.png", stored, orientation=orientation)
    dec = decode(p.read_bytes(), ".png", read_exif(p.read_bytes()).orientation)
    assert (dec.width, dec.height) == (800, 600)
    b, g, r = dec.image[100, 150]
    assert r > 200 and b < 60 and g < 60


def test_large_jpeg_decoded_reduced(tmp_path):
    p = write_photo(tmp_path / "big.jpg", background(4000, 3000))
    dec = decode(p.read_bytes(), ".jpg")
    assert dec.image.shape[:2] == (750, 1000)  # libjpeg's 1/4 scale: no resize needed
    assert (dec.width, dec.height) == (4000, 3000)
    assert dec.scale == pytest.approx(4.0)
    huge = write_photo(tmp_path / "huge.png", background(2400, 600))
    assert max(decode(huge.read_bytes(), ".png").image.shape[:2]) == ANALYSIS_LONG_SIDE


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif", ".bmp"])
def test_formats(tmp_path, suffix):
    p = write_photo(tmp_path / f"x{suffix}", background(320, 240))
    assert decode(p.read_bytes(), suffix).image.shape == (240, 320, 3)


def test_misnamed_file_is_decoded_by_content(tmp_path):
    p = write_photo(tmp_path / "x.png", background(320, 240))
    assert decode(p.read_bytes(), ".jpg").image.shape == (240, 320, 3)


def test_bad_inputs_have_reasons(tmp_path):
    good = write_photo(tmp_path / "g.jpg", background(640, 480)).read_bytes()
    with pytest.raises(DecodeError, match="empty"):
        decode(b"", ".jpg")
    with pytest.raises(DecodeError, match="not an image"):
        decode(b"hello, I am text", ".jpg")
    with pytest.raises(DecodeError, match="truncated"):
        decode(good[: len(good) // 2], ".jpg")
    with pytest.raises(DecodeError):
        decode(good[:40], ".jpg")


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a huge size: what a decompression bomb looks like to the header reader."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [12_000, 60_000])
def test_decompression_bomb_refused_before_decoding(side):
    with pytest.raises(DecodeError, match="refused"):
        decode(_png_header_only(side, side), ".png", max_pixels=100_000_000)


def test_heif_decoded_with_the_extra(tmp_path):
    pillow_heif = pytest.importorskip("pillow_heif", reason="the [heif] extra is not installed")
    from PIL import Image

    pillow_heif.register_heif_opener()
    upright = background(320, 240)
    upright[10:60, 10:110] = (0, 0, 255)
    path = tmp_path / "x.heic"
    Image.fromarray(upright[:, :, ::-1].copy()).save(path, quality=90)
    dec = decode(path.read_bytes(), ".heic")
    assert (dec.width, dec.height) == (320, 240)
    b, g, r = dec.image[35, 60]
    assert r > 180 and b < 90


def test_missing_extras_name_what_to_install(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_extras(name, *args, **kwargs):
        if name in ("pillow_heif", "rawpy"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_extras)
    with pytest.raises(MissingExtra, match=r"moodindex\[heif\]"):
        decode(b"\x00\x00\x00\x1cftypheic", ".heic")
    with pytest.raises(MissingExtra, match=r"moodindex\[raw\]"):
        decode(b"II*\x00", ".CR2")


def test_raw_without_a_preview_is_an_error_not_a_crash():
    pytest.importorskip("rawpy", reason="the [raw] extra is not installed")
    with pytest.raises(DecodeError, match="RAW"):
        decode(b"II*\x00" + b"\x00" * 4096, ".nef")
