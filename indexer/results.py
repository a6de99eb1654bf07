"""What analysing one photo gives: `PhotoResult` with its `FaceResult`s.

Plain data, apart from the pipeline that makes them, so that the process that stores them (`index`,
`watch`: the results come back from worker processes) unpickles them without importing OpenCV or
numpy (~0.3 s of every short run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from indexer.domain import CLASSES
from indexer.media.regions import NamedRegion
from indexer.media.tagstate import TagVerdicts


@dataclass(frozen=True)
class FaceResult:
    box: tuple[int, int, int, int]          # x, y, w, h in displayed full-resolution pixels
    confidence: float
    scores: tuple[float, ...]               # probabilities in CLASSES order

    @property
    def emotion(self) -> str:
        return CLASSES[max(range(len(self.scores)), key=self.scores.__getitem__)]  # the first of equals

    @property
    def score(self) -> float:
        return float(max(self.scores))

    def as_dict(self) -> dict:
        return {"box": list(self.box), "confidence": round(self.confidence, 4), "emotion": self.emotion,
                "scores": {c: round(float(s), 4) for c, s in zip(CLASSES, self.scores, strict=True)}}


@dataclass(frozen=True)
class PhotoResult:
    path: str
    size: int
    mtime_ns: int
    status: str                              # STATUS_OK | STATUS_ERROR | STATUS_SKIPPED
    error: str | None = None
    content_hash: str | None = None
    taken_at: datetime | None = None
    date_source: str | None = None           # exif | sidecar | xmp | file (media.dates)
    utc_offset_min: int | None = None
    camera: str | None = None
    width: int | None = None
    height: int | None = None
    orientation: int | None = None
    faces: tuple[FaceResult, ...] = field(default_factory=tuple)
    detector: str | None = None
    model_version: str | None = None
    # the file changed but not its pixels (a metadata edit): EXIF fields are new, the faces
    # found before still hold, and no model ran
    pixels_unchanged: bool = False
    # what libraries printed while this file was read (libjpeg's "Corrupt JPEG data: ...", exifread,
    # Pillow), and metadata we could not read (a malformed sidecar): short lines, never on the terminal
    warnings: tuple[str, ...] = ()
    # named face regions from the sidecar or the file's XMP (media.regions), in the displayed frame
    regions: tuple[NamedRegion, ...] = ()
    # emotion tags the user added or removed in a photo manager (media.tagstate): corrections
    tags: TagVerdicts = TagVerdicts()
    # the process analysing it died (set by the executor, never by the pipeline itself): the scan
    # records STATUS_RETRY the first time, STATUS_ERROR when it happens again on the retry
    crashed: bool = False
