"""What libjpeg, libpng, libtiff (through OpenCV), exifread and Pillow print while a photo is read is
caught and returned with that photo's result, never written to the terminal."""

from __future__ import annotations

import logging
import os
import signal
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, TiffImagePlugin

from indexer.media.capture import MAX_MESSAGES, capture_messages, library_stderr, tidy
from indexer.pipeline import Analyzer
from tests.photo_factory import jpeg_with_junk_before_eoi, png_with_bad_srgb

PIXELS = (np.random.default_rng(0).integers(0, 255, (240, 320, 3))).astype(np.uint8)


def _jpeg_with_junk_before_eoi(path: Path) -> Path:
    return jpeg_with_junk_before_eoi(path, PIXELS)  # libjpeg: "N extraneous bytes before marker 0xd9"


def _png_with_bad_srgb(path: Path) -> Path:
    return png_with_bad_srgb(path, PIXELS)  # libpng: "sRGB: invalid rendering intent"


def _tiff_with_unknown_tag(path: Path) -> Path:
    info = TiffImagePlugin.ImageFileDirectory_v2()
    info[65000] = "private"
    info.tagtype[65000] = 2
    Image.fromarray(PIXELS).save(path, tiffinfo=info)  # libtiff: "Unknown field with tag 65000"
    return path


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer("haar")


@pytest.mark.parametrize(("make", "name", "expected"), [
    (_jpeg_with_junk_before_eoi, "junk-eoi.jpg", "extraneous bytes before marker 0xd9"),
    (_png_with_bad_srgb, "srgb.png", "libpng warning: sRGB: invalid"),
    (_tiff_with_unknown_tag, "tag.tif", "TIFFReadDirectory: Unknown field with tag 65000"),
    (lambda p: p.write_bytes(b"not a photo at all " * 20) and p, "junk.jpg", "exifread: File format not recognized."),
])
def test_messages_come_back_with_the_photo_not_on_the_terminal(analyzer, tmp_path, capfd, caplog, make, name,
                                                               expected) -> None:
    caplog.set_level(logging.WARNING)
    path = make(tmp_path / name)
    result = analyzer.analyze(path)
    assert any(expected in w for w in result.warnings), result.warnings
    assert all(len(w) <= 200 for w in result.warnings)
    out, err = capfd.readouterr()
    assert expected not in err and "Corrupt" not in err and "warning" not in err.lower(), err
    assert not [r for r in caplog.records if r.name.startswith("exifread")]


def test_messages_are_attributed_to_their_own_photo(analyzer, tmp_path, capfd) -> None:
    bad = analyzer.analyze(_jpeg_with_junk_before_eoi(tmp_path / "bad.jpg"))
    good_path = tmp_path / "good.jpg"
    cv2.imwrite(str(good_path), PIXELS)
    good = analyzer.analyze(good_path)
    assert bad.warnings and good.warnings == ()
    assert capfd.readouterr().err == ""


def test_a_plain_png_without_exif_is_not_a_warning(analyzer, tmp_path, capfd, caplog) -> None:
    caplog.set_level(logging.WARNING)
    path = tmp_path / "plain.png"
    cv2.imwrite(str(path), PIXELS)
    result = analyzer.analyze(path)
    assert result.status == "ok" and result.warnings == () and result.date_source == "file"
    assert "exif" not in capfd.readouterr().err and not caplog.records


def test_python_warnings_and_stderr_are_caught_and_stderr_restored(capfd) -> None:
    with capture_messages() as messages:
        warnings.warn("odd EXIF block", UserWarning, stacklevel=1)
        with library_stderr():
            os.write(2, b"a C library speaks\n")
        os.write(2, b"our own output, outside the library calls\n")
        logging.getLogger("exifread").warning("Possibly corrupted field %s", "Tag 0x9003")
    assert messages == ["a C library speaks", "exifread: Possibly corrupted field Tag 0x9003",
                        "UserWarning: odd EXIF block"]
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "our own output, outside the library calls\nafter\n"
    with library_stderr():  # outside a capture: nothing redirected
        os.write(2, b"plain\n")
    assert capfd.readouterr().err == "plain\n"


def test_a_signal_during_a_library_call_is_handled_after_stderr_is_restored(capfd) -> None:
    """watch logs "SIGTERM: finishing the current photo" from its handler: that line must reach the
    log, not the photo's warnings."""
    previous = signal.signal(signal.SIGHUP, lambda *_: os.write(2, b"handler ran\n"))
    try:
        with capture_messages() as messages:
            with library_stderr():
                os.kill(os.getpid(), signal.SIGHUP)
                sum(range(10000))  # Python code after the signal: a handler would run here if not held back
                os.write(2, b"decoder warning\n")
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert messages == ["decoder warning"]
    assert capfd.readouterr().err == "handler ran\n"


def test_messages_are_short_distinct_and_bounded() -> None:
    assert tidy(["x\n" * 50]) == ["x (x50)"]
    assert tidy(["[ WARN:0@0.048] global grfmt_tiff.cpp:122 TIFF_Warning TIFFReadDirectory: odd\n"]) == \
        ["TIFF_Warning TIFFReadDirectory: odd"]
    long = tidy(["y" * 1000])[0]
    assert len(long) == 200 and long.endswith("…")
    many = tidy([f"message {i}\n" for i in range(100)])
    assert len(many) == MAX_MESSAGES and many[-1] == f"... and {100 - MAX_MESSAGES + 1} more messages"


@pytest.mark.slow
def test_index_with_worker_processes_prints_no_library_message(run_cli, tmp_path, capfd) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    _jpeg_with_junk_before_eoi(lib / "a.jpg")
    _png_with_bad_srgb(lib / "b.png")
    _tiff_with_unknown_tag(lib / "c.tif")
    result = run_cli("index", lib, "--workers", "2", "--detector", "haar")
    assert result.exit_code == 0, result.stderr
    err = capfd.readouterr().err + result.stderr
    for leak in ("Corrupt JPEG", "libpng", "TIFFReadDirectory", "exifread"):
        assert leak not in err, err
