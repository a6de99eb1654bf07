"""Corrections: stored apart from model output, applied everywhere, and outliving moves, renames and
`index --force`."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from indexer.db.session import open_db, session_scope
from tests.factories import add_photo
from tests.photo_factory import compose, dev_faces, write_photo


def _json(run_cli, *args):
    res = run_cli(*args)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.fixture()
def lib(db_location: Path | str, tmp_path: Path) -> Path:
    """two.jpg: a sad face and a neutral one; one.jpg: one happy face."""
    folder = tmp_path / "lib"
    folder.mkdir()
    engine = open_db(db_location)
    with session_scope(engine) as s:
        for name, faces in (("two.jpg", [("sad", 0.9), ("neutral", 0.6)]), ("one.jpg", [("happy", 0.8)])):
            (folder / name).write_bytes(b"x")
            photo = add_photo(s, str(folder / name), datetime(2020, 1, 1), faces)
            photo.content_hash = name * 4
    engine.dispose()
    return folder


def test_a_corrected_face_wins_in_queries_and_show(run_cli, lib):
    assert [Path(r["path"]).name for r in _json(run_cli, "query", "sad", "--format", "json")] == ["two.jpg"]
    res = run_cli("correct", lib / "two.jpg", "angry", "--face", "0")
    assert res.exit_code == 0 and "face 0 is angry" in res.stdout
    assert _json(run_cli, "query", "sad", "--format", "json") == []
    found = _json(run_cli, "query", "furious", "--format", "json")
    assert [(Path(r["path"]).name, r["score"]) for r in found] == [("two.jpg", 1.0)]
    shown = _json(run_cli, "show", lib / "two.jpg", "--format", "json")["face_details"]
    assert [(f["emotion"], f["corrected"]) for f in shown] == [("angry", True), ("neutral", False)]
    assert shown[0]["scores"]["sad"] == 0.9  # the model's answer is kept beside the user's
    assert "angry (yours; model: sad 0.90" in run_cli("show", lib / "two.jpg").stdout


def test_several_faces_need_face_n_and_bad_input_is_refused(run_cli, lib):
    res = run_cli("correct", lib / "two.jpg", "happy")
    assert res.exit_code == 2 and "has 2 faces: say which with --face N" in res.stderr
    assert run_cli("correct", lib / "two.jpg", "happy", "--face", "5").exit_code == 2
    assert "not an emotion" in run_cli("correct", lib / "one.jpg", "blurry").stderr
    assert run_cli("correct", lib / "one.jpg").exit_code == 2  # nothing to say
    assert run_cli("correct", lib / "one.jpg", "sad").exit_code == 0  # one face: no --face needed


def test_not_a_face_and_clear(run_cli, lib):
    assert run_cli("correct", lib / "two.jpg", "--face", "1", "--not-a-face").exit_code == 0
    shown = _json(run_cli, "show", lib / "two.jpg", "--format", "json")
    assert shown["faces"] == 1 and len(shown["face_details"]) == 1
    listed = _json(run_cli, "corrections", "--format", "json")
    assert listed[0]["not_a_face"] and listed[0]["paths"] == [str(lib / "two.jpg")]
    assert run_cli("correct", lib / "one.jpg", "sad").exit_code == 0
    res = run_cli("correct", lib / "one.jpg", "--clear")
    assert res.exit_code == 0 and "1 correction cleared" in res.stdout
    assert _json(run_cli, "show", lib / "one.jpg", "--format", "json")["face_details"][0]["emotion"] == "happy"
    res = run_cli("correct", lib / "two.jpg", "--clear")
    assert "returns at the next `moodindex index`" in res.stdout
    assert len(_json(run_cli, "corrections", "--format", "json")) == 0


def test_correction_survives_move_rename_and_force(run_cli, tmp_path, dev_faces_dir, yunet_installed):
    img, _ = compose(dev_faces(dev_faces_dir, "happy", 2), seed=21)
    path = write_photo(tmp_path / "lib" / "a" / "party.jpg", img)
    assert run_cli("index", tmp_path / "lib", "--workers", "1").exit_code == 0
    assert run_cli("correct", path, "disgust", "--face", "1").exit_code == 0
    assert run_cli("correct", path, "--face", "0", "--not-a-face").exit_code == 0
    moved = tmp_path / "lib" / "b" / "renamed party.jpg"
    moved.parent.mkdir()
    shutil.move(path, moved)
    assert run_cli("index", tmp_path / "lib", "--workers", "1").exit_code == 0
    assert run_cli("index", tmp_path / "lib", "--workers", "1", "--force").exit_code == 0
    shown = _json(run_cli, "show", moved, "--format", "json")
    assert shown["faces"] == 1
    assert [(f["emotion"], f["corrected"]) for f in shown["face_details"]] == [("disgust", True)]
    found = _json(run_cli, "query", "disgusted", "--format", "json")
    assert [r["path"] for r in found] == [str(moved)]


def test_tags_follow_the_correction(run_cli, lib, db_location):
    """Tag writers read the faces' emotion and score: a corrected face tags as the user said, even
    below the model's tag threshold, and the model's wrong emotion is no longer tagged."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from indexer.db.models import Photo
    from indexer.export.tags import emotions_for_faces

    assert run_cli("correct", lib / "two.jpg", "surprised", "--face", "1").exit_code == 0
    assert run_cli("correct", lib / "two.jpg", "--face", "0", "--not-a-face").exit_code == 0
    engine = open_db(db_location)
    with Session(engine) as s:
        photo = s.scalar(select(Photo).where(Photo.path == str(lib / "two.jpg")))
        assert emotions_for_faces(photo.faces, 0.6) == ["surprise"]
    engine.dispose()


