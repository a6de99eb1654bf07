"""Tag or untag many photos: one exiftool process, one Outcome per file, a failure never stops the run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from indexer.export import xmp
from indexer.export.exiftool import ExifTool
from indexer.export.tags import DEFAULT_MIN_SCORE, DEFAULT_PREFIX, HasScores, emotions_for_faces
from indexer.media.tagstate import sidecar_signature


class PhotoLike(Protocol):
    path: str
    root: str
    faces: Sequence[HasScores]


@dataclass
class Summary:
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[xmp.Outcome] = field(default_factory=list)

    sidecar_writes: int = 0   # written (or would be) to a sidecar: for in-file mode, formats not rewritten
    in_file_writes: int = 0

    def add(self, outcome: xmp.Outcome) -> None:
        self.counts[outcome.status] += 1
        if outcome.status in (xmp.WRITTEN, xmp.WOULD_WRITE):
            if outcome.target == outcome.photo:
                self.in_file_writes += 1
            else:
                self.sidecar_writes += 1
        if not outcome.ok:
            self.problems.append(outcome)

    @property
    def failed(self) -> int:
        return self.counts[xmp.FAILED] + self.counts[xmp.REFUSED]

    def line(self) -> str:
        order = (xmp.WRITTEN, xmp.WOULD_WRITE, xmp.REMOVED, xmp.UNCHANGED, xmp.FAILED, xmp.REFUSED)
        parts = [f"{self.counts[s]} {s}" for s in order if self.counts[s] or s in (xmp.WRITTEN, xmp.FAILED)]
        return ", ".join(parts)


OnOutcome = Callable[[xmp.Outcome], None]
# a photo file whose metadata we rewrote, or a photo whose sidecar we wrote with the sidecars'
# signature from before the write (media.tagstate.sidecar_signature): keep the index in step
OnRewritten = Callable[[Path], None]
OnSidecar = Callable[[Path, str | None], None]


def _report(outcome: xmp.Outcome, summary: Summary, on_outcome: OnOutcome | None,
            on_rewritten: OnRewritten | None, on_sidecar: OnSidecar | None = None,
            sidecars_before: str | None = None) -> None:
    """Bookkeeping first (the index must hear of every rewrite, whatever is printed), then the caller."""
    summary.add(outcome)
    if on_rewritten and outcome.rewrote_photo:
        on_rewritten(outcome.photo)
    if on_sidecar and outcome.status in (xmp.WRITTEN, xmp.REMOVED) and outcome.target != outcome.photo:
        on_sidecar(outcome.photo, sidecars_before)
    if on_outcome:
        on_outcome(outcome)


def tag_photos(photos: Iterable[PhotoLike], *, mode: str = xmp.SIDECAR, min_score: float = DEFAULT_MIN_SCORE,
               prefix: str = DEFAULT_PREFIX, dry_run: bool = False, on_outcome: OnOutcome | None = None,
               exiftool: ExifTool | None = None, on_rewritten: OnRewritten | None = None,
               on_sidecar: OnSidecar | None = None) -> Summary:
    """Bring each photo's tags in line with its faces (removing our old tags where none qualify now)."""
    summary = Summary()
    et = exiftool or ExifTool()
    try:
        for photo in photos:
            emotions = emotions_for_faces(photo.faces, min_score)
            before = sidecar_signature(photo.path) if on_sidecar else None
            outcome = xmp.apply(et, Path(photo.path), photo.root, emotions, mode=mode, prefix=prefix,
                                dry_run=dry_run)
            _report(outcome, summary, on_outcome, on_rewritten, on_sidecar, before)
    finally:
        if exiftool is None:
            et.close()
    return summary


def untag_photos(photos: Iterable[PhotoLike], *, modes: Sequence[str] = (xmp.SIDECAR, xmp.IN_FILE),
                 dry_run: bool = False, on_outcome: OnOutcome | None = None,
                 exiftool: ExifTool | None = None, on_rewritten: OnRewritten | None = None,
                 on_sidecar: OnSidecar | None = None) -> Summary:
    """Remove exactly the values we recorded as ours, from the sidecar and/or the file itself."""
    summary = Summary()
    et = exiftool or ExifTool()
    try:
        for photo in photos:
            path = Path(photo.path)
            for mode in modes:
                if mode == xmp.IN_FILE and xmp.mode_for(path, mode) != xmp.IN_FILE:
                    continue  # RAW & co. never got in-file tags
                before = sidecar_signature(path) if on_sidecar else None
                outcome = xmp.apply(et, path, photo.root, [], mode=mode, dry_run=dry_run)
                _report(outcome, summary, on_outcome, on_rewritten, on_sidecar, before)
    finally:
        if exiftool is None:
            et.close()
    return summary
