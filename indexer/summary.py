"""What a scan did, as counts, and the one way those counts are added up and written out.

`index` prints the full line, the watcher logs a short one per batch (only what changed), and
`status` shows the last run's stored counts: all three read the same counters from here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

# The counters a scan keeps, in the order they are shown; `faces` is the faces found in new and
# changed photos.
COUNTERS: tuple[str, ...] = ("new", "changed", "unchanged", "moved", "deleted", "failed", "skipped", "faces",
                             "warned")
# What changed rows, in the order a short line names them.
CHANGES: tuple[str, ...] = ("new", "changed", "moved", "deleted", "failed", "skipped")


def changes_text(counts: Mapping[str, int], names: tuple[str, ...] = CHANGES, *, skip_zero: bool = False,
                 labels: Mapping[str, str] | None = None) -> str:
    """'3 new, 1 changed, ...' for `names` (a run's stored summary or a live ScanSummary's counts)."""
    labels = labels or {}
    parts = [f"{counts.get(n, 0)} {labels.get(n, n)}" for n in names if counts.get(n, 0) or not skip_zero]
    return ", ".join(parts)


@dataclass
class ScanSummary:
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    moved: int = 0
    deleted: int = 0
    failed: int = 0
    skipped: int = 0
    metadata_only: int = 0  # of `changed`: only the metadata was edited, no model ran
    upgraded: int = 0  # of `changed`: unchanged files re-analysed by a newer detector or model
    faces: int = 0
    warned: int = 0  # photos indexed (ok) with warnings (a library complained): `errors` lists them
    retry_next: int = 0  # of `failed`: a worker died on these; the next run tries each once more
    seconds: float = 0.0
    unreachable_roots: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    interrupted: bool = False

    @property
    def processed(self) -> int:
        return self.new + self.changed

    @property
    def analysed(self) -> int:
        """Photos that went through the pipeline (whatever came of it)."""
        return self.new + self.changed + self.failed + self.skipped

    @property
    def photos_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    @property
    def idle(self) -> bool:
        """No row changed: every file was unchanged.  (An unreadable folder or an unmounted root is
        reported again by every scan, so it does not make a scan worth recording on its own.)"""
        return not (self.new or self.changed or self.moved or self.deleted or self.failed or self.skipped)

    def counts(self) -> dict[str, int]:
        return {n: getattr(self, n) for n in COUNTERS}

    def merge(self, other: ScanSummary) -> None:
        """Add another scan's counters to these (the watcher's batches and totals)."""
        for name in COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def line(self) -> str:
        """The full one-line report of `moodindex index`."""
        notes = [f"{self.metadata_only} metadata only"] if self.metadata_only else []
        if self.upgraded:
            notes.append(f"{self.upgraded} upgraded to the installed detector/model")
        edited = f" ({'; '.join(notes)})" if notes else ""
        head = changes_text(self.counts(), ("new", "changed"))
        rest = changes_text(self.counts(), ("unchanged", "moved", "deleted", "failed", "skipped"))
        warned = f"; {self.warned} with warnings" if self.warned else ""
        if self.retry_next:
            rest += f" ({self.retry_next} to retry in the next run)"
        return (f"{head}{edited}, {rest}{warned}; {self.faces} faces; "
                f"{self.photos_per_second:.1f} photos/s in {self.seconds:.1f} s")

    def brief(self, seconds: float, moved: int = 0, removed: int = 0) -> str:
        """The watcher's line per batch: only what changed; empty when nothing did.  `moved` and
        `removed` are rows re-pointed or buried by events, beside what the scan itself found."""
        counts = self.counts()
        counts["moved"] += moved
        counts["deleted"] += removed
        text = changes_text(counts, skip_zero=True, labels={"deleted": "removed"})
        if not text:
            return ""
        faces = f"; {self.faces} faces" if self.new or self.changed else ""
        return f"{text}{faces} in {seconds:.1f}s"

    def as_dict(self) -> dict:
        d = asdict(self)
        d["photos_per_second"] = round(self.photos_per_second, 2)
        d["seconds"] = round(self.seconds, 3)
        return d


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    faces: int
    path: str
    warnings: tuple[str, ...] = ()  # what libraries said about this photo (shown with -v, after the bar)


ProgressFn = Callable[[Progress], None]
