"""Corrections made in digiKam or darktable: an `Emotion|…` tag the user removed from those
moodindex wrote, or one they added, is read at the next `index` as a correction (one face: that
face; several: the whole photo), without running the models, and re-tagging never puts a
removed tag back.  The edits are made by exiftool on real files, the way each program writes
them: darktable rewrites `lr:hierarchicalSubject` and `dc:subject` only; digiKam rewrites all its
keyword fields; both keep properties they do not know (our `moodindex:Written` record)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fixtures.tagkit import as_list, exif_json, need_exiftool

from indexer.media.tagstate import TagVerdicts, verdicts
from indexer.media.xmp import read_sidecar
from tests.photo_factory import compose, dev_faces, write_photo

TAG_FIELDS = ("XMP-lr:HierarchicalSubject", "XMP-digiKam:TagsList", "XMP-microsoft:LastKeywordXMP",
              "XMP-dc:Subject")
LOW = "0.2"  # tag every face's top emotion: the test is about the round trip, not the threshold


def _json(run_cli, *args):
    res = run_cli(*args)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _index(run_cli, folder: Path) -> dict:
    return _json(run_cli, "index", folder, "--workers", "1", "--format", "json")


def exiftool(target: Path, *args: str) -> None:
    need_exiftool()
    subprocess.run(["exiftool", "-q", "-overwrite_original", *args, str(target)], check=True, capture_output=True)


def tags_in(target: Path) -> dict[str, list[str]]:
    """The keyword fields; none when the file is gone (untag deletes a sidecar of ours left empty)."""
    data = exif_json(target, *TAG_FIELDS) if target.exists() else {}
    return {f: as_list(data.get(f)) for f in TAG_FIELDS}


def darktable_removes(sidecar: Path, label: str) -> None:
    """darktable 4.x detaching Emotion|LABEL: it rewrites its own keys (the hierarchical tags and
    dc:subject, every level a keyword) and leaves digiKam's and Microsoft's fields as they were."""
    exiftool(sidecar, f"-XMP-lr:HierarchicalSubject-=Emotion|{label}", f"-XMP-dc:Subject-={label}")


def digikam_replaces(target: Path, old: str, new: str) -> None:
    """digiKam replacing tag Emotion/OLD by Emotion/NEW: every keyword field it writes changes."""
    exiftool(target, f"-XMP-digiKam:TagsList-=Emotion/{old}", f"-XMP-lr:HierarchicalSubject-=Emotion|{old}",
             f"-XMP-microsoft:LastKeywordXMP-=Emotion/{old}", f"-XMP-dc:Subject-={old}",
             f"-XMP-digiKam:TagsList+=Emotion/{new}", f"-XMP-lr:HierarchicalSubject+=Emotion|{new}",
             f"-XMP-microsoft:LastKeywordXMP+=Emotion/{new}", f"-XMP-dc:Subject+={new}")


@contextmanager
def no_model(worker_spy) -> Iterator[None]:  # noqa: ANN001 (tests.worker_spy.WorkerSpy)
    """The index run inside analyses in workers (as always) but runs neither detector nor model."""
    worker_spy.reset()
    yield
    assert worker_spy.analysed, "the edited photo was not read again"
    assert worker_spy.detected == worker_spy.predicted == [], "a metadata-only edit must not run the model"


@pytest.fixture()
def one_face(tmp_path: Path, dev_faces_dir: Path, yunet_installed: Path) -> Path:
    img, _ = compose(dev_faces(dev_faces_dir, "happy", 1), seed=5)
    return write_photo(tmp_path / "lib" / "solo.jpg", img)


@pytest.fixture()
def two_faces(tmp_path: Path, dev_faces_dir: Path, yunet_installed: Path) -> Path:
    img, _ = compose(dev_faces(dev_faces_dir, "happy", 2), seed=11)
    return write_photo(tmp_path / "lib" / "party.jpg", img)


def _faces(run_cli, photo: Path) -> list[tuple[str, bool]]:
    return [(f["emotion"], f["corrected"]) for f in _json(run_cli, "show", photo, "--format", "json")["face_details"]]


def test_a_tag_removed_in_darktable_corrects_the_one_face(run_cli, one_face, worker_spy):
    _index(run_cli, one_face.parent)
    assert _faces(run_cli, one_face) == [("happy", False)]
    assert run_cli("tag", "--min-score", LOW).exit_code == 0
    sidecar = one_face.with_name("solo.jpg.xmp")
    assert "Emotion|Happy" in tags_in(sidecar)["XMP-lr:HierarchicalSubject"]
    assert _index(run_cli, one_face.parent)["unchanged"] == 1  # our own sidecar write is not read again

    darktable_removes(sidecar, "Happy")
    with no_model(worker_spy):
        summary = _index(run_cli, one_face.parent)
    assert summary["metadata_only"] == 1 and summary["unchanged"] == 0
    [(emotion, corrected)] = _faces(run_cli, one_face)
    assert emotion != "happy" and corrected
    assert not _json(run_cli, "query", "happy", "--format", "json")
    [c] = _json(run_cli, "corrections", "--format", "json")
    assert (c["not_emotion"], c["source"], c["photo_level"], c["paths"]) == ("happy", "tags", False, [str(one_face)])

    # re-tagging takes our other Happy values away (the face is no longer happy) and never puts
    # the removed one back; the correction holds through the next index and a forced re-analysis
    assert run_cli("tag", "--min-score", LOW).exit_code == 0
    after = tags_in(sidecar)
    assert not [v for vs in after.values() for v in vs if "Happy" in v], after
    _index(run_cli, one_face.parent)
    assert _index(run_cli, one_face.parent)["unchanged"] == 1
    assert _json(run_cli, "index", one_face.parent, "--workers", "1", "--force", "--format", "json")["changed"] == 1
    assert _faces(run_cli, one_face)[0][0] != "happy"
    assert len(_json(run_cli, "corrections", "--format", "json")) == 1


def test_a_tag_replaced_in_digikam_corrects_the_whole_group_photo(run_cli, two_faces, worker_spy):
    _index(run_cli, two_faces.parent)
    assert _faces(run_cli, two_faces) == [("happy", False), ("happy", False)]
    assert run_cli("tag", "--min-score", LOW).exit_code == 0
    sidecar = two_faces.with_name("party.jpg.xmp")
    _index(run_cli, two_faces.parent)

    digikam_replaces(sidecar, "Happy", "Surprise")
    with no_model(worker_spy):
        assert _index(run_cli, two_faces.parent)["metadata_only"] == 1
    faces = _faces(run_cli, two_faces)
    assert [e for e, _ in faces].count("surprise") == 1 and "happy" not in [e for e, _ in faces]
    assert all(corrected for _, corrected in faces)
    shown = run_cli("show", two_faces).stdout
    assert "not happy: applies to the whole photo" in shown and "surprise: applies to the whole photo" in shown
    assert [r["path"] for r in _json(run_cli, "query", "surprised", "--format", "json")] == [str(two_faces)]
    assert not _json(run_cli, "query", "happy", "--format", "json")
    listed = _json(run_cli, "corrections", "--format", "json")
    assert sorted((str(c["emotion"]), str(c["not_emotion"]), c["photo_level"]) for c in listed) == [
        ("None", "happy", True), ("surprise", "None", True)]

    # the round trip: re-tagging keeps the user's Surprise (not ours to take) and adds no Happy
    assert run_cli("tag", "--min-score", LOW).exit_code == 0
    after = tags_in(sidecar)
    assert "Emotion|Surprise" in after["XMP-lr:HierarchicalSubject"]
    assert not [v for vs in after.values() for v in vs if "Happy" in v], after
    _index(run_cli, two_faces.parent)
    assert len(_json(run_cli, "corrections", "--format", "json")) == 2


def test_an_in_file_tag_removed_is_read_without_the_models(run_cli, one_face, worker_spy):
    """Tags embedded in the JPEG (tag --in-file), one taken out by a program that edits the file's
    own XMP: the file changes but not its pixels."""
    _index(run_cli, one_face.parent)
    assert run_cli("tag", "--in-file", "--min-score", LOW).exit_code == 0
    assert "Emotion|Happy" in tags_in(one_face)["XMP-lr:HierarchicalSubject"]
    exiftool(one_face, "-XMP-lr:HierarchicalSubject-=Emotion|Happy", "-XMP-digiKam:TagsList-=Emotion/Happy")
    with no_model(worker_spy):
        assert _index(run_cli, one_face.parent)["metadata_only"] == 1
    assert _faces(run_cli, one_face)[0][0] != "happy"


def test_names_in_a_new_sidecar_run_no_model(run_cli, two_faces, worker_spy):
    """Item 1's promise for sidecars: the photo file is untouched, only IMG.xmp appears."""
    from test_regions import _normalised, mwg_arg

    _index(run_cli, two_faces.parent)
    boxes = [f["box"] for f in _json(run_cli, "show", two_faces, "--format", "json")["face_details"]]
    exiftool(two_faces.with_name("party.xmp"), mwg_arg([("Ben Okafor", _normalised(boxes[1], 2400, 1800))],
                                                        (2400, 1800)))
    with no_model(worker_spy):
        assert _index(run_cli, two_faces.parent)["metadata_only"] == 1
    assert [p["name"] for p in _json(run_cli, "people", "--format", "json")] == ["Ben Okafor"]


