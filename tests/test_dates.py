"""Dates from EXIF, then the XMP sidecar, then the file's own XMP, then the file time: real files whose
XMP exiftool wrote, and the sidecar darktable 4.2 wrote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from indexer.media.dates import date_taken, parse_xmp_date
from indexer.media.exif import read_exif
from indexer.media.xmp import MAX_XMP_BYTES, XMPError, parse_xml, parse_xmp, read_sidecar, sidecar_candidates
from tests.fixtures.tagkit import DARKTABLE_SIDECAR, need_exiftool
from tests.photo_factory import write_photo

FILE_TIME = datetime(2026, 3, 4, 5, 6, 7)
PIXELS = np.full((48, 64, 3), 120, np.uint8)


def _photo(path: Path, exif_date: datetime | None = None) -> Path:
    write_photo(path, PIXELS, taken=exif_date)
    os.utime(path, (FILE_TIME.timestamp(),) * 2)
    return path


def _exiftool(target: Path, *assignments: str, create: bool = False) -> None:
    """Write tags with exiftool: into `target`, or into a new sidecar `target` (create=True)."""
    args = [need_exiftool(), "-q", *assignments]
    args += ["-o", str(target)] if create else ["-overwrite_original", str(target)]
    subprocess.run(args, check=True, capture_output=True)
    if not create:
        os.utime(target, (FILE_TIME.timestamp(),) * 2)


def _date(path: Path):  # noqa: ANN202
    data = path.read_bytes()
    return date_taken(path, data, read_exif(data), path.stat().st_mtime_ns)


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif", ".webp"])
def test_date_from_the_files_own_xmp(tmp_path: Path, suffix: str) -> None:
    photo = _photo(tmp_path / f"p{suffix}")
    _exiftool(photo, "-XMP-xmp:CreateDate=2019:07:14 18:03:22+02:00")
    d = _date(photo)
    assert (d.taken_at, d.utc_offset_min, d.source) == (datetime(2019, 7, 14, 18, 3, 22), 120, "xmp")
    assert not d.estimated


def test_heif_date_from_its_xmp_item(tmp_path: Path) -> None:
    """A HEIF still has no QuickTime date (exiftool finds none, and writes none: there is no movie
    header); its date is in its EXIF item (read by exifread) or its XMP item, read here."""
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    from PIL import Image

    photo = tmp_path / "p.heic"
    Image.fromarray(PIXELS).save(photo)
    _exiftool(photo, "-XMP-xmp:CreateDate=2019:07:14 18:03:22+02:00")
    d = _date(photo)
    assert (d.taken_at, d.utc_offset_min, d.source) == (datetime(2019, 7, 14, 18, 3, 22), 120, "xmp")


@pytest.mark.parametrize(("prop", "value", "expected", "offset"), [
    ("XMP-exif:DateTimeOriginal", "2018:01:02 03:04:05", datetime(2018, 1, 2, 3, 4, 5), None),
    ("XMP-xmp:CreateDate", "2018:01:02 03:04:05Z", datetime(2018, 1, 2, 3, 4, 5), 0),
    ("XMP-xmp:CreateDate", "2018:01:02 03:04:05-05:30", datetime(2018, 1, 2, 3, 4, 5), -330),
    ("XMP-photoshop:DateCreated", "2017:05:06", datetime(2017, 5, 6), None),  # a bare day: midnight
])
def test_each_xmp_date_property_and_zone(tmp_path: Path, prop: str, value: str, expected: datetime,
                                         offset: int | None) -> None:
    photo = _photo(tmp_path / "p.png")
    _exiftool(photo, f"-{prop}={value}")
    d = _date(photo)
    assert (d.taken_at, d.utc_offset_min, d.source) == (expected, offset, "xmp")


def test_xmp_properties_in_order(tmp_path: Path) -> None:
    photo = _photo(tmp_path / "p.jpg")
    _exiftool(photo, "-XMP-photoshop:DateCreated=2015:01:01", "-XMP-xmp:CreateDate=2016:01:01 10:00:00",
              "-XMP-exif:DateTimeOriginal=2017:01:01 10:00:00")
    assert _date(photo).taken_at == datetime(2017, 1, 1, 10)
    _exiftool(photo, "-XMP-exif:DateTimeOriginal=")
    assert _date(photo).taken_at == datetime(2016, 1, 1, 10)


@pytest.mark.parametrize("name", ["p.jpg.xmp", "p.xmp"])  # digiKam/darktable naming, Lightroom naming
def test_date_from_a_sidecar_only(tmp_path: Path, name: str) -> None:
    photo = _photo(tmp_path / "p.jpg")
    _exiftool(tmp_path / name, "-XMP-xmp:CreateDate=2020:02:29 12:00:00+01:00", create=True)
    d = _date(photo)
    assert (d.taken_at, d.utc_offset_min, d.source) == (datetime(2020, 2, 29, 12), 60, "sidecar")


def test_darktable_sidecar(tmp_path: Path) -> None:
    """darktable writes exif:DateTimeOriginal with EXIF's colons and a fraction: "2026:11:20 22:50:49.000"."""
    photo = _photo(tmp_path / "p.jpg")
    shutil.copyfile(DARKTABLE_SIDECAR, tmp_path / "p.jpg.xmp")
    d = _date(photo)
    assert (d.taken_at, d.source) == (datetime(2026, 11, 20, 22, 50, 49), "sidecar")


