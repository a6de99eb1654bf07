"""`moodindex db copy --to LOCATION`: an existing SQLite index moved into PostgreSQL (and, where no
server is there, into another SQLite file): every table, the schema migrated on the target first,
a non-empty target refused unless --replace, the counts checked, the password never shown."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from indexer.cli import main
from indexer.db.copy import tables
from indexer.db.location import display, is_server
from indexer.db.models import Correction, Person, Photo, PhotoPerson, Run
from indexer.db.session import open_db, session_scope
from indexer.query import parse, search
from tests.factories import add_photo

PHOTOS = 23  # more than a few --batch 5 batches, not a multiple of 5


@pytest.fixture()
def source(tmp_path: Path) -> Path:
    """A SQLite index with rows in every table: photos (ok, error, undated), faces, a run, people
    named on faces and on no face, and corrections (one a 'not a face')."""
    path = tmp_path / "source.db"
    engine = open_db(path)
    with session_scope(engine) as s:
        for i in range(PHOTOS):
            faces = [("happy", 0.5 + i / 100), ("sad", 0.4)] if i % 3 else []
            add_photo(s, f"/photos/2019/p{i:02d}.jpg", datetime(2019, 1 + i % 12, 1, 12, i) if i % 7 else None,
                      faces, status="error" if i == 5 else "ok")
        photo = s.scalars(select(Photo).where(Photo.face_count > 0).order_by(Photo.id)).first()
        photo.content_hash = "ab" * 32
        anna, ben = Person(name="Anna Lind", key="anna lind"), Person(name="Ben", key="ben")
        s.add_all([anna, ben])
        s.flush()
        s.add_all([PhotoPerson(photo_id=photo.id, person_id=anna.id, face_id=photo.faces[0].id, source="mwg",
                               x=1, y=2, w=3, h=4),
                   PhotoPerson(photo_id=photo.id, person_id=ben.id, face_id=None, source="digikam",
                               x=5, y=6, w=7, h=8),
                   Correction(content_hash="ab" * 32, x=20, y=300, w=200, h=200, emotion="surprise",
                              not_a_face=False, created_at=datetime(2026, 3, 1, 10)),
                   Correction(content_hash="ab" * 32, x=240, y=300, w=200, h=200, emotion=None,
                              not_a_face=True, created_at=datetime(2026, 3, 1, 11)),
                   Run(kind="index", started_at=datetime(2026, 1, 1), finished_at=datetime(2026, 1, 1, 0, 5),
                       roots='["/photos"]', summary='{"new": 23}')])
        photo.faces[0].corrected = True
    engine.dispose()
    return path


@pytest.fixture()
def target(db_location: Path | str) -> Path | str:
    """The database copied into: a fresh schema on the PostgreSQL test server, or a SQLite file."""
    return db_location


def copy(source: Path, to: Path | str, *args: str):  # noqa: ANN201
    return CliRunner().invoke(main, ["--db", str(source), "db", "copy", "--to", str(to), *args])


def rows(location: Path | str) -> dict[str, list[tuple]]:
    engine = open_db(location)
    try:
        with engine.connect() as conn:
            return {t.name: [tuple(r) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
                    for t in tables()}
    finally:
        engine.dispose()


def test_every_table_is_copied_and_the_counts_checked(source: Path, target: Path | str) -> None:
    before = rows(source)
    assert all(before.values()), "the source must have rows in every table"
    result = copy(source, target, "--batch", "5")
    assert result.exit_code == 0, result.output
    assert rows(target) == before  # every row, every column, the same ids
    assert rows(source) == before  # the source is only read
    for name, table_rows in before.items():
        assert f"  {name:14} {len(table_rows):12,} {len(table_rows):12,}" in result.stdout
    assert f"counts checked: all {len(before)} tables match" in result.stdout

    engine = open_db(target)  # the copy is a working index: queries answer as on the source...
    try:
        with Session(engine) as s:
            copied = [m.photo.path for m in search(s, parse("happy", datetime(2026, 11, 30).date()))]
        src_engine = open_db(source)
        with Session(src_engine) as s:
            assert copied == [m.photo.path for m in search(s, parse("happy", datetime(2026, 11, 30).date()))]
        src_engine.dispose()
        # ...and the next photo written gets a fresh id (PostgreSQL's sequences moved past the copied ids)
        with session_scope(engine) as s:
            new = add_photo(s, "/photos/2020/new.jpg", faces=[("fear", 0.8)])
            assert new.id == PHOTOS + 1
            s.add(Person(name="Cleo", key="cleo"))
            s.add(Run(kind="watch", started_at=datetime(2026, 2, 1), roots="[]"))
    finally:
        engine.dispose()


def test_a_target_holding_an_index_is_refused_unless_replaced(source: Path, target: Path | str) -> None:
    assert copy(source, target).exit_code == 0
    engine = open_db(target)
    with session_scope(engine) as s:
        add_photo(s, "/elsewhere/only-in-target.jpg")
    engine.dispose()
    held = rows(target)

    refused = copy(source, target)
    assert refused.exit_code == 1
    assert "already holds an index (" in refused.output and "photos 24," in refused.output
    assert "--replace" in refused.output
    assert rows(target) == held  # untouched

    replaced = copy(source, target, "--replace", "--format", "json")
    assert replaced.exit_code == 0, replaced.output
    report = json.loads(replaced.stdout)
    assert report["tables"]["photos"] == {"source": PHOTOS, "target": PHOTOS}
    assert rows(target) == rows(source)


def test_the_password_is_never_shown(source: Path, target: Path | str) -> None:
    if not is_server(target):
        pytest.skip("a SQLite target has no password")
    from sqlalchemy.engine import make_url

    password = make_url(target).password
    for result in (copy(source, target), copy(source, target)):  # a copy, then a refusal
        assert password not in result.output
        assert display(target) in result.output and ":***@" in result.output


def test_a_copy_onto_itself_or_from_nothing_is_refused(source: Path, tmp_path: Path) -> None:
    same = copy(source, tmp_path / "." / "source.db")
    assert same.exit_code == 1 and "is the index being copied" in same.output
    missing = copy(tmp_path / "none.db", tmp_path / "other.db")
    assert missing.exit_code == 1 and "no index at" in missing.output
    assert not (tmp_path / "none.db").exists()


def test_a_count_that_does_not_check_out_writes_nothing(source: Path, target: Path | str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch lost on the way (simulated: the last face batch is dropped) is caught by the counts
    and the whole copy rolled back."""
    from indexer.db import copy as copy_mod

    real = copy_mod._batches

    def lossy(conn, table, size):  # noqa: ANN001, ANN202
        batches = list(real(conn, table, size))
        return batches[:-1] if table.name == "faces" else batches

    monkeypatch.setattr(copy_mod, "_batches", lossy)
    result = copy(source, target, "--batch", "5")
    assert result.exit_code == 1
    assert "did not check out, nothing was written: faces" in result.output
    assert not any(rows(target).values())