def test_verdicts_from_real_sidecars(tmp_path):
    """The rules on their own: removed per field, added when no record claims it, unclear dropped,
    other prefixes and flat keywords ignored, a prefix we wrote with recognised."""
    sidecar = tmp_path / "x.jpg.xmp"
    need_exiftool()
    subprocess.run(["exiftool", "-config", _config(tmp_path), "-q", "-o", str(sidecar),
                    "-XMP-lr:HierarchicalSubject=Stimmung|Happy", "-XMP-lr:HierarchicalSubject+=Emotion|Sad",
             "-XMP-lr:HierarchicalSubject+=places|Angry", "-XMP-dc:Subject=Fear",
             "-XMP-digiKam:TagsList=Stimmung/Neutral", "-XMP-digiKam:TagsList+=Emotion/Disgust",
             "-XMP-moodindex:Written=lr:hierarchicalSubject=Stimmung|Happy",
             "-XMP-moodindex:Written+=digiKam:TagsList=Stimmung/Happy",
             "-XMP-moodindex:Written+=MicrosoftPhoto:LastKeywordXMP=Emotion/Disgust"], check=True, capture_output=True)
    # Happy: ours, still in lr but gone from TagsList -> removed.  Sad, Neutral: nobody's record ->
    # added.  Disgust: added to TagsList and gone from LastKeywordXMP -> unclear.
    assert verdicts([read_sidecar(sidecar)]) == TagVerdicts(added=("sad", "neutral"), removed=("happy",))