def test_precedence_exif_then_sidecar_then_file_xmp_then_file_time(tmp_path: Path) -> None:
    photo = _photo(tmp_path / "p.jpg", exif_date=datetime(2010, 1, 1, 9))
    _exiftool(photo, "-XMP-xmp:CreateDate=2011:01:01 09:00:00")
    _exiftool(tmp_path / "p.jpg.xmp", "-XMP-xmp:CreateDate=2012:01:01 09:00:00", create=True)
    _exiftool(tmp_path / "p.xmp", "-XMP-xmp:CreateDate=2013:01:01 09:00:00", create=True)
    assert (_date(photo).taken_at.year, _date(photo).source) == (2010, "exif")
    _exiftool(photo, "-EXIF:all=")
    assert (_date(photo).taken_at.year, _date(photo).source) == (2012, "sidecar")  # the sidecar wins over the file
    (tmp_path / "p.jpg.xmp").unlink()
    assert (_date(photo).taken_at.year, _date(photo).source) == (2013, "sidecar")
    (tmp_path / "p.xmp").unlink()
    assert (_date(photo).taken_at.year, _date(photo).source) == (2011, "xmp")
    _exiftool(photo, "-XMP:all=")
    d = _date(photo)
    assert (d.taken_at, d.source, d.estimated) == (FILE_TIME, "file", True)


def test_bad_sidecars_are_skipped_with_a_note(tmp_path: Path) -> None:
    photo = _photo(tmp_path / "p.jpg")
    _exiftool(photo, "-XMP-xmp:CreateDate=2011:01:01 09:00:00")
    (tmp_path / "p.jpg.xmp").write_text("<x:xmpmeta xmlns:x='adobe:ns:meta/'><unclosed>")
    # entities are never expanded: this date exists only through one
    (tmp_path / "p.xmp").write_text(
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY d "2015-01-01T00:00:00">]>'
        "<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>"
        "<rdf:Description xmlns:xmp='http://ns.adobe.com/xap/1.0/'><xmp:CreateDate>&d;</xmp:CreateDate>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>")
    d = _date(photo)
    assert (d.taken_at.year, d.source) == (2011, "xmp")
    assert any("p.jpg.xmp" in n and "malformed" in n for n in d.notes)
    assert any("p.xmp" in n and "DOCTYPE" in n for n in d.notes)


def test_a_sidecar_that_is_not_a_file_is_never_opened(tmp_path: Path) -> None:
    photo = _photo(tmp_path / "p.jpg")
    os.mkfifo(tmp_path / "p.jpg.xmp")  # opening it for reading would block forever
    (tmp_path / "p.xmp").symlink_to("/dev/zero")
    d = _date(photo)
    assert d.source == "file" and len(d.notes) == 2 and all("never opened" in n for n in d.notes)


def test_parser_refuses_entities_dtd_and_huge_input() -> None:
    with pytest.raises(XMPError, match="DOCTYPE"):
        parse_xml(b'<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><x>&b;</x>')
    with pytest.raises(XMPError, match="DOCTYPE"):
        parse_xml(b'<!DOCTYPE x SYSTEM "file:///etc/passwd"><x/>')
    with pytest.raises(XMPError, match="larger than"):
        parse_xml(b"<x>" + b" " * MAX_XMP_BYTES + b"</x>")
    with pytest.raises(XMPError, match="not an XMP packet"):
        parse_xmp(b"<html/>")


