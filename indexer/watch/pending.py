"""What the watcher is waiting for: photos not yet complete, and folder operations not yet applied.

No threads, no observer and no clock of its own: every method is given the time, so the settle,
stall and coalesce rules are tested with made-up times (tests/test_watch_units.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from indexer.paths import is_under, stat_or_none

Signature = tuple[int, int]  # (size, mtime_ns): what must stay put for `settle` seconds


def file_signature(path: str) -> Signature | None:
    st = stat_or_none(path)
    return None if st is None else (st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class Timing:
    """The waits the pending state needs (a view of WatchOptions)."""

    settle: float
    stall: float
    quiet: float
    max_delay: float


@dataclass
class PendingFile:
    """A photo waiting to be (re)indexed."""

    root: str
    first: float                 # when the first event for it arrived
    last_event: float
    writing: bool = False        # modified since its last close-write (inotify only)
    complete: bool = False       # closed after writing, or renamed into place
    sig: Signature | None = None
    sig_since: float = 0.0       # since when `sig` has not changed


class Op(NamedTuple):
    """A folder-level operation, applied in event order: delete, scandir (a folder appeared),
    move (a file) or movedir."""

    kind: str
    path: str
    dest: str
    at: float


DELETE, SCANDIR, MOVE, MOVEDIR = "delete", "scandir", "move", "movedir"


class PendingFiles:
    """Photos waiting for their write to finish, keyed by path."""

    def __init__(self, timing: Timing, signature: Callable[[str], Signature | None] = file_signature) -> None:
        self.timing = timing
        self.signature = signature
        self._files: dict[str, PendingFile] = {}

    def __contains__(self, path: str) -> bool:
        return path in self._files

    def __len__(self) -> int:
        return len(self._files)

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def get(self, path: str) -> PendingFile | None:
        return self._files.get(path)

    def touch(self, path: str, root: str, t: float, writing: bool = False, closed: bool = False,
              complete: bool = False) -> PendingFile:
        """An event for `path` at time `t`: written to (`writing`), closed after writing (`closed`),
        renamed into place (`complete`), or just created or changed."""
        entry = self._files.get(path)
        if entry is None:
            entry = self._files[path] = PendingFile(root, first=t, last_event=t)
        entry.last_event = max(entry.last_event, t)
        if writing:
            entry.writing, entry.complete = True, False
        elif closed:
            entry.writing, entry.complete = False, True
        elif complete and not entry.writing:
            entry.complete = True
        if not (entry.writing or entry.complete):
            entry.sig, entry.sig_since = self.signature(path), t
        return entry

    def rename(self, src: str, dest: str, dest_root: str | None, t: float) -> None:
        """A file renamed while pending: it waits under its new name (complete unless still being
        written); dropped when the new name is not one to index (`dest_root` None)."""
        entry = self._files.pop(src, None)
        if entry is None or dest_root is None:
            return
        entry.root = dest_root
        entry.last_event, entry.complete = t, not entry.writing
        self._files[dest] = entry

    def rename_folder(self, src: str, dest: str, root_of: Callable[[str], str | None], t: float) -> None:
        """A folder renamed: the photos pending inside it move along (or are dropped when their new
        path is not one to index: `root_of` returns None)."""
        for p in [p for p in self._files if is_under(p, src, strict=True)]:
            entry = self._files.pop(p)
            new = dest + p[len(src):]
            root = root_of(new)
            if root is not None:
                entry.root, entry.last_event = root, t
                self._files[new] = entry

    def drop(self, path: str) -> None:
        """`path` and everything pending below it."""
        for p in [p for p in self._files if is_under(p, path)]:
            del self._files[p]

    def due(self, entry: PendingFile) -> float:
        """When `entry` may be looked at: a quiet moment after its last event, and for a file seen
        without a close-write, `settle` seconds (an empty file: `stall`) of an unchanged signature."""
        t = self.timing
        if entry.writing:
            return entry.last_event + t.stall
        if entry.complete or entry.sig is None:
            return entry.last_event + t.quiet
        wait = t.settle if entry.sig[0] > 0 else t.stall  # an empty file is not a photo yet
        return max(entry.last_event + t.quiet, entry.sig_since + wait)

    def is_ready(self, path: str, now: float) -> bool:
        entry = self._files[path]
        if now < self.due(entry):
            return False
        if entry.writing or entry.complete:
            return True  # closed, renamed into place, or stalled for `stall` seconds
        sig = self.signature(path)
        if sig is None:
            return True  # gone: index_files removes its row
        if sig != entry.sig:
            entry.sig, entry.sig_since = sig, now
            return False
        return now >= self.due(entry)

    def ready(self, now: float) -> list[str]:
        return [p for p in self._files if self.is_ready(p, now)]

    def oldest_first_event(self, paths: list[str]) -> float:
        return min(self._files[p].first for p in paths)

    def take(self, paths: list[str]) -> dict[str, str]:
        """Stop waiting for `paths`; returns each one's root."""
        return {p: self._files.pop(p).root for p in paths}

    def next_due(self, last_event: float) -> float | None:
        """The earliest time a pending file can be flushed: its own readiness, then the batch window
        (quiet everywhere since `last_event`, or waited `max_delay` already)."""
        t = self.timing
        times = [max(self.due(e), min(last_event + t.quiet, e.first + t.max_delay)) for e in self._files.values()]
        return min(times, default=None)


def coalesce(ops: list[Op]) -> list[Op]:
    """Within each run of consecutive deletes, drop those inside another deleted folder (rm -r),
    and drop an operation repeated right after itself (a duplicate event)."""
    out: list[Op] = []
    run: list[Op] = []

    def close_run() -> None:
        paths = {op.path for op in run}
        seen: set[str] = set()
        for op in run:
            p = op.path
            parents = (p[:i] for i in range(len(p)) if p[i] == "/" and i > 0)
            if p in seen or any(q in paths for q in parents):
                continue
            seen.add(p)
            out.append(op)
        run.clear()

    for op in ops:
        if op.kind == DELETE:
            run.append(op)
            continue
        close_run()
        if out and out[-1][:3] == op[:3]:
            continue  # a duplicate event
        out.append(op)
    close_run()
    return out
