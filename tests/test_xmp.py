"""Sidecar and in-file tag writing, read back with exiftool (what digiKam/darktable will see)."""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from fixtures.tagkit import (
    DARKTABLE_SIDECAR,
    VOLATILE,
    as_list,
    exif_json,
    jpeg_scan_data,
    make_photo,
    need_exiftool,
    pixels,
)

from indexer.export import xmp
from indexer.export.exiftool import ExifTool
from indexer.export.tags import TagError, desired_values

FIELDS = ("XMP-lr:HierarchicalSubject", "XMP-digiKam:TagsList", "XMP-microsoft:LastKeywordXMP", "XMP-dc:Subject")
OURS = set(FIELDS) | {"XMP-moodindex:Written", "IPTC:Keywords"}
NS = {"rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#", "darktable": "http://darktable.sf.net/"}


@pytest.fixture(scope="module")
def et():
    need_exiftool()
    with ExifTool() as tool:
        yield tool


def fields(path: Path) -> dict[str, list[str]]:
    data = exif_json(path)
    return {f: as_list(data.get(f)) for f in (*FIELDS, "IPTC:Keywords")}


def untouched(before: dict, after: dict) -> dict:
    """Tags that differ between two exiftool dumps, ignoring ours and file-system facts."""
    keys = (set(before) | set(after)) - VOLATILE - OURS
    # exiftool drops empty arrays (darktable's `<darktable:masks_history><rdf:Seq/>`); darktable reads
    # an empty array and an absent one alike (exif.cc FIND_XMP_TAG requires size() > 0), so '' == absent.
    return {k: (before.get(k), after.get(k)) for k in keys if before.get(k, "") != after.get(k, "")}


def darktable_history(path: Path) -> list[dict[str, str]]:
    """darktable's history entries as (attribute or element) -> text, whatever the XML layout."""
    root = ET.parse(path).getroot()
    out = []
    for li in root.iter(f"{{{NS['rdf']}}}li"):
        entry = {k.split("}")[1]: v for k, v in li.attrib.items() if k.startswith(f"{{{NS['darktable']}}}")}
        entry.update({c.tag.split("}")[1]: (c.text or "") for c in li if c.tag.startswith(f"{{{NS['darktable']}}}")})
        if "operation" in entry:
            out.append(entry)
    return out


# -- sidecars ----------------------------------------------------------------------------------
def test_new_sidecar_has_every_field(tmp_path: Path, et: ExifTool) -> None:
    photo = make_photo(tmp_path / "p.jpg")
    out = xmp.apply(et, photo, tmp_path, ["happy", "sad"])
    assert out.status == xmp.WRITTEN, out
    side = tmp_path / "p.jpg.xmp"
    got = fields(side)
    assert got["XMP-lr:HierarchicalSubject"] == ["Emotion|Happy", "Emotion|Sad"]
    assert got["XMP-digiKam:TagsList"] == ["Emotion/Happy", "Emotion/Sad"]
    assert got["XMP-microsoft:LastKeywordXMP"] == ["Emotion/Happy", "Emotion/Sad"]
    assert got["XMP-dc:Subject"] == ["Emotion", "Happy", "Sad"]  # darktable: every level a keyword
    assert got["IPTC:Keywords"] == []  # sidecars carry no IPTC
    assert oct(side.stat().st_mode & 0o777) == oct(photo.stat().st_mode & 0o666)
    assert not [p for p in tmp_path.iterdir() if ".moodindex-" in p.name]  # no temp file left


def test_merge_into_darktable_sidecar_keeps_history_and_tags(tmp_path: Path, et: ExifTool) -> None:
    photo = make_photo(tmp_path / "beach.jpg")
    side = tmp_path / "beach.jpg.xmp"
    shutil.copy(DARKTABLE_SIDECAR, side)
    os.chmod(side, 0o640)
    before, history = exif_json(side), darktable_history(side)
    assert [h["operation"] for h in history] == ["colorin", "colorout", "gamma", "flip"]

    out = xmp.apply(et, photo, tmp_path, ["happy", "surprise"])
    assert out.status == xmp.WRITTEN, out
    after = exif_json(side)
    assert untouched(before, after) == {}
    assert darktable_history(side) == history  # params, blendop params, order: all kept
    assert oct(side.stat().st_mode & 0o777) == "0o640"
    got = fields(side)
    # the user's own tags stay; ours are merged in
    assert got["XMP-lr:HierarchicalSubject"] == ["Happy", "events|holiday 2023", "places|beach",
                                                 "Emotion|Happy", "Emotion|Surprise"]
    assert got["XMP-dc:Subject"] == ["Happy", "beach", "events", "holiday 2023", "places", "Emotion", "Surprise"]
    assert got["XMP-digiKam:TagsList"] == ["Emotion/Happy", "Emotion/Surprise"]

    # untag gives back exactly the user's sidecar: "Happy" in dc:subject was theirs, so it stays
    out = xmp.apply(et, photo, tmp_path, [])
    assert out.status == xmp.WRITTEN, out
    final = exif_json(side)
    assert untouched(before, final) == {}
    assert {f: as_list(final.get(f)) for f in FIELDS} == {f: as_list(before.get(f)) for f in FIELDS}
    assert "XMP-moodindex:Written" not in final