def test_oversized_sidecar_is_not_read(tmp_path: Path) -> None:
    big = tmp_path / "p.xmp"
    with open(big, "wb") as f:
        f.truncate(MAX_XMP_BYTES + 1)
    with pytest.raises(XMPError, match="too large"):
        read_sidecar(big)


def test_values_from_attributes_elements_and_lists() -> None:
    packet = parse_xmp(
        b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>"
        b"<rdf:Description xmlns:dc='http://purl.org/dc/elements/1.1/' dc:format='image/jpeg'>"
        b"<dc:subject><rdf:Bag><rdf:li>a</rdf:li><rdf:li>b</rdf:li></rdf:Bag></dc:subject>"
        b"</rdf:Description></rdf:RDF></x:xmpmeta>")
    assert packet.values("http://purl.org/dc/elements/1.1/", "format") == ["image/jpeg"]
    assert packet.values("http://purl.org/dc/elements/1.1/", "subject") == ["a", "b"]


@pytest.mark.parametrize(("text", "expected"), [
    ("2019-07-14T18:03:22+02:00", (datetime(2019, 7, 14, 18, 3, 22), 120)),
    ("2019-07-14T18:03:22.5Z", (datetime(2019, 7, 14, 18, 3, 22), 0)),
    ("2019-07-14T18:03", (datetime(2019, 7, 14, 18, 3), None)),
    ("2019:07:14 18:03:22.000", (datetime(2019, 7, 14, 18, 3, 22), None)),
    ("2019-07-14T18:03:22+99:99", (datetime(2019, 7, 14, 18, 3, 22), None)),  # no such zone: date kept
    ("2019", None), ("2019-07", None),  # too vague
    ("0000-00-00T00:00:00", None), ("1800-01-01", None), ("2019-02-30", None), ("garbage", None),
])
def test_parse_xmp_date(text: str, expected) -> None:  # noqa: ANN001
    assert parse_xmp_date(text) == expected


def test_sidecar_names() -> None:
    assert [p.name for p in sidecar_candidates("/x/IMG_1.CR2")] == \
        ["IMG_1.CR2.xmp", "IMG_1.CR2.XMP", "IMG_1.xmp", "IMG_1.XMP"]


def test_pipeline_result_carries_the_xmp_date(tmp_path: Path) -> None:
    from indexer.pipeline import Analyzer

    photo = _photo(tmp_path / "p.jpg")
    _exiftool(photo, "-XMP-xmp:CreateDate=2019:07:14 18:03:22+02:00")
    result = Analyzer("haar").analyze(photo)
    assert result.status == "ok", result.error
    assert (result.taken_at, result.date_source, result.utc_offset_min) == (datetime(2019, 7, 14, 18, 3, 22),
                                                                             "xmp", 120)


def test_heif_date_from_its_exif_item(tmp_path: Path) -> None:
    """A phone's HEIC keeps its date in its EXIF item: read as EXIF, before any XMP."""
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    from PIL import Image

    photo = tmp_path / "p.heic"
    Image.fromarray(PIXELS).save(photo)
    _exiftool(photo, "-EXIF:DateTimeOriginal=2018:05:06 07:08:09", "-EXIF:OffsetTimeOriginal=+02:00",
              "-XMP-xmp:CreateDate=2011:01:01 00:00:00")
    d = _date(photo)
    assert (d.taken_at, d.utc_offset_min, d.source, d.estimated) == (datetime(2018, 5, 6, 7, 8, 9), 120, "exif", False)


@pytest.mark.parametrize(("where", "source", "shown"), [
    ("file", "xmp", "XMP in the file"), ("sidecar", "sidecar", "XMP sidecar"), (None, "file", "estimated from"),
])
def test_show_names_the_date_source_and_only_a_file_time_is_estimated(run_cli, tmp_path: Path, where: str | None,
                                                                      source: str, shown: str) -> None:
    lib = tmp_path / "lib"
    photo = _photo(lib / "p.jpg")
    if where == "file":
        _exiftool(photo, "-XMP-xmp:CreateDate=2019:07:14 18:03:22+02:00")
    elif where == "sidecar":
        _exiftool(lib / "p.jpg.xmp", "-XMP-xmp:CreateDate=2019:07:14 18:03:22+02:00", create=True)
    assert run_cli("index", lib, "--detector", "haar", "--workers", "1").exit_code == 0
    text = run_cli("show", photo).stdout
    assert f"({shown}" in text, text
    data = json.loads(run_cli("show", photo, "--format", "json").stdout)
    assert (data["date_source"], data["date_estimated"]) == (source, source == "file")
