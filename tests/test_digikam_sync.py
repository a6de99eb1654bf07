"""`moodindex digikam sync` on a database built with digiKam's own schema, triggers included."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixtures.tagkit import FIXTURES, add_photo

from indexer.cli import main
from indexer.db.session import session_scope
from indexer.export import digikam

SCHEMA = FIXTURES / "digikam_core_schema.sql"
HOSTILE = "it's $(id) `x`.jpg"


def q(db: Path, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


def tag_id(db: Path, path: str) -> int | None:
    pid = 0
    for name in path.split("/"):
        rows = q(db, "SELECT id FROM Tags WHERE pid = ? AND name = ?", pid, name)
        if not rows:
            return None
        pid = rows[0][0]
    return pid


def image_tags(db: Path, name: str) -> set[str]:
    """Full tag paths on an image, built from Tags the way digiKam's TagsCache does."""
    out = set()
    for (tid,) in q(db, "SELECT tagid FROM ImageTags JOIN Images ON Images.id = imageid WHERE Images.name = ?", name):
        parts, cur = [], tid
        while cur:
            pid, tname = q(db, "SELECT pid, name FROM Tags WHERE id = ?", cur)[0]
            parts.insert(0, tname)
            cur = pid
        out.add("/".join(parts))
    return out


@pytest.fixture()
def library(tmp_path: Path, engine):  # noqa: ANN001, ANN201
    """Photos on disk, our index rows for them, and a digiKam DB that knows most of them."""
    root = tmp_path / "Pictures"
    (root / "trip").mkdir(parents=True)
    for rel in ("a.jpg", "trip/b.jpg", "trip/c.jpg", "d.jpg", HOSTILE):
        (root / rel).write_bytes(b"\xff\xd8\xff\xd9")
    db = tmp_path / "digikam4.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(SCHEMA.read_text())
        conn.execute("INSERT INTO AlbumRoots (id, label, status, type, identifier, specificPath) VALUES "
                     "(1, 'Pictures', 0, 1, ?, '/')", (f"volumeid:?path={root}",))
        conn.execute("INSERT INTO Albums (id, albumRoot, relativePath) VALUES (1, 1, '/'), (2, 1, '/trip')")
        conn.executemany("INSERT INTO Images (id, album, name, status, category) VALUES (?, ?, ?, 1, 1)",
                         [(1, 1, "a.jpg"), (2, 2, "b.jpg"), (3, 2, "c.jpg"), (4, 1, HOSTILE)])
        # the user's own tags, one of them spelled like ours
        conn.execute("INSERT INTO Tags (pid, name) VALUES (0, 'places')")
        conn.execute("INSERT INTO Tags (pid, name) SELECT id, 'beach' FROM Tags WHERE name = 'places'")
        conn.execute("INSERT INTO Tags (pid, name) VALUES (0, 'Emotion')")
        conn.execute("INSERT INTO Tags (pid, name) SELECT id, 'Happy' FROM Tags WHERE name = 'Emotion'")
        conn.execute("INSERT INTO ImageTags SELECT 1, id FROM Tags WHERE name = 'beach'")
        conn.execute("INSERT INTO ImageTags SELECT 2, id FROM Tags WHERE name = 'Happy'")
    with session_scope(engine) as s:
        add_photo(s, root / "a.jpg", root, [("happy", 0.9), ("sad", 0.7), ("fear", 0.3)])
        add_photo(s, root / "trip" / "b.jpg", root, [("happy", 0.8)])
        add_photo(s, root / "d.jpg", root, [("fear", 0.95)])  # not in digiKam
        add_photo(s, root / HOSTILE, root, [("surprise", 0.6)])
    return {"root": root, "db": db, "engine": engine}


def photos(engine):  # noqa: ANN001, ANN201
    from indexer.export.selection import photos_to_untag

    with session_scope(engine) as s:
        rows = photos_to_untag(s)
        for p in rows:
            _ = list(p.faces)
        s.expunge_all()
    return rows


def no_digikam() -> list[int]:
    return []


