"""The photos and faces tables: every read and write the scan, the watcher and the tag commands do.

Kept here, not in scan.py or the CLI, so that the rules about rows (a deleted photo becomes a
tombstone that a later move can find; a batch of results is stored whole or not at all; a
metadata-only rewrite keeps the faces) live in one place, and a second database has one module
to satisfy."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Engine, Row, delete, func, or_, select, update
from sqlalchemy.orm import Session

from indexer.db.corrections import apply_corrections, record_tag_verdicts
from indexer.db.models import Face, Photo
from indexer.db.people import clear_regions, store_regions
from indexer.db.session import in_transaction
from indexer.domain import CLASSES, STATUS_DELETED, STATUS_ERROR, STATUS_OK, STATUS_RETRY, STATUS_SKIPPED
from indexer.media.fingerprint import fingerprint_file
from indexer.paths import folder_prefix, normalise_path

# what a stored result sets on its row; a metadata-only edit sets only the first group
EXIF_FIELDS = ("size", "mtime_ns", "content_hash", "taken_at", "date_source", "utc_offset_min", "camera")
RESULT_FIELDS = (*EXIF_FIELDS, "status", "error", "width", "height", "orientation", "detector", "model_version")
KNOWN_COLUMNS = (Photo.id, Photo.path, Photo.size, Photo.mtime_ns, Photo.status, Photo.content_hash,
                 Photo.orientation, Photo.width, Photo.height, Photo.taken_at, Photo.detector,
                 Photo.model_version, Photo.sidecars)
IN_CHUNK = 500  # paths per IN (...): far below SQLite's variable limit


def under(column: Any, folder: str) -> ColumnElement[bool]:
    """SQL condition: `column` is a path strictly below `folder` (an index-friendly range)."""
    base = folder_prefix(folder)
    return (column >= base) & (column < base[:-1] + "0")  # '0' sorts right after '/'


def has_live_photos_under(engine: Engine, folder: str) -> bool:
    """Does the index hold photos below `folder`?  (Tombstones alone do not count.)"""
    with Session(engine) as s:
        return s.scalar(select(Photo.id).where(under(Photo.path, folder), Photo.status != STATUS_DELETED)
                        .limit(1)) is not None


def known_rows(s: Session, paths: Iterable[str], folders: Iterable[str]) -> dict[str, Row]:
    """The rows (KNOWN_COLUMNS) below `folders`, plus those of `paths` outside them, by path."""
    known: dict[str, Row] = {}
    for folder in folders:
        for r in s.execute(select(*KNOWN_COLUMNS).where(under(Photo.path, folder))):
            known[r.path] = r
    loose = [p for p in paths if p not in known]
    for i in range(0, len(loose), IN_CHUNK):
        for r in s.execute(select(*KNOWN_COLUMNS).where(Photo.path.in_(loose[i:i + IN_CHUNK]))):
            known[r.path] = r
    return known


def move_candidates(s: Session, vanished: Sequence[Row]) -> dict[int, list[Row]]:
    """Vanished photos and tombstones that still hold results, by file size."""
    by_size: dict[int, list[Row]] = {}
    tombstones = s.execute(select(Photo.id, Photo.path, Photo.size, Photo.content_hash)
                           .where(Photo.status == STATUS_DELETED)).all()
    for r in [v for v in vanished if v.status == STATUS_OK] + list(tombstones):
        if r.content_hash:
            by_size.setdefault(r.size, []).append(r)
    return by_size


def repoint_moved(s: Session, photo_id: int, path: str, root: str, mtime_ns: int) -> str | None:
    """A vanished photo (or tombstone) found again at `path`: re-point its row; returns the old path,
    or None when another writer removed the row meanwhile (then the file is analysed as new)."""
    row = s.get(Photo, photo_id, with_for_update=True)
    if row is None:
        return None
    s.execute(delete(Photo).where(Photo.path == path, Photo.id != photo_id))
    old = row.path
    row.path, row.root, row.mtime_ns, row.status = path, root, mtime_ns, STATUS_OK
    return old


def bury(s: Session, rows: Sequence[Photo]) -> int:
    """Photos gone from disk: analysed ones become tombstones (so a later move back finds them),
    the rest are deleted."""
    now = datetime.now()
    for row in rows:
        if row.status == STATUS_OK:
            row.status, row.indexed_at = STATUS_DELETED, now
        else:
            s.delete(row)
    return len(rows)


def bury_vanished(s: Session, vanished: Sequence[Row]) -> int:
    """Bury the rows a scan found gone, each only if it is still at the path it vanished from:
    another writer may have re-pointed it meanwhile to where the photo moved (two `index` runs
    seeing one move), and that row must keep its results."""
    if not vanished:
        return 0
    gone_from = {v.id: v.path for v in vanished}
    rows = s.scalars(select(Photo).where(Photo.id.in_(gone_from)).order_by(Photo.id).with_for_update()).all()
    return bury(s, [r for r in rows if r.path == gone_from[r.id]])


def forget_tombstones(s: Session, older_than: datetime) -> None:
    s.execute(delete(Photo).where(Photo.status == STATUS_DELETED, Photo.indexed_at < older_than))


def move_path(engine: Engine, src: str, dest: str, dest_root: str) -> int:
    """A file or folder moved within the roots: re-point its rows; returns how many."""
    def work(s: Session) -> int:
        row = s.scalar(select(Photo).where(Photo.path == src).with_for_update())
        if row is not None:
            s.execute(delete(Photo).where(Photo.path == dest))
            row.path, row.root = dest, dest_root
            return 1
        rows = s.scalars(select(Photo).where(under(Photo.path, src)).order_by(Photo.path).with_for_update()).all()
        for r in rows:
            r.path, r.root = dest + r.path[len(src):], dest_root
        return len(rows)

    return in_transaction(engine, work)


def remove_path(engine: Engine, path: str) -> int:
    """A file or folder deleted: bury its photos; returns how many."""
    return in_transaction(engine, lambda s: bury(s, s.scalars(
        select(Photo).where(or_(Photo.path == path, under(Photo.path, path))).order_by(Photo.path)
        .with_for_update()).all()))


def rows_under(engine: Engine, path: str) -> int:
    """How many rows (tombstones included) the index holds for `path` or below it."""
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(Photo)
                        .where(or_(Photo.path == path, under(Photo.path, path)))) or 0


def forget_under(engine: Engine, path: str) -> int:
    """Delete the rows of `path` and everything below it, faces and names with them (`moodindex
    forget`: the one way rows of a folder gone for good leave the index; a missing root never
    deletes them).  The user's corrections stay: they are keyed by content and come back with the
    photo.  Returns how many photos were forgotten."""
    def work(s: Session) -> int:
        return s.execute(delete(Photo).where(or_(Photo.path == path, under(Photo.path, path)))
                         .execution_options(synchronize_session=False)).rowcount or 0

    return in_transaction(engine, work)


def store_results(engine: Engine, results: Sequence[Any], roots: dict[str, str],
                  sidecars: Mapping[str, str | None] | None = None) -> None:
    """One transaction for a batch of `pipeline.PhotoResult`s: every photo whole, or none of them.
    Several writers may store the same photo at once (two `index` runs and a watcher on one server):
    its row is locked while its faces are replaced, so the last writer's faces replace the first's
    instead of adding to them; a row inserted meanwhile by another writer makes the database ask for
    a retry, and the retry updates that row.  Photos are taken in path order, so two writers lock
    rows in the same order.  `sidecars`: each photo's sidecar signature as the scan saw it before
    the photo was read (media.tagstate.sidecar_signature)."""
    now = datetime.now()
    in_transaction(engine, lambda s: _store(s, sorted(results, key=lambda r: r.path), roots, now, sidecars or {}))


def _store(s: Session, results: Sequence[Any], roots: dict[str, str], now: datetime,
           sidecars: Mapping[str, str | None]) -> None:
    """Store the batch in the open transaction `s` (re-run whole when the database asks)."""
    for res in results:
        row = s.scalar(select(Photo).where(Photo.path == res.path).with_for_update())
        if res.pixels_unchanged:
            if row is None:  # removed meanwhile (the watcher): the next scan sees a new file
                continue
            for name in EXIF_FIELDS:
                setattr(row, name, getattr(res, name))
            row.warnings = stored_warnings(res.warnings)  # what this read of the metadata said
            row.indexed_at = now
            if res.path in sidecars:
                row.sidecars = sidecars[res.path]
            record_tag_verdicts(s, row, res.tags)  # tags changed in digiKam or darktable: corrections
            apply_corrections(s, row)
            store_regions(s, row, res.regions)  # names added by a metadata edit: no model ran
            continue
        if row is None:
            row = Photo(path=res.path, root=roots[res.path])
            s.add(row)
        else:
            clear_regions(s, row)
            s.execute(delete(Face).where(Face.photo_id == row.id))
            row.faces = []
        for name in RESULT_FIELDS:
            setattr(row, name, getattr(res, name))
        row.warnings = stored_warnings(res.warnings)
        row.indexed_at = now
        if res.path in sidecars:
            row.sidecars = sidecars[res.path]
        row.face_count = len(res.faces)
        for i, f in enumerate(res.faces):
            x, y, w, h = f.box
            row.faces.append(Face(idx=i, x=x, y=y, w=w, h=h, confidence=f.confidence, emotion=f.emotion,
                                  score=f.score, **dict(zip(CLASSES, f.scores, strict=True))))
        s.flush()
        record_tag_verdicts(s, row, res.tags)
        apply_corrections(s, row)  # the user's word over the model's, before names are matched
        store_regions(s, row, res.regions)


def stored_warnings(warnings: Sequence[str]) -> list[str] | None:
    """A result's warnings as the row keeps them: a list of lines, or NULL when there were none (so
    "which photos have warnings" is an IS NOT NULL)."""
    return list(warnings) or None


def record_metadata_rewrite(engine: Engine, path: str | Path) -> bool:
    """We just wrote tags into this photo's own metadata: its pixels are the same, so record its new
    size, mtime and hash instead of letting the next scan re-run the models on it.  False when the
    file cannot be read (nothing is recorded)."""
    path = normalise_path(path)
    try:
        st, digest = os.stat(path), fingerprint_file(path)
    except OSError:
        return False
    in_transaction(engine, lambda s: s.execute(update(Photo).where(Photo.path == path)
                                               .values(size=st.st_size, mtime_ns=st.st_mtime_ns,
                                                       content_hash=digest)))
    return True


def record_sidecar_write(engine: Engine, path: str | Path, before: str | None) -> bool:
    """We just wrote this photo's sidecar: record its sidecars' new signature, so the next scan does
    not read them again, but only when the index had read them as they were just before our write
    (`before`); a sidecar someone edited since the last `index` is left for that scan to read.
    True when recorded."""
    from indexer.media.tagstate import sidecar_signature

    path = normalise_path(path)
    after = sidecar_signature(path)
    was = Photo.sidecars.is_(None) if before is None else Photo.sidecars == before
    return in_transaction(engine, lambda s: s.execute(update(Photo).where(Photo.path == path, was)
                                                      .values(sidecars=after)).rowcount) == 1


def analysed_by(engine: Engine) -> dict[tuple[str | None, str | None], int]:
    """Photos with results, by the (detector, model_version) that produced them: a handful of
    pairs, however large the library, so the caller can decide which are out of date."""
    with Session(engine) as s:
        rows = s.execute(select(Photo.detector, Photo.model_version, func.count())
                         .where(Photo.status == STATUS_OK).group_by(Photo.detector, Photo.model_version))
        return {(d, m): n for d, m, n in rows}


def counts(engine: Engine) -> dict[str, int]:
    """Photos, faces and errors in the index (for `status`)."""
    with Session(engine) as s:
        by_status = dict(s.execute(select(Photo.status, func.count()).group_by(Photo.status)).all())
        faces = s.scalar(select(func.count()).select_from(Face).join(Photo).where(Photo.status == STATUS_OK))
        warned = s.scalar(select(func.count()).select_from(Photo)
                          .where(Photo.status == STATUS_OK, Photo.warnings.is_not(None)))
    return {"photos": by_status.get(STATUS_OK, 0), "faces": faces or 0,
            "errors": by_status.get(STATUS_ERROR, 0) + by_status.get(STATUS_RETRY, 0),
            "skipped": by_status.get(STATUS_SKIPPED, 0), "warned": warned or 0}