def test_unknown_namespaces_survive(tmp_path: Path, et: ExifTool) -> None:
    photo = make_photo(tmp_path / "p.jpg")
    side = tmp_path / "p.jpg.xmp"
    text = DARKTABLE_SIDECAR.read_text().replace(
        "  </rdf:Description>\n",
        "  </rdf:Description>\n  <rdf:Description rdf:about=\"\" xmlns:acme=\"http://acme.example/ns/1.0/\"\n"
        "    acme:Reviewed=\"yes &amp; done\">\n   <acme:Albums><rdf:Seq><rdf:li>Summer</rdf:li>"
        "<rdf:li>Best &lt;of&gt;</rdf:li></rdf:Seq></acme:Albums>\n  </rdf:Description>\n", 1)
    side.write_text(text)
    before = exif_json(side)
    assert before["XMP-acme:Reviewed"] == "yes & done"
    assert xmp.apply(et, photo, tmp_path, ["fear"]).status == xmp.WRITTEN
    after = exif_json(side)
    assert untouched(before, after) == {}
    assert after["XMP-acme:Albums"] == ["Summer", "Best <of>"]


def test_idempotent_and_model_change(tmp_path: Path, et: ExifTool) -> None:
    photo = make_photo(tmp_path / "p.jpg")
    side = tmp_path / "p.jpg.xmp"
    shutil.copy(DARKTABLE_SIDECAR, side)
    assert xmp.apply(et, photo, tmp_path, ["happy", "sad"]).status == xmp.WRITTEN
    stamp, data = side.stat().st_mtime_ns, side.read_bytes()
    again = xmp.apply(et, photo, tmp_path, ["happy", "sad"])
    assert again.status == xmp.UNCHANGED
    assert side.read_bytes() == data and side.stat().st_mtime_ns == stamp
    # a new model says angry: only our old emotion tags go
    out = xmp.apply(et, photo, tmp_path, ["angry"])
    assert out.status == xmp.WRITTEN
    got = fields(side)
    assert got["XMP-lr:HierarchicalSubject"] == ["Happy", "events|holiday 2023", "places|beach", "Emotion|Angry"]
    assert got["XMP-digiKam:TagsList"] == ["Emotion/Angry"]
    assert "Sad" not in got["XMP-dc:Subject"] and "Happy" in got["XMP-dc:Subject"]  # user's "Happy" kept
    assert sorted(out.removed) == sorted(["lr:hierarchicalSubject=Emotion|Happy", "lr:hierarchicalSubject=Emotion|Sad",
                                          "digiKam:TagsList=Emotion/Happy", "digiKam:TagsList=Emotion/Sad",
                                          "MicrosoftPhoto:LastKeywordXMP=Emotion/Happy",
                                          "MicrosoftPhoto:LastKeywordXMP=Emotion/Sad", "dc:subject=Sad"])


def test_user_tag_with_our_name_is_never_claimed(tmp_path: Path, et: ExifTool) -> None:
    photo = make_photo(tmp_path / "p.jpg")
    side = tmp_path / "p.jpg.xmp"
    need_exiftool()
    import subprocess

    subprocess.run(["exiftool", "-q", "-XMP-digiKam:TagsList=Emotion/Happy", "-o", str(side), str(photo)], check=True)
    assert xmp.apply(et, photo, tmp_path, ["happy"]).status == xmp.WRITTEN
    assert fields(side)["XMP-digiKam:TagsList"] == ["Emotion/Happy"]  # no duplicate
    xmp.apply(et, photo, tmp_path, [])
    assert fields(side)["XMP-digiKam:TagsList"] == ["Emotion/Happy"]  # the user's, so it stays


