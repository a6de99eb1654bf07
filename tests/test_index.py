"""`moodindex index` end to end on real files: incremental, moves, deletes, bad input, resume."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from indexer.db.models import Face, Photo
from indexer.db.session import open_db
from tests.photo_factory import background, compose, dev_faces, iou, write_photo


@pytest.fixture()
def library(tmp_path: Path, dev_faces_dir: Path, yunet_installed: Path) -> Path:
    """A small photo library with good photos, bad files, hidden and ignored ones."""
    lib = tmp_path / "Pictures"
    happy = dev_faces(dev_faces_dir, "happy", 3)
    sad = dev_faces(dev_faces_dir, "sad", 2)
    img, _ = compose(happy[:2], seed=1)
    write_photo(lib / "2019" / "party.jpg", img, taken=datetime(2019, 7, 14, 18, 3, 22), offset="+02:00")
    img, _ = compose(sad[:1], seed=2)
    write_photo(lib / "2019" / "rain.jpg", img, taken=datetime(2019, 11, 2, 9, 0, 0))
    img, _ = compose([happy[2]], seed=3)
    write_photo(lib / "2021" / "beach.png", img)  # no EXIF date: file time, estimated
    write_photo(lib / "2021" / "landscape.jpg", background(1600, 1200, seed=4), taken=datetime(2021, 6, 1, 12))
    bad = lib / "bad"
    bad.mkdir()
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "notes.jpg").write_text("not a photo")
    (bad / "half.jpg").write_bytes((lib / "2019" / "rain.jpg").read_bytes()[:20_000])
    os.symlink(bad / "loop.jpg", bad / "loop.jpg")  # a symlink pointing at itself
    write_photo(lib / ".hidden" / "secret.jpg", background(200, 200))
    write_photo(lib / "exports" / "copy.jpg", background(200, 200))
    (lib / ".moodignore").write_text("exports/\n")
    (lib / "notes.txt").write_text("not a photo extension: ignored")
    return lib


def _summary(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _rows(db_location: Path | str) -> dict[str, Photo]:
    engine = open_db(db_location)
    with Session(engine) as s:
        rows = {p.path: p for p in s.scalars(select(Photo))}
        for p in rows.values():
            _ = p.faces
    engine.dispose()
    return rows


def test_index_library_records_everything(run_cli, library, db_location):
    summary = _summary(run_cli("index", library, "--workers", "1", "--format", "json"))
    assert summary["new"] == 4
    assert summary["failed"] == 3  # empty, text, truncated
    assert summary["faces"] >= 4
    assert any("loop.jpg" in p for p, _ in summary["problems"])
    rows = _rows(db_location)
    assert not any("secret" in p or "exports" in p for p in rows)  # hidden and .moodignore'd
    party = rows[str(library / "2019" / "party.jpg")]
    assert party.status == "ok" and party.face_count == 2
    assert (party.taken_at, party.date_source, party.utc_offset_min) == (datetime(2019, 7, 14, 18, 3, 22), "exif", 120)
    assert (party.width, party.height) == (2400, 1800)
    assert party.detector.startswith("yunet") and party.model_version.startswith("moodindex-fer")
    for face in party.faces:
        assert sum(face.scores().values()) == pytest.approx(1.0, abs=1e-3)
        assert face.emotion == max(face.scores(), key=face.scores().get)
    beach = rows[str(library / "2021" / "beach.png")]
    assert beach.date_source == "file"
    assert rows[str(library / "2021" / "landscape.jpg")].face_count == 0
    reasons = {Path(p).name: r.error for p, r in rows.items() if r.status == "error"}
    assert "empty" in reasons["empty.jpg"]
    assert "not an image" in reasons["notes.jpg"]
    assert "truncated" in reasons["half.jpg"]


def test_boxes_are_where_the_faces_are(run_cli, tmp_path, dev_faces_dir, db_location, yunet_installed):
    faces = dev_faces(dev_faces_dir, "neutral", 3)
    img, truth = compose(faces, size=(4000, 3000), face_px=500, seed=5)
    path = write_photo(tmp_path / "lib" / "three.jpg", img)
    _summary(run_cli("index", path.parent, "--format", "json"))
    got = [(f.x, f.y, f.w, f.h) for f in _rows(db_location)[str(path)].faces]
    assert len(got) == 3
    for box in truth:
        assert max(iou(box, g) for g in got) > 0.5


def test_rerun_skips_unchanged_without_loading_models(run_cli, library, monkeypatch, worker_spy):
    _summary(run_cli("index", library, "--format", "json"))
    assert worker_spy.loads >= 1 and len(worker_spy.analysed) == 7
    worker_spy.reset()

    def no_models(*a, **k):
        raise AssertionError("an unchanged library must not load any model")

    monkeypatch.setattr("indexer.pipeline.Analyzer.__init__", no_models)  # in this process: never
    summary = _summary(run_cli("index", library, "--format", "json"))
    assert summary["new"] == summary["changed"] == summary["failed"] == 0
    assert summary["unchanged"] == 7
    assert worker_spy.loads == 0 and worker_spy.analysed == []  # no worker started either


def test_moved_and_renamed_files_keep_results(run_cli, library, db_location, monkeypatch, worker_spy):
    _summary(run_cli("index", library, "--format", "json"))
    before = _rows(db_location)[str(library / "2019" / "party.jpg")]
    (library / "albums").mkdir()
    shutil.move(library / "2019" / "party.jpg", library / "albums" / "best party.jpg")
    worker_spy.reset()
    monkeypatch.setattr("indexer.pipeline.Analyzer.__init__", lambda *a, **k: pytest.fail("moves run no model"))
    summary = _summary(run_cli("index", library, "--format", "json"))
    assert summary["moved"] == 1 and summary["deleted"] == 0 and summary["new"] == 0
    assert worker_spy.loads == 0 and worker_spy.analysed == []
    rows = _rows(db_location)
    after = rows[str(library / "albums" / "best party.jpg")]
    assert after.id == before.id and after.face_count == 2
    assert str(library / "2019" / "party.jpg") not in rows


def test_deleted_files_leave_the_index(run_cli, library, db_location):
    _summary(run_cli("index", library, "--format", "json"))
    (library / "2019" / "rain.jpg").unlink()
    summary = _summary(run_cli("index", library, "--format", "json"))
    assert summary["deleted"] == 1
    listed = run_cli("list", "--format", "paths").stdout.splitlines()
    assert str(library / "2019" / "rain.jpg") not in listed
    assert str(library / "2019" / "party.jpg") in listed


def test_missing_root_never_empties_the_index(run_cli, library, db_location, tmp_path):
    _summary(run_cli("index", library, "--format", "json"))
    n = len(run_cli("list").stdout.splitlines())
    library.rename(tmp_path / "unplugged")
    summary = _summary(run_cli("index", library, "--format", "json"))
    assert summary["deleted"] == 0 and summary["unreachable_roots"]
    assert len(run_cli("list").stdout.splitlines()) == n
    library.mkdir()  # an empty mount point
    summary = _summary(run_cli("index", library, "--format", "json"))
    assert summary["deleted"] == 0 and "empty" in summary["unreachable_roots"][0]
    assert len(run_cli("list").stdout.splitlines()) == n


def test_changed_file_is_reanalysed_and_force_redoes_all(run_cli, library):
    _summary(run_cli("index", library, "--format", "json"))
    p = library / "2021" / "landscape.jpg"
    write_photo(p, background(1600, 1200, seed=9), taken=datetime(2021, 6, 2, 12))
    summary = _summary(run_cli("index", library, "--format", "json"))
    assert summary["changed"] == 1 and summary["unchanged"] == 6
    summary = _summary(run_cli("index", library, "--force", "--format", "json"))
    assert summary["changed"] + summary["failed"] == 7


def test_a_detector_failure_is_that_photo_s_error(run_cli, library, db_location, monkeypatch, worker_spy):
    """A runtime error inside detection or the model (ONNX Runtime, LiteRT) fails one photo, not the run."""
    from tests.worker_spy import FAIL_FACES_ENV

    monkeypatch.setenv(FAIL_FACES_ENV, "rain.jpg")  # raised inside the worker's detection
    summary = _summary(run_cli("index", library, "--workers", "1", "--format", "json"))  # exit 0
    assert str(library / "2019" / "rain.jpg") in worker_spy.detected
    rows = {Path(p).name: r for p, r in _rows(db_location).items()}
    assert rows["rain.jpg"].status == "error"
    assert rows["rain.jpg"].error == "face analysis failed: RuntimeError: onnxruntime: bad allocation"
    assert rows["party.jpg"].status == "ok" and rows["party.jpg"].face_count == 2  # the run went on
    assert summary["failed"] == 4  # rain.jpg and the three broken files


def test_two_worker_processes(run_cli, library, db_location):
    summary = _summary(run_cli("index", library, "--workers", "2", "--format", "json"))
    assert summary["new"] == 4 and summary["failed"] == 3


def test_interrupted_run_resumes(run_cli, library, db_location, monkeypatch):
    import indexer.scan as scan

    calls = {"n": 0}
    real_store = scan.Indexer._store

    def store_then_interrupt(self, results, roots, *rest):  # noqa: ANN002
        real_store(self, results, roots, *rest)
        calls["n"] += 1
        raise KeyboardInterrupt

    monkeypatch.setattr(scan, "BATCH_SIZE", 2)
    monkeypatch.setattr(scan.Indexer, "_store", store_then_interrupt)
    result = run_cli("index", library, "--workers", "1")
    assert result.exit_code == 130 and "resume" in result.stderr
    monkeypatch.setattr(scan.Indexer, "_store", real_store)
    done_before = len(_rows(db_location))
    assert 0 < done_before < 7
    summary = _summary(run_cli("index", library, "--format", "json"))
    assert summary["unchanged"] == done_before
    assert summary["new"] + summary["failed"] == 7 - done_before


def test_a_photo_is_stored_whole_or_not_at_all(run_cli, library, db_location, monkeypatch):
    import indexer.db.photos as repo

    real_face = repo.Face

    def exploding_face(**kw):
        if kw["idx"] == 1:
            raise RuntimeError("disk full")
        return real_face(**kw)

    monkeypatch.setattr(repo, "Face", exploding_face)
    result = run_cli("index", library / "2019", "--workers", "1")
    assert result.exit_code == 1 and "internal error" in result.stderr
    engine = open_db(db_location)
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Photo)) == 0
        assert s.scalar(select(func.count()).select_from(Face)) == 0
    engine.dispose()


def test_show_status_errors_list(run_cli, library, db_location):
    _summary(run_cli("index", library, "--format", "json"))
    shown = json.loads(run_cli("show", library / "2019" / "party.jpg", "--format", "json").stdout)
    assert shown["faces"] == 2 and len(shown["face_details"]) == 2 and shown["date_source"] == "exif"
    assert "face 0" in run_cli("show", library / "2019" / "party.jpg").stdout
    missing = run_cli("show", library / "nope.jpg")
    assert missing.exit_code == 1 and "not in the index" in missing.stderr
    status = json.loads(run_cli("status", "--format", "json").stdout)
    assert {"photos", "faces", "errors", "db", "detector", "model", "last_run"} <= status.keys()
    assert status["photos"] == 4 and status["errors"] == 3
    assert status["detector"]["in_use"] == "yunet" and "runtime" not in status["detector"]  # not loaded
    assert status["model"]["name"] == "moodindex-fer" and status["model"]["id"] == shown["model"]
    checked = json.loads(run_cli("status", "--check", "--format", "json").stdout)
    assert checked["detector"]["runtime"].startswith("onnxruntime ")
    assert checked["model"]["id"] == status["model"]["id"] and checked["model"]["runtime"]
    errors = json.loads(run_cli("errors", "--format", "json").stdout)
    assert {Path(e["path"]).name for e in errors} >= {"empty.jpg", "notes.jpg", "half.jpg", "loop.jpg"}
    assert all(e["error"] for e in errors)
    listed = json.loads(run_cli("list", "--format", "json").stdout)
    assert len(listed) == 4 and all(item["status"] == "ok" for item in listed)


def test_classify_does_not_touch_the_index(run_cli, library, db_location):
    result = run_cli("classify", library / "2019" / "party.jpg", library / "bad" / "notes.jpg", "--format", "json")
    assert result.exit_code == 1  # one file failed: the output still lists both
    out = json.loads(result.stdout)
    assert len(out[0]["faces"]) == 2 and out[0]["error"] is None
    face = out[0]["faces"][0]
    assert set(face) >= {"box", "confidence", "emotion", "scores"} and len(face["scores"]) == 7
    assert "not an image" in out[1]["error"]
    assert run_cli("classify", library / "2019" / "party.jpg").exit_code == 0
    assert not _index_exists(db_location)


def _index_exists(location: Path | str) -> bool:
    """The SQLite file, or any table in the test's PostgreSQL schema."""
    if isinstance(location, Path):
        return location.exists()
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.engine import make_url

    engine = create_engine(make_url(location).set(drivername="postgresql+psycopg"))
    try:
        return bool(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_a_path_argument_that_does_not_exist_is_a_usage_error(run_cli, library, db_path, tmp_path):
    missing = run_cli("classify", library / "2019" / "party.jpg", library / "nope.jpg")
    assert missing.exit_code == 2 and "nope.jpg" in missing.stderr and "does not exist" in missing.stderr
    typo = run_cli("index", tmp_path / "nonexistent")
    assert typo.exit_code == 2 and typo.stderr == f"moodindex: {tmp_path / 'nonexistent'}: no such file or folder\n"
    assert not db_path.exists()  # refused before anything was opened
    # a root the index knows is an unplugged drive, not a typo: its rows are kept and the run completes
    _summary(run_cli("index", library, "--format", "json"))
    library.rename(tmp_path / "unplugged")
    gone = run_cli("index", library)
    assert gone.exit_code == 0 and "kept, not scanned" in gone.stderr
    assert run_cli("index", library / "2019" / "party.jpg").exit_code == 0  # a known file too


def test_index_with_failed_files_completes_and_points_to_errors(run_cli, library):
    result = run_cli("index", library)
    assert result.exit_code == 0
    assert "see `moodindex errors` for the reasons" in result.stderr


def test_usage_errors_are_one_line(run_cli, tmp_path):
    result = run_cli("index")
    assert result.exit_code == 2 and "no folders given" in result.stderr
    (tmp_path / "cfg.toml").write_text("detector = 'magic'\n")
    result = run_cli("--config", tmp_path / "cfg.toml", "status")
    assert result.exit_code == 2 and "detector must be" in result.stderr and "Traceback" not in result.output


def test_haar_works_with_zero_downloads(run_cli, tmp_path, dev_faces_dir, db_location):
    faces = dev_faces(dev_faces_dir, "happy", 1)
    img, truth = compose(faces, size=(2400, 1800), face_px=600, seed=7)
    path = write_photo(tmp_path / "lib" / "one.jpg", img)
    status = json.loads(run_cli("status", "--format", "json").stdout)
    assert status["detector"]["in_use"] == "haar" and "model fetch yunet" in status["detector"]["hint"]
    _summary(run_cli("index", path.parent, "--format", "json"))
    row = _rows(db_location)[str(path)]
    assert row.detector.startswith("haar") and row.face_count >= 1  # Haar may add a false face
    assert max(iou(truth[0], (f.x, f.y, f.w, f.h)) for f in row.faces) > 0.5


def _exiftool(*args: str) -> None:
    from fixtures.tagkit import need_exiftool

    subprocess.run([need_exiftool(), "-q", "-overwrite_original", *args], check=True)


def test_metadata_edit_keeps_faces_and_reads_the_new_date(run_cli, library, db_location, worker_spy):
    """digiKam or exiftool writing into a JPEG or PNG changes its bytes, not its pixels: no model runs."""
    party, beach = library / "2019" / "party.jpg", library / "2021" / "beach.png"
    _summary(run_cli("index", library, "--format", "json"))
    before, beach_before = _rows(db_location)[str(party)], _rows(db_location)[str(beach)]
    _exiftool("-XMP-digiKam:TagsList=People/Friends", "-DateTimeOriginal=2019:07:15 10:00:00", str(party))
    _exiftool("-XMP-dc:Subject=Beach", str(beach))
    worker_spy.reset()
    summary = _summary(run_cli("index", library, "--format", "json"))
    assert summary["changed"] == summary["metadata_only"] == 2 and summary["failed"] == 0
    assert sorted(worker_spy.analysed) == sorted([str(party), str(beach)])
    assert worker_spy.detected == [] and worker_spy.predicted == [], "pixels did not change: no model runs"
    beach_after = _rows(db_location)[str(beach)]
    assert beach_after.size == beach.stat().st_size and beach_after.face_count == beach_before.face_count >= 1
    after = _rows(db_location)[str(party)]
    assert after.taken_at == datetime(2019, 7, 15, 10, 0, 0)
    assert (after.size, after.mtime_ns) == (party.stat().st_size, party.stat().st_mtime_ns)
    assert [(f.x, f.y, f.w, f.h, f.emotion) for f in after.faces] == \
        [(f.x, f.y, f.w, f.h, f.emotion) for f in before.faces]
    assert after.content_hash == before.content_hash and after.model_version == before.model_version


def test_new_orientation_or_pixels_rerun_the_models(run_cli, library, db_location):
    party, rain = library / "2019" / "party.jpg", library / "2019" / "rain.jpg"
    _summary(run_cli("index", library, "--format", "json"))
    before = _rows(db_location)
    _exiftool("-Orientation#=6", str(party))  # turned by metadata: boxes move
    data = bytearray(rain.read_bytes())
    data[-200] ^= 0xFF  # one byte of the scan: other pixels
    rain.write_bytes(bytes(data))
    summary = _summary(run_cli("index", library, "--format", "json"))
    assert summary["changed"] == 2 and summary["metadata_only"] == 0
    after = _rows(db_location)
    assert (after[str(party)].width, after[str(party)].height) == (1800, 2400)  # analysed upright again
    assert after[str(rain)].content_hash != before[str(rain)].content_hash