def _config(tmp_path: Path) -> str:
    from indexer.export.exiftool import _CONFIG

    path = tmp_path / "moodindex.config"
    path.write_text(_CONFIG)
    return str(path)


def test_record_names_agree_with_the_writer():
    from indexer.export import tags as T
    from indexer.export.xmp import RECORD_NAMES
    from indexer.media.tagstate import HIERARCHICAL_FIELDS

    assert {RECORD_NAMES[t] for t in (T.HIERARCHICAL, T.TAGSLIST, T.LASTKEYWORD)} == set(HIERARCHICAL_FIELDS)


def test_retagging_never_puts_a_removed_tag_back(tmp_path):
    """Without an `index` in between (the model still says happy): the value of ours the user took
    out stays out, and our record of it stays, so the next `index` still reads the removal."""
    from fixtures.tagkit import make_photo

    from indexer.export import xmp
    from indexer.export.exiftool import ExifTool

    need_exiftool()
    photo = make_photo(tmp_path / "beach.jpg", seed=3)
    with ExifTool() as et:
        assert xmp.apply(et, photo, tmp_path, ["happy", "sad"]).status == xmp.WRITTEN
        sidecar = photo.with_name("beach.jpg.xmp")
        darktable_removes(sidecar, "Happy")
        assert xmp.apply(et, photo, tmp_path, ["happy", "sad"]).status == xmp.UNCHANGED
    assert tags_in(sidecar)["XMP-lr:HierarchicalSubject"] == ["Emotion|Sad"]
    assert verdicts([read_sidecar(sidecar)]) == TagVerdicts(removed=("happy",))


DARKTABLE_LUARC = """
local dt = require "darktable"
local out = io.open(os.getenv("DT_OUT"), "w")
local ok, err = pcall(function()
  local image = dt.database.import(os.getenv("PHOTO"))
  dt.tags.detach(dt.tags.find("Emotion|Happy"), image)
  dt.tags.attach(dt.tags.create("Emotion|Angry"), image)
  for _, tag in ipairs(dt.tags.get_tags(image)) do out:write("TAG\\t" .. tag.name .. "\\n") end
end)
out:write("DONE\\t" .. tostring(ok) .. "\\t" .. tostring(err) .. "\\n")
out:close()
"""