def test_created_sidecar_removed_by_untag(tmp_path: Path, et: ExifTool) -> None:
    photo = make_photo(tmp_path / "p.jpg")
    xmp.apply(et, photo, tmp_path, ["neutral"])
    assert (tmp_path / "p.jpg.xmp").exists()
    assert xmp.apply(et, photo, tmp_path, []).status == xmp.REMOVED
    assert not (tmp_path / "p.jpg.xmp").exists()


def test_dry_run_writes_nothing(tmp_path: Path, et: ExifTool) -> None:
    photo = make_photo(tmp_path / "p.jpg")
    out = xmp.apply(et, photo, tmp_path, ["happy"], dry_run=True)
    assert out.status == xmp.WOULD_WRITE and "lr:hierarchicalSubject=Emotion|Happy" in out.added
    assert not (tmp_path / "p.jpg.xmp").exists()


def test_escaping_and_custom_prefix(tmp_path: Path, et: ExifTool) -> None:
    photo = make_photo(tmp_path / "p.jpg")
    out = xmp.apply(et, photo, tmp_path, ["happy"], prefix="Mood & <Feel> \"x\"")
    assert out.status == xmp.WRITTEN, out
    side = tmp_path / "p.jpg.xmp"
    ET.parse(side)  # still well-formed XML
    assert fields(side)["XMP-lr:HierarchicalSubject"] == ["Mood & <Feel> \"x\"|Happy"]


@pytest.mark.parametrize("prefix", ["Emo,tion", "Emo|tion", "Emo/tion", "", "a\nb"])
def test_separators_in_tag_text_rejected(prefix: str) -> None:
    with pytest.raises(TagError):
        desired_values(["happy"], prefix)


# -- safety ------------------------------------------------------------------------------------
def test_malformed_sidecar_left_untouched(tmp_path: Path, et: ExifTool) -> None:
    photo = make_photo(tmp_path / "p.jpg")
    side = tmp_path / "p.jpg.xmp"
    junk = b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF>unclosed"
    side.write_bytes(junk)
    out = xmp.apply(et, photo, tmp_path, ["happy"])
    assert out.status == xmp.REFUSED and "malformed" in out.message
    assert side.read_bytes() == junk


def test_sidecar_with_entities_left_untouched(tmp_path: Path, et: ExifTool) -> None:
    """Checked with the XMP reader dates use (media.xmp): no DOCTYPE, so no entity is ever expanded."""
    photo = make_photo(tmp_path / "p.jpg")
    side = tmp_path / "p.jpg.xmp"
    doc = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
           b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>"
           b"<rdf:Description rdf:about=''>&b;</rdf:Description></rdf:RDF></x:xmpmeta>")
    side.write_bytes(doc)
    out = xmp.apply(et, photo, tmp_path, ["happy"])
    assert out.status == xmp.REFUSED and "DOCTYPE" in out.message
    assert side.read_bytes() == doc


def test_symlinked_sidecar_refused(tmp_path: Path, et: ExifTool) -> None:
    root = tmp_path / "root"
    root.mkdir()
    photo = make_photo(root / "p.jpg")
    elsewhere = tmp_path / "elsewhere.xmp"
    shutil.copy(DARKTABLE_SIDECAR, elsewhere)
    data = elsewhere.read_bytes()
    (root / "p.jpg.xmp").symlink_to(elsewhere)
    out = xmp.apply(et, photo, root, ["happy"])
    assert out.status == xmp.REFUSED and "symbolic link" in out.message
    assert elsewhere.read_bytes() == data and (root / "p.jpg.xmp").is_symlink()


def test_paths_outside_root_refused(tmp_path: Path, et: ExifTool) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    photo = make_photo(outside / "p.jpg")
    assert xmp.apply(et, photo, root, ["happy"]).status == xmp.REFUSED
    (root / "linked").symlink_to(outside, target_is_directory=True)  # inside by name, outside for real
    out = xmp.apply(et, root / "linked" / "p.jpg", root, ["happy"])
    assert out.status == xmp.REFUSED and "outside" in out.message
    assert not (outside / "p.jpg.xmp").exists()


def test_hostile_file_names(tmp_path: Path, et: ExifTool) -> None:
    names = ["a'; touch x; '.jpg", "$(touch y).jpg", "`touch z`.jpg", " lead\nnewline.jpg", "-o.jpg", "#hash.jpg",
             "ünï cødé.jpg"]
    for name in names:
        photo = make_photo(tmp_path / name)
        out = xmp.apply(et, photo, tmp_path, ["happy"])
        assert out.status == xmp.WRITTEN, (name, out)
        assert fields(tmp_path / (name + ".xmp"))["XMP-lr:HierarchicalSubject"] == ["Emotion|Happy"]
    for trap in ("x", "y", "z"):
        assert not (tmp_path / trap).exists() and not Path(trap).exists()