def test_sync_adds_our_tags_and_keeps_the_users(library: dict) -> None:
    db = library["db"]
    before = q(db, "SELECT * FROM ImageTags ORDER BY 1, 2")
    report = digikam.sync(db, photos(library["engine"]), running=no_digikam)
    assert (report.matched, report.not_in_digikam, report.added, report.removed) == (3, 1, 3, 0)
    assert image_tags(db, "a.jpg") == {"places/beach", "Emotion/Happy", "Emotion/Sad"}
    assert image_tags(db, "b.jpg") == {"Emotion/Happy"}  # already the user's: left alone, not claimed
    assert image_tags(db, "c.jpg") == set()
    assert image_tags(db, HOSTILE) == {"Emotion/Surprise"}
    # digiKam's trigger kept the closure table: every new tag under Emotion and under the top level
    emotion = tag_id(db, "Emotion")
    for label in ("Sad", "Surprise"):
        tid = tag_id(db, f"Emotion/{label}")
        assert set(q(db, "SELECT pid FROM TagsTree WHERE id = ?", tid)) == {(emotion,), (0,)}
    # the markers say exactly which assignments are ours
    assert len(q(db, "SELECT * FROM ImageTagProperties WHERE property = 'moodindex'")) == 3
    # a consistent backup of the state before
    assert report.backup and report.backup.exists() and oct(report.backup.stat().st_mode & 0o777) == "0o600"
    assert q(report.backup, "SELECT * FROM ImageTags ORDER BY 1, 2") == before


def test_idempotent_model_change_and_remove(library: dict) -> None:
    db, engine = library["db"], library["engine"]
    digikam.sync(db, photos(engine), running=no_digikam)
    again = digikam.sync(db, photos(engine), running=no_digikam)
    assert (again.added, again.removed) == (0, 0)
    # a new model: a.jpg is now angry only
    from indexer.db.models import Face, Photo

    with session_scope(engine) as s:
        a = s.query(Photo).filter(Photo.path == str(library["root"] / "a.jpg")).one()
        for f in a.faces:
            s.delete(f)
        s.flush()
        s.add(Face(photo_id=a.id, idx=0, x=0, y=0, w=9, h=9, confidence=0.9, emotion="angry", score=0.8,
                   angry=0.8, disgust=0.04, fear=0.04, happy=0.03, sad=0.03, surprise=0.03, neutral=0.03))
    changed = digikam.sync(db, photos(engine), running=no_digikam)
    assert (changed.added, changed.removed) == (1, 2)
    assert image_tags(db, "a.jpg") == {"places/beach", "Emotion/Angry"}
    removed = digikam.sync(db, photos(engine), remove_only=True, running=no_digikam)
    assert removed.removed == 2
    assert image_tags(db, "a.jpg") == {"places/beach"}
    assert image_tags(db, "b.jpg") == {"Emotion/Happy"}  # the user's own stays
    assert q(db, "SELECT COUNT(*) FROM ImageTagProperties WHERE property = 'moodindex'") == [(0,)]


def test_dry_run_changes_nothing(library: dict) -> None:
    db = library["db"]
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    report = digikam.sync(db, photos(library["engine"]), dry_run=True, running=no_digikam)
    assert report.added == 3 and report.backup is None
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    assert not list(db.parent.glob("*.moodindex-backup-*"))


def test_refuses_while_digikam_runs(library: dict, tmp_path: Path) -> None:
    fake = tmp_path / "digikam"  # a process whose name is digikam, found through /proc like the real one
    shutil.copy(shutil.which("sleep"), fake)
    proc = subprocess.Popen([str(fake), "30"])
    try:
        for _ in range(50):
            if proc.pid in digikam.digikam_running():
                break
            time.sleep(0.05)
        digest = hashlib.sha256(library["db"].read_bytes()).hexdigest()
        with pytest.raises(digikam.DigikamError, match="digiKam is running"):
            digikam.sync(library["db"], photos(library["engine"]))
        assert hashlib.sha256(library["db"].read_bytes()).hexdigest() == digest
        assert not list(library["db"].parent.glob("*.moodindex-backup-*"))
    finally:
        proc.kill()
        proc.wait()


