"""Keep the index in step with the photo folders: new, changed, moved, deleted.

Shared by `moodindex index` and `moodindex watch`.  This module only decides what each file
is; the expensive part (decode, detect, classify) runs in an executor (`executor.py`: worker
processes here, a cluster later), and the rows are read and written by `db/photos.py`:

- unchanged (same size and mtime_ns) files are never re-read;
- a changed file whose fingerprint and orientation are the same (someone edited its metadata)
  gets its EXIF fields re-read and keeps its faces: no model runs;
- an unchanged file whose `.xmp` sidecars changed (`media.tagstate.sidecar_signatures`: sizes,
  mtimes, inodes) takes the same metadata-only path: names and tag edits are read, no model runs
  (a photo moved with its sidecar keeps the signature: a sidecar the move left behind is noticed);
- a file that is new here but has the size and content hash of a photo that vanished
  (or was deleted earlier: tombstones) is a move: its row is re-pointed, no model runs;
- an unchanged photo analysed by an older detector or model than the installed one is
  re-analysed (after the new and changed ones, newest photos first; `upgrade=False` skips it):
  each stored result records what analysed it, so an interrupted upgrade resumes;
- a root that is missing, or empty while the index has photos in it, is treated as
  unmounted: its rows are kept untouched;
- results are committed in small batches, one transaction each, so an interrupted run
  loses at most the photos in flight and the next run resumes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from indexer.config import Settings
from indexer.db import photos as repo
from indexer.db.runs import record_run
from indexer.db.session import in_transaction
from indexer.domain import STATUS_DELETED, STATUS_ERROR, STATUS_OK, STATUS_RETRY, STATUS_SKIPPED
from indexer.executor import Executor, LocalExecutor
from indexer.media.fingerprint import KnownPhoto, fingerprint_file
from indexer.media.tagstate import sidecar_signatures
from indexer.paths import is_under, normalise_path
from indexer.summary import Progress, ProgressFn, ScanSummary
from indexer.vision.identity import Installed, installed, is_older
from indexer.walk import WalkProblems, walk_photos

log = logging.getLogger(__name__)

TOMBSTONE_DAYS = 30
BATCH_SIZE = 32
BATCH_SECONDS = 2.0

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
    return root_state(root, repo.has_live_photos_under(engine, root))


CRASH_RETRY_NOTE = "the next `moodindex index` retries it once, alone in a fresh worker"
CRASH_FINAL_NOTE = ("it died again when retried alone in a fresh worker; not retried until the file changes "
                    "(or `moodindex index --force`)")


def after_crash(result, retried: bool):  # noqa: ANN001, ANN201 (pipeline.PhotoResult, kept lazy)
    """A worker died on this photo: a transient death (the OOM killer, a kill) must not mark a good
    photo failed for good, so the first time it is STATUS_RETRY; a second death, on the retry
    alone in a fresh worker, is the file's fault: STATUS_ERROR."""
    if retried:
        return replace(result, status=STATUS_ERROR, error=f"{result.error}; {CRASH_FINAL_NOTE}")
    return replace(result, status=STATUS_RETRY, error=f"{result.error}; {CRASH_RETRY_NOTE}")