# -- in-file -----------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".jpg", ".tif", ".png"])
def test_in_file_keeps_pixels_and_metadata(tmp_path: Path, et: ExifTool, suffix: str) -> None:
    photo = make_photo(tmp_path / f"p{suffix}")
    os.chmod(photo, 0o640)
    before, px = exif_json(photo), pixels(photo)
    scan = jpeg_scan_data(photo) if suffix == ".jpg" else None
    out = xmp.apply(et, photo, tmp_path, ["happy", "fear"], mode=xmp.IN_FILE)
    assert out.status == xmp.WRITTEN and out.target == photo, out
    assert not (tmp_path / f"p{suffix}.xmp").exists()
    after = exif_json(photo)
    assert untouched(before, after) == {}
    assert (pixels(photo) == px).all()
    if scan is not None:
        assert jpeg_scan_data(photo) == scan
    assert oct(photo.stat().st_mode & 0o777) == "0o640"
    got = fields(photo)
    assert got["XMP-lr:HierarchicalSubject"] == ["places|beach", "Emotion|Happy", "Emotion|Fear"]
    assert got["XMP-digiKam:TagsList"] == ["Emotion/Happy", "Emotion/Fear"]
    assert got["XMP-microsoft:LastKeywordXMP"] == ["Emotion/Happy", "Emotion/Fear"]
    assert got["XMP-dc:Subject"] == ["beach", "Emotion", "Happy", "Fear"]
    if suffix in (".jpg", ".tif"):
        assert got["IPTC:Keywords"] == ["beach", "Emotion", "Happy", "Fear"]
    # untag: back to the user's values, pixels still identical
    assert xmp.apply(et, photo, tmp_path, [], mode=xmp.IN_FILE).status == xmp.WRITTEN
    final = exif_json(photo)
    assert untouched(before, final) == {}
    assert {f: as_list(final.get(f)) for f in (*FIELDS, "IPTC:Keywords")} == \
        {f: as_list(before.get(f)) for f in (*FIELDS, "IPTC:Keywords")}
    assert (pixels(photo) == px).all()


def test_webp_in_file(tmp_path: Path, et: ExifTool) -> None:
    """WebP gets its tags in the file too (exiftool edits a copy in place, then it is renamed over)."""
    photo = make_photo(tmp_path / "p.webp")
    px = pixels(photo)
    out = xmp.apply(et, photo, tmp_path, ["happy"], mode=xmp.IN_FILE)
    assert out.status == xmp.WRITTEN and out.target == photo, out
    assert (pixels(photo) == px).all()
    assert fields(photo)["XMP-lr:HierarchicalSubject"] == ["places|beach", "Emotion|Happy"]
    assert not (tmp_path / "p.webp.xmp").exists()


def test_raw_always_gets_a_sidecar(tmp_path: Path, et: ExifTool) -> None:
    raw = tmp_path / "IMG_0001.CR2"
    raw.write_bytes(b"not really raw, never opened for writing")
    data = raw.read_bytes()
    out = xmp.apply(et, raw, tmp_path, ["sad"], mode=xmp.IN_FILE)
    assert out.status == xmp.WRITTEN and out.target == tmp_path / "IMG_0001.CR2.xmp"
    assert raw.read_bytes() == data
    assert fields(out.target)["XMP-lr:HierarchicalSubject"] == ["Emotion|Sad"]


def test_make_plan_is_pure_and_minimal() -> None:
    desired = desired_values(["happy"])
    current = {f: [] for f in desired}
    current["XMP-lr:HierarchicalSubject"] = ["Emotion|Happy", "Emotion|Old"]
    record = {"lr:hierarchicalSubject=Emotion|Old"}
    plan = xmp.make_plan(current, record, desired)
    assert plan.remove["XMP-lr:HierarchicalSubject"] == ["Emotion|Old"]
    assert plan.add["XMP-lr:HierarchicalSubject"] == []           # already there (the user's)
    assert "lr:hierarchicalSubject=Emotion|Happy" not in plan.record_add  # so not claimed
    assert plan.record_remove == ["lr:hierarchicalSubject=Emotion|Old"]
