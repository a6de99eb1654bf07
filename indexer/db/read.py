"""Read-side helpers for the simple commands (show, list, status, errors)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from indexer.db.models import Face, Photo
from indexer.domain import STATUS_ERROR, STATUS_OK, STATUS_RETRY, STATUS_SKIPPED, date_is_estimated
from indexer.paths import path_json


def face_dict(face: Face) -> dict[str, Any]:
    return {"box": [face.x, face.y, face.w, face.h], "confidence": round(face.confidence, 4),
            "emotion": face.emotion, "score": round(face.score, 4),
            "person": face.person.name if face.person is not None else None,
            "corrected": face.corrected,  # emotion and score are the user's (moodindex correct)
            "scores": {k: round(v, 4) for k, v in face.scores().items()}}


def photo_dict(photo: Photo, with_faces: bool = True) -> dict[str, Any]:
    d: dict[str, Any] = {
        **path_json(photo.path), **path_json(photo.root, "root"), "status": photo.status, "error": photo.error,
        "warnings": list(photo.warnings or ()),
        "taken_at": photo.taken_at.isoformat() if photo.taken_at else None,
        "date_source": photo.date_source, "date_estimated": date_is_estimated(photo.date_source),
        "utc_offset_min": photo.utc_offset_min, "camera": photo.camera,
        "width": photo.width, "height": photo.height, "orientation": photo.orientation,
        "faces": photo.face_count, "size": photo.size, "content_hash": photo.content_hash,
        "model": photo.model_version, "detector": photo.detector,
        "indexed_at": photo.indexed_at.isoformat(timespec="seconds") if photo.indexed_at else None,
    }
    d["people"] = [p.name for p in photo.people]
    if with_faces:
        d["face_details"] = [face_dict(f) for f in photo.faces]
    return d


def find_photo(s: Session, path: str) -> Photo | None:
    return s.scalar(select(Photo).options(selectinload(Photo.faces)).where(Photo.path == path))


def iter_photos(s: Session) -> Iterator[Photo]:
    """Every indexed photo (status ok), in path order."""
    yield from s.scalars(select(Photo).where(Photo.status == STATUS_OK).order_by(Photo.path)
                         .execution_options(yield_per=1000))


def error_rows(s: Session) -> list[Photo]:
    return list(s.scalars(select(Photo).where(Photo.status.in_((STATUS_ERROR, STATUS_RETRY, STATUS_SKIPPED)))
                          .order_by(Photo.path)))


def warned_rows(s: Session) -> list[Photo]:
    """Photos indexed (status ok) although a library or their metadata said something was wrong."""
    return list(s.scalars(select(Photo).where(Photo.status == STATUS_OK, Photo.warnings.is_not(None))
                          .order_by(Photo.path)))
