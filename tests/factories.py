"""Index rows for query/gallery tests: Photo and Face ORM objects inserted directly."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from indexer.db.models import Face, Photo
from indexer.vision.crop import CLASSES


def probabilities(emotion: str, score: float) -> dict[str, float]:
    """Seven probabilities summing to 1 whose top class is `emotion` with `score`."""
    rest = (1.0 - score) / (len(CLASSES) - 1)
    assert score > rest, "the named emotion must be the top class"
    return {c: (score if c == emotion else rest) for c in CLASSES}


def add_photo(session: Session, path: str, taken_at: datetime | None = datetime(2019, 6, 1, 12),
              faces: list[tuple[str, float]] | None = None, *, date_source: str = "exif", status: str = "ok",
              boxes: list[tuple[int, int, int, int]] | None = None, width: int = 1200, height: int = 900,
              orientation: int = 1) -> Photo:
    """A photo row with faces given as (emotion, score) pairs; boxes default to a row of squares."""
    faces = faces or []
    photo = Photo(path=path, root=path.rsplit("/", 1)[0], size=1000, mtime_ns=0, content_hash=None,
                  taken_at=taken_at, date_source=date_source if taken_at else None, status=status,
                  face_count=len(faces) if status == "ok" else 0, width=width, height=height,
                  orientation=orientation, indexed_at=datetime(2026, 1, 1), model_version="test", detector="test")
    for i, (emotion, score) in enumerate(faces):
        x, y, w, h = boxes[i] if boxes else (20 + 220 * i, 300, 200, 200)
        photo.faces.append(Face(idx=i, x=x, y=y, w=w, h=h, confidence=0.9, emotion=emotion, score=score,
                                **probabilities(emotion, score)))
    session.add(photo)
    session.flush()
    return photo
