"""Keep the index in step with the photo folders: new, changed, moved, deleted.

Shared by `moodindex index` and `moodindex watch`.  The expensive part (decode, detect,
classify) runs in `pipeline.Analyzer`, in worker processes; everything here is cheap
bookkeeping against the database:

- unchanged (same size and mtime_ns) files are never re-read;
- a changed file whose fingerprint and orientation are the same (someone edited its metadata)
  gets its EXIF fields re-read and keeps its faces: no model runs;
- a file that is new here but has the size and content hash of a photo that vanished
  (or was deleted earlier: tombstones) is a move: its row is re-pointed, no model runs;
- a root that is missing, or empty while the index has photos in it, is treated as
  unmounted: its rows are kept untouched;
- results are committed in small batches, one transaction each, so an interrupted run
  loses at most the photos in flight and the next run resumes.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, delete, func, or_, select, update
from sqlalchemy.orm import Session

from indexer.config import Settings
from indexer.db.models import Face, Photo, Run
from indexer.db.session import session_scope
from indexer.domain import CLASSES, STATUS_DELETED, STATUS_ERROR, STATUS_OK, STATUS_SKIPPED
from indexer.media.fingerprint import KnownPhoto, fingerprint_file
from indexer.paths import folder_prefix, is_under, normalise_path
from indexer.summary import Progress, ProgressFn, ScanSummary
from indexer.walk import WalkProblems, walk_photos
from indexer.worker import analyze_in_worker, init_worker

log = logging.getLogger(__name__)

TOMBSTONE_DAYS = 30
BATCH_SIZE = 32
BATCH_SECONDS = 2.0


def _under(column, prefix: str):  # noqa: ANN001, ANN202
    """SQL condition: column is a path strictly below folder `prefix` (index-friendly range)."""
    base = folder_prefix(prefix)
    return (column >= base) & (column < base[:-1] + "0")  # '0' sorts right after '/'


def root_state(root: str, has_rows: bool) -> str | None:
    """None when usable, else why the root counts as unmounted."""
    if not os.path.isdir(root):
        return "not found (unmounted drive?)"
    try:
        with os.scandir(root) as it:
            empty = next(it, None) is None
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    if empty and has_rows:
        return "empty while the index has photos there (unmounted drive?)"
    return None


def root_problem(engine: Engine, root: str) -> str | None:
    """`root_state` of a normalised root folder, asking the index whether it has photos there."""
    with Session(engine) as s:
        has_rows = s.scalar(select(Photo.id).where(_under(Photo.path, root), Photo.status != STATUS_DELETED)
                            .limit(1)) is not None  # tombstones alone are no reason to think it unmounted
    return root_state(root, has_rows)


class Indexer:
    """Brings rows in line with files.  One per command; `close()` stops worker processes."""

    def __init__(self, engine: Engine, settings: Settings, force: bool = False,
                 stop: threading.Event | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.force = force
        self.stop = stop or threading.Event()
        self._analyzer = None
        self._pool: cf.ProcessPoolExecutor | None = None
        self._versions: tuple[str, str] | None = None

    # -- public API ------------------------------------------------------------------
    def scan(self, roots: Sequence[str | Path], on_progress: ProgressFn | None = None,
             record_idle: bool = True) -> ScanSummary:
        """Full reconcile of each root folder (or single photo file) with the index.  Each scan is
        recorded in `runs`, except, with record_idle=False, one that found nothing to do (the
        watcher's periodic rescans: 288 a day would otherwise fill the table)."""
        started = time.monotonic()
        summary = ScanSummary()
        problems = WalkProblems()
        found: dict[str, tuple[os.stat_result, str]] = {}
        reachable: list[str] = []
        for raw_root in roots:
            root = normalise_path(raw_root)
            if os.path.isfile(root):
                found[root] = (os.stat(root), os.path.dirname(root))
                continue
            why = root_problem(self.engine, root)
            if why:
                log.warning("root %s %s: its photos are kept as they are", root, why)
                summary.unreachable_roots.append(f"{root}: {why}")
                continue
            reachable.append(root)
            for path, st in walk_photos(root, problems):
                found[path] = (st, root)
        summary.problems = problems.items
        self._reconcile(found, reachable, summary, on_progress)
        summary.seconds = time.monotonic() - started
        if record_idle or not summary.idle:
            self._record_run("index", roots, summary)
        return summary

    def index_files(self, paths: Iterable[str | Path], root_of: Callable[[str], str],
                    on_progress: ProgressFn | None = None) -> ScanSummary:
        """(Re)index just these files if they changed: what the watcher calls for events."""
        started = time.monotonic()
        summary = ScanSummary()
        found = {}
        for p in paths:
            path = normalise_path(p)
            try:
                found[path] = (os.stat(path), root_of(path))
            except OSError:
                self.remove(path)
        self._reconcile(found, [], summary, on_progress)
        summary.seconds = time.monotonic() - started
        return summary

    def move(self, src: str | Path, dest: str | Path, dest_root: str) -> int:
        """A file or folder moved within the roots: re-point its rows, run no model."""
        src, dest = normalise_path(src), normalise_path(dest)
        with session_scope(self.engine) as s:
            row = s.scalar(select(Photo).where(Photo.path == src))
            if row is not None:
                s.execute(delete(Photo).where(Photo.path == dest))
                row.path, row.root = dest, dest_root
                return 1
            rows = s.scalars(select(Photo).where(_under(Photo.path, src))).all()
            for r in rows:
                r.path, r.root = dest + r.path[len(src):], dest_root
            return len(rows)

    def remove(self, path: str | Path) -> int:
        """A file or folder deleted: its photos become tombstones (so a later move back finds them)."""
        path = normalise_path(path)
        with session_scope(self.engine) as s:
            rows = s.scalars(select(Photo).where(or_(Photo.path == path, _under(Photo.path, path)))).all()
            return self._bury(s, rows)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    # -- the reconcile ------------------------------------------------------------------
    def _reconcile(self, found: dict[str, tuple[os.stat_result, str]], reachable: list[str],
                   summary: ScanSummary, on_progress: ProgressFn | None) -> None:
        with Session(self.engine) as s:
            known = self._known_rows(s, found, reachable)
        to_process: list[tuple[str, str]] = []
        new_paths: list[str] = []
        edited: dict[str, KnownPhoto] = {}  # changed files whose pixels may be the same
        for path, (st, root) in found.items():
            row = known.get(path)
            if row is None or row.status == STATUS_DELETED:
                new_paths.append(path)
            elif self.force or row.status == STATUS_SKIPPED or (row.size, row.mtime_ns) != (st.st_size, st.st_mtime_ns):
                to_process.append((path, root))
                if not self.force and row.status == STATUS_OK and row.content_hash:
                    edited[path] = KnownPhoto(row.content_hash, row.orientation)
            else:
                summary.unchanged += 1
        vanished = [r for p, r in known.items() if p not in found and r.status != STATUS_DELETED
                    and any(is_under(p, root, strict=True) for root in reachable)]
        with session_scope(self.engine) as s:
            candidates = self._move_candidates(s, vanished)
            for path in new_paths:
                st, root = found[path]
                source = self._match_move(path, st, candidates)
                if source is None:
                    to_process.append((path, root))
                    continue
                s.execute(delete(Photo).where(Photo.path == path, Photo.id != source.id))
                row = s.get(Photo, source.id)
                log.info("moved: %s -> %s", row.path, path)
                row.path, row.root, row.mtime_ns, row.status = path, root, st.st_mtime_ns, STATUS_OK
                summary.moved += 1
                vanished = [v for v in vanished if v.id != source.id]
            gone = s.scalars(select(Photo).where(Photo.id.in_([v.id for v in vanished]))).all() if vanished else []
            summary.deleted += self._bury(s, gone)
            cutoff = datetime.now() - timedelta(days=TOMBSTONE_DAYS)
            s.execute(delete(Photo).where(Photo.status == STATUS_DELETED, Photo.indexed_at < cutoff))
        if to_process:
            self._process(to_process, {p for p, r in known.items() if r.status != STATUS_DELETED}, edited,
                          summary, on_progress)

    @staticmethod
    def _known_rows(s: Session, found: dict, reachable: list[str]) -> dict[str, Photo]:
        cols = (Photo.id, Photo.path, Photo.size, Photo.mtime_ns, Photo.status, Photo.content_hash, Photo.orientation)
        known = {}
        for root in reachable:
            for r in s.execute(select(*cols).where(_under(Photo.path, root))):
                known[r.path] = r
        loose = [p for p in found if p not in known]
        for i in range(0, len(loose), 500):
            for r in s.execute(select(*cols).where(Photo.path.in_(loose[i:i + 500]))):
                known[r.path] = r
        return known

    @staticmethod
    def _move_candidates(s: Session, vanished: list) -> dict[int, list]:
        """Vanished photos and tombstones that still hold results, by file size."""
        by_size: dict[int, list] = {}
        tombstones = s.execute(select(Photo.id, Photo.path, Photo.size, Photo.content_hash)
                               .where(Photo.status == STATUS_DELETED)).all()
        for r in [v for v in vanished if v.status == STATUS_OK] + list(tombstones):
            if r.content_hash:
                by_size.setdefault(r.size, []).append(r)
        return by_size

    @staticmethod
    def _match_move(path: str, st: os.stat_result, candidates: dict[int, list]):  # noqa: ANN205
        same_size = candidates.get(st.st_size)
        if not same_size:
            return None
        try:
            digest = fingerprint_file(path)
        except OSError:
            return None
        for i, cand in enumerate(same_size):
            if cand.content_hash == digest:
                return same_size.pop(i)
        return None

    @staticmethod
    def _bury(s: Session, rows: Sequence[Photo]) -> int:
        now = datetime.now()
        for row in rows:
            if row.status == STATUS_OK:
                row.status, row.indexed_at = STATUS_DELETED, now
            else:
                s.delete(row)
        return len(rows)

    # -- running the pipeline ------------------------------------------------------------
    def _results(self, paths: list[str], known: dict):  # noqa: ANN202
        """Yield PhotoResults as they finish: in-process for one worker or a handful of files.
        `known` holds the index's hash and orientation of changed files (see Analyzer.analyze)."""
        workers = max(1, min(self.settings.workers, len(paths)))
        if self._analyzer is None:  # also checks, here and clearly, that the model and detector load
            from indexer.pipeline import Analyzer

            self._analyzer = Analyzer.from_settings(self.settings)
        if workers == 1 or len(paths) < 4:
            for p in paths:
                if self.stop.is_set():
                    return
                yield self._analyzer.analyze(p, known=known.get(p))
            return
        pending: dict[cf.Future, str] = {}
        queue = iter(paths)
        try:
            while True:
                if self._pool is None:
                    ctx = multiprocessing.get_context("spawn")
                    self._pool = cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker,
                                                        initargs=(self.settings,))
                while len(pending) < workers * 4 and not self.stop.is_set():
                    nxt = next(queue, None)
                    if nxt is None:
                        break
                    pending[self._pool.submit(analyze_in_worker, nxt, known.get(nxt))] = nxt
                if not pending:
                    return
                done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    path = pending.pop(fut)
                    try:
                        yield fut.result()
                    except cf.process.BrokenProcessPool:
                        yield from self._after_crash(path, pending, known)
                        break
        finally:
            for fut in pending:
                fut.cancel()

    def _after_crash(self, path: str, pending: dict[cf.Future, str], known: dict):  # noqa: ANN202
        """A worker died (a decoder crash, the OOM killer): blame the file, not the run.

        Every file in flight is retried once, one at a time in a fresh pool, so only the
        file that really kills a worker is recorded as the culprit."""
        from indexer.pipeline import PhotoResult

        suspects = [path, *pending.values()]
        pending.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = None
        for p in suspects:
            ctx = multiprocessing.get_context("spawn")
            with cf.ProcessPoolExecutor(1, mp_context=ctx, initializer=init_worker,
                                        initargs=(self.settings,)) as solo:
                try:
                    yield solo.submit(analyze_in_worker, p, known.get(p)).result()
                except cf.process.BrokenProcessPool:
                    log.error("%s: the analysing process crashed on this file", p)
                    try:
                        st = os.stat(p)
                        size, mtime = st.st_size, st.st_mtime_ns
                    except OSError:
                        size, mtime = 0, 0
                    yield PhotoResult(p, size, mtime, STATUS_ERROR,
                                      "the decoder or detector crashed on this file (worker process died)")

    def _process(self, items: list[tuple[str, str]], existing: set[str], known: dict, summary: ScanSummary,
                 on_progress: ProgressFn | None) -> None:
        roots = dict(items)
        batch: list = []
        last_flush = time.monotonic()
        done = 0
        try:
            for result in self._results([p for p, _ in items], known):
                batch.append(result)
                done += 1
                if result.status == STATUS_OK:
                    summary.new += result.path not in existing
                    summary.changed += result.path in existing
                    summary.metadata_only += result.pixels_unchanged
                    summary.faces += len(result.faces)
                elif result.status == STATUS_SKIPPED:
                    summary.skipped += 1
                else:
                    summary.failed += 1
                if on_progress:
                    on_progress(Progress(done, len(items), summary.faces, result.path))
                if len(batch) >= BATCH_SIZE or time.monotonic() - last_flush > BATCH_SECONDS:
                    self._store(batch, roots)
                    batch, last_flush = [], time.monotonic()
                if self.stop.is_set():
                    summary.interrupted = True
                    break
        except KeyboardInterrupt:
            summary.interrupted = True
            self.stop.set()
            raise
        finally:
            if batch:
                self._store(batch, roots)
            if summary.interrupted:
                self.close()

    def _store(self, results: list, roots: dict[str, str]) -> None:
        """One transaction for a batch: every photo whole, or none of them."""
        now = datetime.now()
        with session_scope(self.engine) as s:
            for res in results:
                row = s.scalar(select(Photo).where(Photo.path == res.path))
                if res.pixels_unchanged:
                    if row is None:  # removed meanwhile (the watcher): the next scan sees a new file
                        continue
                    for name in ("size", "mtime_ns", "content_hash", "taken_at", "date_source", "utc_offset_min",
                                 "camera"):
                        setattr(row, name, getattr(res, name))
                    row.indexed_at = now
                    continue
                if row is None:
                    row = Photo(path=res.path, root=roots[res.path])
                    s.add(row)
                else:
                    s.execute(delete(Face).where(Face.photo_id == row.id))
                    row.faces = []
                for name in ("size", "mtime_ns", "status", "error", "content_hash", "taken_at", "date_source",
                             "utc_offset_min", "camera", "width", "height", "orientation", "detector",
                             "model_version"):
                    setattr(row, name, getattr(res, name))
                row.indexed_at = now
                row.face_count = len(res.faces)
                for i, f in enumerate(res.faces):
                    x, y, w, h = f.box
                    row.faces.append(Face(idx=i, x=x, y=y, w=w, h=h, confidence=f.confidence, emotion=f.emotion,
                                          score=f.score, **dict(zip(CLASSES, f.scores, strict=True))))

    def _record_run(self, kind: str, roots: Sequence, summary: ScanSummary) -> None:
        with session_scope(self.engine) as s:
            s.add(Run(kind=kind, started_at=datetime.now() - timedelta(seconds=summary.seconds),
                      finished_at=datetime.now(), roots=json.dumps([str(r) for r in roots]),
                      summary=json.dumps(summary.as_dict())))


def metadata_rewritten(engine: Engine, path: str | Path) -> None:
    """We just wrote tags into this photo's own metadata: its pixels are the same, so record
    its new size, mtime and hash instead of letting the next scan re-run the models on it."""
    path = normalise_path(path)
    try:
        st, digest = os.stat(path), fingerprint_file(path)
    except OSError:
        return
    with session_scope(engine) as s:
        s.execute(update(Photo).where(Photo.path == path)
                  .values(size=st.st_size, mtime_ns=st.st_mtime_ns, content_hash=digest))


def counts(engine: Engine) -> dict[str, int]:
    """Photos, faces and errors in the index (for `status`)."""
    with Session(engine) as s:
        by_status = dict(s.execute(select(Photo.status, func.count()).group_by(Photo.status)).all())
        faces = s.scalar(select(func.count()).select_from(Face).join(Photo).where(Photo.status == STATUS_OK))
    return {"photos": by_status.get(STATUS_OK, 0), "faces": faces or 0,
            "errors": by_status.get(STATUS_ERROR, 0), "skipped": by_status.get(STATUS_SKIPPED, 0)}


