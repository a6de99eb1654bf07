"""Several writers on one PostgreSQL index, as real processes: two `moodindex index` runs and a
`watch` on the same folder at once.  No photo twice, no face twice (the last writer's faces replace
the first's), moves still found by content hash, and no serialization, deadlock or duplicate-key
error reaching the user: the database's requests to retry are retried."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from indexer.db.models import Face, Photo
from indexer.db.session import open_db
from indexer.domain import STATUS_DELETED, STATUS_OK
from tests.photo_factory import compose, dev_faces, write_photo

PHOTOS = 16
TIMEOUT = 300
RETRY_WORDS = ("could not serialize", "deadlock", "duplicate key", "UniqueViolation", "internal error")


@pytest.fixture()
def folder(tmp_path: Path, dev_faces_dir: Path) -> Path:
    root = tmp_path / "Shared"
    faces = dev_faces(dev_faces_dir, None, PHOTOS)
    for i in range(PHOTOS):
        img, _ = compose([faces[i], faces[(i + 1) % PHOTOS]], size=(900, 600), face_px=220, seed=i)
        write_photo(root / f"d{i % 4}" / f"p{i:02d}.jpg", img)
    return root


def _start(url: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "indexer", "--db", url, *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _index_twice_at_once(url: str, root: Path, *extra: str) -> list[tuple[int, str]]:
    procs = [_start(url, "index", str(root), "-j", "1", "--detector", "haar", *extra) for _ in range(2)]
    out = []
    for p in procs:
        _, err = p.communicate(timeout=TIMEOUT)
        out.append((p.returncode, err))
    return out


def _rows(url: str) -> tuple[list[Photo], dict[int, list[int]]]:
    engine = open_db(url)
    try:
        with Session(engine) as s:
            photos = list(s.scalars(select(Photo)))
            faces: dict[int, list[int]] = {}
            for photo_id, idx in s.execute(select(Face.photo_id, Face.idx)):
                faces.setdefault(photo_id, []).append(idx)
            return photos, faces
    finally:
        engine.dispose()


def _assert_clean(results: list[tuple[int, str]]) -> None:
    for code, err in results:
        assert code == 0, err
        assert not any(word in err for word in RETRY_WORDS), err


def test_two_index_runs_and_a_watcher_on_one_server(pg_url: str, folder: Path) -> None:
    watcher = _start(pg_url, "watch", str(folder), "--detector", "haar", "-j", "1", "--settle", "0.3")
    try:
        results = _index_twice_at_once(pg_url, folder)
    finally:
        watcher.send_signal(signal.SIGTERM)
        _, watch_err = watcher.communicate(timeout=TIMEOUT)
    _assert_clean([*results, (watcher.returncode, watch_err)])

    photos, faces = _rows(pg_url)
    files = sorted(str(p) for p in folder.rglob("*.jpg"))
    assert sorted(p.path for p in photos) == files  # each photo once
    for p in photos:
        assert p.status == STATUS_OK, (p.path, p.error)
        # each face once: a second writer's faces replaced the first's, never added to them
        assert sorted(faces.get(p.id, [])) == list(range(p.face_count)), p.path
    assert sum(p.face_count for p in photos) > 0

    # a move seen by two runs at once: the row keeps its id (its results), and no one re-analyses it
    moved = next(p for p in photos if p.face_count)
    dest = folder / "moved" / Path(moved.path).name
    dest.parent.mkdir()
    shutil.move(moved.path, dest)
    _assert_clean(_index_twice_at_once(pg_url, folder, "--format", "json"))
    after, after_faces = _rows(pg_url)
    live = {p.path: p for p in after if p.status != STATUS_DELETED}
    assert str(dest) in live and moved.path not in live
    assert live[str(dest)].id == moved.id and len(after_faces[moved.id]) == moved.face_count
    assert len(after) == len(photos)


def test_a_retry_the_database_asks_for_is_retried(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two transactions updating the same rows in opposite orders: PostgreSQL kills one with a
    deadlock (40P01); in_transaction re-runs it and both changes land."""
    import threading

    from indexer.db import session as session_mod

    engine = open_db(pg_url)
    try:
        with session_mod.session_scope(engine) as s:
            s.add_all([Photo(path=p, root="/r", size=1, mtime_ns=1, status=STATUS_OK, face_count=0,
                             indexed_at=func.now()) for p in ("/r/a", "/r/b")])
        barrier = threading.Barrier(2, timeout=30)
        attempts: list[str] = []
        errors: list[BaseException] = []

        def writer(first: str, second: str, size: int) -> None:
            def work(s: Session) -> None:
                attempts.append(first)
                s.execute(Photo.__table__.update().where(Photo.path == first).values(size=size))
                if len(attempts) <= 2:
                    barrier.wait()  # both hold their first row before taking the second
                s.execute(Photo.__table__.update().where(Photo.path == second).values(size=size))
            try:
                session_mod.in_transaction(engine, work)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=("/r/a", "/r/b", 2)),
                   threading.Thread(target=writer, args=("/r/b", "/r/a", 3))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert len(attempts) == 3  # one of the two was re-run once
        with Session(engine) as s:
            sizes = set(s.scalars(select(Photo.size)))
        assert len(sizes) == 1 and sizes <= {2, 3}  # one transaction's changes, whole
    finally:
        engine.dispose()


def _result(path: str, faces: int, seed: int):  # noqa: ANN202
    from indexer.pipeline import FaceResult, PhotoResult

    scores = tuple(1 / 7 for _ in range(7))
    return PhotoResult(path=path, size=100 + seed, mtime_ns=seed, status=STATUS_OK, content_hash=f"{seed:064x}",
                       faces=tuple(FaceResult((10 * i, 10, 8, 8), 0.9, scores) for i in range(faces)))


@pytest.mark.parametrize("exists_before", [False, True], ids=["new photo", "known photo"])
def test_one_photo_stored_by_two_writers_at_once(pg_url: str, monkeypatch: pytest.MonkeyPatch,
                                                 exists_before: bool) -> None:
    """Both writers hold their transaction open at the same moment (a barrier) before committing.
    A new photo: the second INSERT meets the first's unique key, and is retried as an update.  A known
    photo: its row is locked, so the second writer waits and then replaces the first's faces instead
    of adding its own to them."""
    import threading

    from indexer.db import photos as repo

    engine = open_db(pg_url)
    path = "/lib/shared.jpg"
    if exists_before:
        repo.store_results(engine, [_result(path, 0, 0)], {path: "/lib"})  # no faces yet: nothing to lock
    barrier = threading.Barrier(2, timeout=3)
    original = repo._store
    waited: set[int] = set()

    def store_then_wait(s, results, roots, now, *rest):  # noqa: ANN001, ANN002, ANN202
        original(s, results, roots, now, *rest)
        if threading.get_ident() not in waited:  # the first attempt of each writer only
            waited.add(threading.get_ident())
            try:
                barrier.wait()
            except threading.BrokenBarrierError:  # the other writer waits for our row lock: go on
                pass

    monkeypatch.setattr(repo, "_store", store_then_wait)
    errors: list[BaseException] = []

    def writer(faces: int) -> None:
        try:
            repo.store_results(engine, [_result(path, faces, faces)], {path: "/lib"})
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in (2, 3)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        with Session(engine) as s:
            photos = s.scalars(select(Photo).where(Photo.path == path)).all()
            assert len(photos) == 1
            idx = sorted(s.scalars(select(Face.idx).where(Face.photo_id == photos[0].id)))
        assert photos[0].face_count in (2, 3) and idx == list(range(photos[0].face_count))
    finally:
        engine.dispose()