def test_export_feeds_the_training_script(run_cli, tmp_path, dev_faces_dir, yunet_installed):
    """`corrections export DIR` writes what `train.py --extra DIR` reads (its own loader)."""
    import importlib.util

    img, _ = compose(dev_faces(dev_faces_dir, "happy", 2), seed=22)
    path = write_photo(tmp_path / "lib" / "two.jpg", img)
    assert run_cli("index", tmp_path / "lib", "--workers", "1").exit_code == 0
    assert run_cli("correct", path, "fear", "--face", "0").exit_code == 0
    assert run_cli("correct", path, "--face", "1", "--not-a-face").exit_code == 0  # no class: not exported
    res = run_cli("corrections", "export", tmp_path / "out")
    assert res.exit_code == 0 and "1 corrected faces written" in res.stdout
    spec = importlib.util.spec_from_file_location("train", Path(__file__).parents[1] / "models/training/train.py")
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    faces, labels = train.load_extra(tmp_path / "out")
    assert faces.shape == (1, 48, 48) and labels.tolist() == [2]  # fear, in CLASSES order
    assert faces.std() > 10  # a face, not a blank crop


def test_a_correction_caught_in_a_deadlock_is_retried(run_cli, lib, db_backend, db_location):
    """Several writers on one PostgreSQL server: another transaction holds the face's row and then
    wants the correction row this one deleted.  PostgreSQL breaks the deadlock by failing this one
    (40P01); `correct` runs its transaction again, as every other write does, and succeeds."""
    if db_backend != "postgresql":
        pytest.skip("a deadlock between two writers needs a server")
    import threading
    import time

    from sqlalchemy import select, text

    from indexer.db.models import Correction, Face, Photo

    assert run_cli("correct", lib / "two.jpg", "angry", "--face", "0").exit_code == 0
    engine = open_db(db_location)
    with engine.connect() as conn:
        photo_id = conn.scalar(select(Photo.id).where(Photo.path == str(lib / "two.jpg")))
        face_id = conn.scalar(select(Face.id).where(Face.photo_id == photo_id, Face.idx == 0))
        old_id = conn.scalar(select(Correction.id))
    problems: list[BaseException] = []

    def other_writer() -> None:
        try:
            with engine.begin() as conn:
                conn.execute(text("SET LOCAL deadlock_timeout = '20s'"))  # so `correct` is the one to fail
                conn.execute(text("UPDATE faces SET score = score WHERE id = :id"), {"id": face_id})
                held.set()
                waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                deadline = time.monotonic() + 30
                while conn.scalar(text(waiting)) == 0 and time.monotonic() < deadline:
                    conn.execute(text("SELECT pg_stat_clear_snapshot()"))  # a transaction sees one snapshot
                    time.sleep(0.05)
                conn.execute(text("DELETE FROM corrections WHERE id = :id"), {"id": old_id})
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            problems.append(exc)
            held.set()

    held = threading.Event()
    thread = threading.Thread(target=other_writer)
    thread.start()
    assert held.wait(30)
    res = run_cli("correct", lib / "two.jpg", "happy", "--face", "0")
    thread.join(60)
    engine.dispose()
    assert not problems, problems
    assert res.exit_code == 0, res.output
    assert [(f["emotion"], f["corrected"]) for f in _json(run_cli, "show", lib / "two.jpg", "--format", "json")[
        "face_details"]][0] == ("happy", True)
    assert [c["emotion"] for c in _json(run_cli, "corrections", "--format", "json")] == ["happy"]