def test_not_a_digikam_database(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(digikam.DigikamError, match="not a digiKam database"):
        digikam.sync(other, [], running=no_digikam)
    with pytest.raises(digikam.DigikamError, match="not found"):
        digikam.sync(tmp_path / "missing.db", [], running=no_digikam)


def test_resolve_album_roots(tmp_path: Path) -> None:
    assert digikam.resolve_album_root(f"volumeid:?path={tmp_path}", "/") == str(tmp_path)
    assert digikam.resolve_album_root(f"networkshareid:?mountpath={tmp_path}", None) == str(tmp_path)
    assert digikam.resolve_album_root("volumeid:?uuid=00000000-dead-beef", str(tmp_path)) == str(tmp_path)
    assert digikam.resolve_album_root("volumeid:?uuid=00000000-dead-beef", "/no/such/dir") is None
    assert digikam.resolve_album_root("weird", "/x") is None


def test_default_database_from_digikamrc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert digikam.default_database(tmp_path) == tmp_path / "Pictures" / "digikam4.db"
    (tmp_path / "digikamrc").write_text("[Database Settings]\nDatabase Name=/srv/photos/\nDatabase Type=QSQLITE\n")
    assert digikam.default_database(tmp_path) == Path("/srv/photos/digikam4.db")


def test_cli_sync(library: dict, db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digikam, "digikam_running", no_digikam)
    res = CliRunner().invoke(main, ["--db", str(db_path), "digikam", "sync", "--digikam-db", str(library["db"])])
    assert res.exit_code == 0, res.output
    assert "3 photos matched" in res.output and "added 3 tag assignments" in res.output
    assert image_tags(library["db"], "a.jpg") == {"places/beach", "Emotion/Happy", "Emotion/Sad"}
    res = CliRunner().invoke(main, ["--db", str(db_path), "digikam", "sync", "--digikam-db",
                                    str(library["root"] / "nope.db")])
    assert res.exit_code == 1 and "not found" in res.output


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_corrupt_database_is_refused_and_left_as_it_is(library: dict) -> None:
    """600 bytes overwritten at offset 8192 (the hostile test's damage): sync used to write into it."""
    db = library["db"]
    with sqlite3.connect(db) as conn:  # a few more pages, so that offset 8192 is inside a b-tree
        conn.executemany("INSERT INTO Images (album, name, status, category) VALUES (1, ?, 1, 1)",
                         [(f"filler{i:05d}.jpg",) for i in range(3000)])
    with db.open("r+b") as f:
        f.seek(8192)
        f.write(bytes(range(256)) * 2 + b"\xa5" * 88)
    digest = _digest(db)
    with pytest.raises(digikam.DigikamError, match="damaged.*nothing was written"):
        digikam.sync(db, photos(library["engine"]), running=no_digikam)
    assert _digest(db) == digest
    assert not list(db.parent.glob("*.moodindex-backup-*"))


def test_nothing_to_change_creates_nothing(library: dict) -> None:
    db = library["db"]
    digest = _digest(db)
    none_match = [p for p in photos(library["engine"]) if p.path.endswith("d.jpg")]  # not in digiKam
    report = digikam.sync(db, none_match, prefix="Mood", running=no_digikam)
    assert (report.matched, report.added, report.removed, report.backup) == (0, 0, 0, None)
    assert tag_id(db, "Mood") is None and not report.created_tags
    assert _digest(db) == digest and not list(db.parent.glob("*.moodindex-backup-*"))


def test_backups_are_rotated(library: dict) -> None:
    db, engine = library["db"], library["engine"]
    foreign = db.parent / f"{db.name}.moodindex-backup-notes.txt"  # not a name we make: never deleted
    foreign.write_text("mine")
    made = []
    for i in range(digikam.BACKUPS_KEPT + 2):
        report = digikam.sync(db, photos(engine), remove_only=i % 2 == 1, running=no_digikam)
        assert report.backup is not None and (report.added or report.removed)
        made.append(report.backup)
    kept = sorted(p for p in db.parent.glob(f"{db.name}.moodindex-backup-*") if p != foreign)
    assert kept == sorted(made[-digikam.BACKUPS_KEPT:])
    assert foreign.read_text() == "mine"


def test_a_name_that_is_not_utf8_is_reported_as_one_digikam_cannot_scan(library: dict) -> None:
    """digiKam (Qt 5 and 6) skips directory entries whose names are not UTF-8: such a photo has
    no row there.  The report says why it was not matched, instead of one more "not in digiKam"."""
    root = library["root"]
    latin1 = root / os.fsdecode(b"caf\xe9.jpg")  # a Latin-1 name from an old Windows archive
    latin1.write_bytes(b"\xff\xd8\xff\xd9")
    with session_scope(library["engine"]) as s:
        add_photo(s, latin1, root, [("happy", 0.9)])
    report = digikam.sync(library["db"], photos(library["engine"]), running=no_digikam)
    assert (report.matched, report.not_in_digikam, report.not_utf8) == (3, 2, 1)  # d.jpg and café
    assert "(2 not in digiKam, 1 of them named in bytes that are not UTF-8, which digiKam cannot scan)" in \
        report.line()
    assert digikam.name_digikam_can_scan(str(root / "d.jpg")) and digikam.name_digikam_can_scan(str(root / "é.jpg"))
    assert not digikam.name_digikam_can_scan(str(latin1))
