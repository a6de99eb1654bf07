"""The watched roots: which one a path belongs to, and what a recheck of each one means
(unmounted, back, replaced by a remount, or a watch that silently stopped)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from watchdog.observers.api import ObservedWatch

from indexer.paths import is_under, normalise_path, stat_or_none

log = logging.getLogger(__name__)

Identity = tuple[int, int]  # (st_dev, st_ino): a remount replaces it


class WatchError(RuntimeError):
    """The watcher cannot start (bad roots); the message says why."""


def folder_identity(path: str) -> Identity | None:
    st = stat_or_none(path)
    return None if st is None else (st.st_dev, st.st_ino)


@dataclass
class WatchedRoot:
    path: str
    watch: ObservedWatch | None = None
    identity: Identity | None = None
    paused: str | None = None                 # why, while unmounted


# what a recheck found; the watcher acts on it
KEEP, PAUSE, REPLACED, RESCHEDULE, BACK = "keep", "pause", "replaced", "reschedule", "back"


def recheck_verdict(root: WatchedRoot, problem: str | None, identity: Identity | None,
                    watch_alive: bool) -> str:
    """Decide what a periodic look at `root` means.

    `problem` is `scan.root_problem` (None when usable), `identity` the folder's identity now,
    `watch_alive` whether its observer emitter still runs.  An active root is paused when it is
    gone, unreadable, or an unmount left the empty mount point; an empty folder that is still the
    one watched was emptied by the user (its events said so) and stays.  A folder replaced under the
    same name (a remount) or a watch that stopped is rescheduled and rescanned; a paused root whose
    problem went away is back."""
    if root.paused is not None:
        return BACK if problem is None else KEEP
    if problem and (identity is None or identity != root.identity or "empty" not in problem):
        return PAUSE
    if identity != root.identity:
        return REPLACED
    if root.watch is not None and not watch_alive:
        return RESCHEDULE  # a polling emitter stops when its folder vanished for a moment
    return KEEP


class Roots:
    """The distinct roots being watched."""

    def __init__(self, roots: Iterable[str | Path]) -> None:
        self._roots = [WatchedRoot(r) for r in distinct_roots(roots)]

    def __iter__(self) -> Iterator[WatchedRoot]:
        return iter(self._roots)

    def find(self, path: str) -> WatchedRoot | None:
        return next((r for r in self._roots if r.path == path), None)

    def active(self) -> list[str]:
        return [r.path for r in self._roots if r.paused is None]

    def paused(self) -> dict[str, str]:
        return {r.path: r.paused for r in self._roots if r.paused}

    def root_of(self, path: str) -> str | None:
        """The innermost active root that holds `path`."""
        best = None
        for r in self._roots:
            if r.paused is None and is_under(path, r.path) and (best is None or len(r.path) > len(best)):
                best = r.path
        return best


def distinct_roots(roots: Iterable[str | Path]) -> list[str]:
    """Normalised, deduplicated, and without roots nested in another (their events arrive twice)."""
    out: list[str] = []
    for r in sorted({normalise_path(r) for r in roots}):
        if os.path.isfile(r):
            raise WatchError(f"{r}: not a folder (watch folders; index single files with `moodindex index`)")
        if any(is_under(r, o) for o in out):
            log.info("%s is inside another watched folder", r)
            continue
        out.append(r)
    if not out:
        raise WatchError("no folders to watch")
    return out