class Indexer:
    """Brings rows in line with files.  One per command; `close()` stops the executor's workers."""

    def __init__(self, engine: Engine, settings: Settings, force: bool = False,
                 stop: threading.Event | None = None, executor: Executor | None = None,
                 upgrade: bool = True) -> None:
        self.engine = engine
        self.settings = settings
        self.force = force
        self.upgrade = upgrade
        self._installed: Installed | None | bool = False  # read once, when first needed
        self.stop = stop or threading.Event()
        self.executor = executor or LocalExecutor(settings, self.stop)

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
            record_run(self.engine, "index", roots, summary.as_dict(), summary.seconds)
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
        return repo.move_path(self.engine, normalise_path(src), normalise_path(dest), dest_root)

    def remove(self, path: str | Path) -> int:
        """A file or folder deleted: its photos become tombstones (so a later move back finds them)."""
        return repo.remove_path(self.engine, normalise_path(path))

    def warm_up(self) -> None:
        """Have the analysis ready before photos arrive (`Executor.warm_up`): the watcher's start."""
        self.executor.warm_up()

    def release_idle(self) -> None:
        """The watcher has had nothing to do for a while (`Executor.release_idle`)."""
        self.executor.release_idle()

    def close(self) -> None:
        self.executor.close()

    # -- the reconcile ------------------------------------------------------------------
    def _reconcile(self, found: dict[str, tuple[os.stat_result, str]], reachable: list[str],
                   summary: ScanSummary, on_progress: ProgressFn | None) -> None:
        with Session(self.engine) as s:
            known = repo.known_rows(s, found, reachable)
        to_process: list[tuple[str, str]] = []
        sidecars = sidecar_signatures(found)  # stored with what is read now
        new_paths: list[str] = []
        edited: dict[str, KnownPhoto] = {}  # changed files whose pixels may be the same
        upgrades: list[tuple[str, str, datetime | None]] = []  # unchanged, but analysed by an older model
        retrying: set[str] = set()  # a worker died on these last time: once more, alone in a fresh worker
        for path, (st, root) in found.items():
            row = known.get(path)
            if row is None or row.status == STATUS_DELETED:
                new_paths.append(path)
            elif self.force or row.status in (STATUS_SKIPPED, STATUS_RETRY) \
                    or (row.size, row.mtime_ns) != (st.st_size, st.st_mtime_ns):
                to_process.append((path, root))
                if row.status == STATUS_RETRY:
                    retrying.add(path)
                if not self.force and row.status == STATUS_OK and row.content_hash:
                    edited[path] = KnownPhoto(row.content_hash, row.orientation, row.width, row.height)
            elif row.status == STATUS_OK and row.content_hash and row.sidecars != sidecars[path]:
                # only a sidecar changed (digiKam, darktable, Lightroom): its names and tags are read
                # on the metadata-only path, which runs no model
                to_process.append((path, root))
                edited[path] = KnownPhoto(row.content_hash, row.orientation, row.width, row.height)
            elif self._is_stale(row):
                upgrades.append((path, root, row.taken_at))
            else:
                summary.unchanged += 1
        upgrades.sort(key=lambda u: (u[2] is not None, u[2] or datetime.min), reverse=True)  # newest first
        upgrading = {p for p, _, _ in upgrades}
        to_process.extend((p, root) for p, root, _ in upgrades)
        vanished = [r for p, r in known.items() if p not in found and r.status != STATUS_DELETED
                    and any(is_under(p, root, strict=True) for root in reachable)]
        moves, unmatched, deleted = in_transaction(self.engine, lambda s: self._moves_and_deletions(
            s, new_paths, found, vanished))
        for old, path in moves:
            log.info("moved: %s -> %s", old, path)
        summary.moved += len(moves)
        summary.deleted += deleted
        to_process.extend(unmatched)
        if to_process:
            self._process(to_process, {p for p, r in known.items() if r.status != STATUS_DELETED}, edited,
                          summary, on_progress, upgrading, sidecars, retrying)

    def _is_stale(self, row) -> bool:  # noqa: ANN001 (a KNOWN_COLUMNS row)
        """An ok row analysed by an older detector or model than the installed one."""
        if not self.upgrade or row.status != STATUS_OK:
            return False
        if self._installed is False:
            self._installed = installed(self.settings)
        return self._installed is not None and is_older(row.detector, row.model_version, self._installed)

    def _moves_and_deletions(self, s: Session, new_paths: list[str], found: dict[str, tuple[os.stat_result, str]],
                             vanished: list) -> tuple[list[tuple[str, str]], list[tuple[str, str]], int]:
        """In one transaction (re-run whole if the database asks): new files whose content matches a
        vanished photo or a tombstone re-point its row; the other vanished photos are buried.
        Returns the (old, new) moves, the (path, root) files still to analyse, and how many were buried."""
        candidates = repo.move_candidates(s, vanished)
        moves, unmatched = [], []
        for path in new_paths:
            st, root = found[path]
            source = self._match_move(path, st, candidates)
            if source is None:
                unmatched.append((path, root))
                continue
            old = repo.repoint_moved(s, source.id, path, root, st.st_mtime_ns)
            if old is None:
                unmatched.append((path, root))
                continue
            moves.append((old, path))
            vanished = [v for v in vanished if v.id != source.id]
        deleted = repo.bury_vanished(s, vanished)
        repo.forget_tombstones(s, datetime.now() - timedelta(days=TOMBSTONE_DAYS))
        return moves, unmatched, deleted

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

    # -- storing what the executor returns -------------------------------------------------
    def _process(self, items: list[tuple[str, str]], existing: set[str], known: dict, summary: ScanSummary,
                 on_progress: ProgressFn | None, upgrading: set[str] = frozenset(),
                 sidecars: dict[str, str | None] | None = None,
                 retrying: set[str] = frozenset()) -> None:
        roots = dict(items)
        batch: list = []
        last_flush = time.monotonic()
        done = 0
        try:
            for result in self.executor.results([p for p, _ in items], known, isolate=retrying):
                if result.crashed:
                    result = after_crash(result, retried=result.path in retrying)
                    summary.retry_next += result.status == STATUS_RETRY
                batch.append(result)
                done += 1
                if result.status == STATUS_OK:
                    summary.new += result.path not in existing
                    summary.changed += result.path in existing
                    summary.metadata_only += result.pixels_unchanged
                    summary.upgraded += result.path in upgrading
                    summary.faces += len(result.faces)
                elif result.status == STATUS_SKIPPED:
                    summary.skipped += 1
                else:
                    summary.failed += 1
                summary.warned += bool(result.warnings) and result.status == STATUS_OK
                if on_progress:
                    on_progress(Progress(done, len(items), summary.faces, result.path, result.warnings))
                elif result.warnings:  # the watcher: its log is the terminal (-v shows INFO)
                    log.info("%s: warning: %s", result.path, "; ".join(result.warnings))
                if len(batch) >= BATCH_SIZE or time.monotonic() - last_flush > BATCH_SECONDS:
                    self._store(batch, roots, sidecars)
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
                self._store(batch, roots, sidecars)
            if summary.interrupted:
                self.close()

    def _store(self, results: list, roots: dict[str, str], sidecars: dict[str, str | None] | None) -> None:
        repo.store_results(self.engine, results, roots, sidecars)