@pytest.mark.slow
def test_the_round_trip_through_real_darktable(run_cli, one_face, tmp_path):
    """Debian's darktable 4.2 under Xvfb: it imports our sidecar, the user's edit (Happy detached,
    Angry attached) is written back by darktable itself, and `index` makes it a correction."""
    import os
    import shutil

    from fixtures.darktable import run_darktable

    if not (shutil.which("darktable") and shutil.which("xvfb-run")):
        pytest.skip("darktable and xvfb-run not installed (apt-get install darktable xvfb xauth)")
    _index(run_cli, one_face.parent)
    assert run_cli("tag", "--min-score", LOW).exit_code == 0
    sidecar = one_face.with_name("solo.jpg.xmp")
    before = sidecar.stat().st_mtime_ns
    conf, out = tmp_path / "dtconf", tmp_path / "dt.out"
    conf.mkdir()
    (conf / "luarc").write_text(DARKTABLE_LUARC)
    env = {**os.environ, "DT_OUT": str(out), "PHOTO": str(one_face)}
    command = ["xvfb-run", "-a", "darktable", "--configdir", str(conf), "--library", ":memory:",
               "--cachedir", str(tmp_path / "dtcache")]
    # darktable writes the sidecar when the tags change
    run_darktable(command, tmp_path, env, out, until=lambda: sidecar.stat().st_mtime_ns != before)
    assert "DONE\ttrue\tnil" in out.read_text(), out.read_text()
    written = tags_in(sidecar)
    assert written["XMP-lr:HierarchicalSubject"] == ["Emotion|Angry"]  # darktable's rewrite
    assert "Emotion/Happy" in written["XMP-digiKam:TagsList"]          # a field darktable leaves alone
    assert _index(run_cli, one_face.parent)["metadata_only"] == 1
    assert _faces(run_cli, one_face) == [("angry", True)]
    assert run_cli("tag", "--min-score", LOW).exit_code == 0
    after = tags_in(sidecar)
    assert "Emotion|Angry" in after["XMP-lr:HierarchicalSubject"]
    assert not [v for vs in after.values() for v in vs if "Happy" in v], after


def test_an_edit_made_before_our_write_is_still_read(run_cli, one_face):
    """The user adds Emotion|Angry in darktable, then `untag` rewrites the sidecar before any
    `index`: the index must not take the sidecar as read, or the user's tag would be missed."""
    _index(run_cli, one_face.parent)
    assert run_cli("tag", "--min-score", LOW).exit_code == 0
    sidecar = one_face.with_name("solo.jpg.xmp")
    exiftool(sidecar, "-XMP-lr:HierarchicalSubject+=Emotion|Angry", "-XMP-dc:Subject+=Angry")
    assert run_cli("untag").exit_code == 0
    assert tags_in(sidecar)["XMP-lr:HierarchicalSubject"] == ["Emotion|Angry"]  # the user's stays
    assert _index(run_cli, one_face.parent)["metadata_only"] == 1
    assert _faces(run_cli, one_face) == [("angry", True)]


def test_the_scan_and_one_photo_agree_on_the_sidecars(tmp_path):
    """The scan lists each folder once, `tag` looks one photo up: the same signature, which changes
    when a sidecar is edited, added or removed."""
    import os

    from indexer.media.tagstate import sidecar_signature, sidecar_signatures

    for name in ("a.jpg", "b.jpg", "c.CR2", "d.jpg"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "a.jpg.xmp").write_text("1")
    (tmp_path / "b.xmp").write_text("2")
    (tmp_path / "c.XMP").write_text("3")
    paths = [str(tmp_path / n) for n in ("a.jpg", "b.jpg", "c.CR2", "d.jpg")]
    batch = sidecar_signatures(paths)
    assert batch == {p: sidecar_signature(p) for p in paths}
    assert batch[paths[3]] is None and len({batch[p] for p in paths[:3]}) == 3
    (tmp_path / "a.xmp").write_text("another")
    os.utime(tmp_path / "b.xmp", ns=(1, 1))
    after = sidecar_signatures(paths)
    assert after[paths[0]] != batch[paths[0]] and after[paths[1]] != batch[paths[1]]
    assert after[paths[2]] == batch[paths[2]]
