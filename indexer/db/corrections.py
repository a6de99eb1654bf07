"""The user's corrections: "this face is angry, not sad", "this is not a face".

A correction lives in its own table (models.Correction), keyed by the photo's content
fingerprint and the face's box, and is laid on the faces table every time the photo's faces are
stored (`apply_corrections`, called by `photos.store_results`): the face's `emotion` becomes the
user's, its `score` 1.0 (the user is sure), `corrected` is set, and the model's seven
probabilities stay as they were.  A face the user said is not a face is dropped.  Because every
reader (queries and their ranking, tags, the gallery, `digikam sync`) reads `emotion`/`score`,
the correction wins everywhere without each of them knowing about it.

The key survives what the index does to a photo: a move or rename keeps the fingerprint (the row
is re-pointed), a metadata edit keeps it (the fingerprint leaves metadata out), and `index
--force` or a new model find the same face again within `SAME_FACE_IOU`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from indexer.db.models import Correction, Face, Photo
from indexer.domain import CLASSES, STATUS_OK
from indexer.media.regions import iou, match_regions

# A box found again by a re-run or another detector overlaps the old one at IoU >= 0.52 even when
# the two detectors differ (benchmarks/region_match.py: Haar vs YuNet); the same detector finds
# the same box.  0.5 would sit on that edge, 0.4 keeps a margin and is still far above any overlap
# of two different faces.
SAME_FACE_IOU = 0.4
USER_SCORE = 1.0


class CorrectionError(ValueError):
    """A correction that cannot be made; str() says why and what to do."""


@dataclass(frozen=True)
class Outcome:
    message: str
    reanalyse: bool = False  # a cleared "not a face": the photo is analysed again on the next `index`


def _box(item: Face | Correction) -> tuple[int, int, int, int]:
    return item.x, item.y, item.w, item.h


def apply_corrections(s: Session, photo: Photo) -> None:
    """Lay the corrections for this photo's fingerprint on its faces (see the module docstring)."""
    if not photo.content_hash:
        return
    corrections = s.scalars(select(Correction).where(Correction.content_hash == photo.content_hash)
                            .order_by(Correction.created_at, Correction.id)).all()
    if not corrections:
        return
    faces = list(photo.faces)
    matches = match_regions([_box(c) for c in corrections], [_box(f) for f in faces], SAME_FACE_IOU)
    dropped = []
    for correction, m in zip(corrections, matches, strict=True):
        if m is None:
            continue
        face = faces[m]
        if correction.not_a_face:
            dropped.append(face)
        else:
            face.emotion, face.score, face.corrected = correction.emotion, USER_SCORE, True
    for face in dropped:
        photo.faces.remove(face)
    photo.face_count = len(photo.faces)


def restore_model_answer(face: Face) -> None:
    scores = [getattr(face, c) for c in CLASSES]
    face.emotion, face.score, face.corrected = CLASSES[scores.index(max(scores))], float(max(scores)), False


def _pick_face(photo: Photo, face_n: int | None) -> Face:
    faces = list(photo.faces)
    if face_n is None:
        if len(faces) == 1:
            return faces[0]
        if not faces:
            raise CorrectionError(f"{photo.path}: no faces were found in this photo")
        raise CorrectionError(f"{photo.path} has {len(faces)} faces: say which with --face N "
                              "(0..{}, numbered as `moodindex show` lists them)".format(len(faces) - 1))
    if not 0 <= face_n < len(faces):
        raise CorrectionError(f"{photo.path}: no face {face_n} (it has {len(faces)}: 0..{len(faces) - 1}, "
                              "as `moodindex show` numbers them)")
    return faces[face_n]


def _live_photo(s: Session, path: str) -> Photo:
    photo = s.scalar(select(Photo).where(Photo.path == path))
    if photo is None or photo.status != STATUS_OK:
        raise CorrectionError(f"{path}: not in the index (run `moodindex index` on its folder)")
    if not photo.content_hash:
        raise CorrectionError(f"{path}: the index has no fingerprint for it; run `moodindex index --force` on it")
    return photo


def _drop_for_face(s: Session, photo: Photo, face: Face) -> int:
    old = [c for c in s.scalars(select(Correction).where(Correction.content_hash == photo.content_hash))
           if iou(_box(c), _box(face)) >= SAME_FACE_IOU]
    for c in old:
        s.delete(c)
    return len(old)


def correct(s: Session, path: str, emotion: str | None, face_n: int | None, not_a_face: bool = False) -> Outcome:
    """Record the user's emotion for one face (or that it is not a face) and apply it now."""
    photo = _live_photo(s, path)
    face = _pick_face(photo, face_n)
    _drop_for_face(s, photo, face)
    s.add(Correction(content_hash=photo.content_hash, x=face.x, y=face.y, w=face.w, h=face.h,
                     emotion=None if not_a_face else emotion, not_a_face=not_a_face, created_at=datetime.now()))
    s.flush()
    n = list(photo.faces).index(face)
    apply_corrections(s, photo)
    what = "is not a face" if not_a_face else f"is {emotion}"
    return Outcome(f"{photo.path}: face {n} {what} (your correction; it outlives re-indexing)")


def clear(s: Session, path: str, face_n: int | None) -> Outcome:
    """Forget the corrections of one face, or of the whole photo; the model's answer is back."""
    photo = _live_photo(s, path)
    if face_n is not None:
        face = _pick_face(photo, face_n)
        n = _drop_for_face(s, photo, face)
        restore_model_answer(face)
        return Outcome(f"{photo.path}: face {face_n}: " + ("correction cleared" if n else "had no correction"))
    old = s.scalars(select(Correction).where(Correction.content_hash == photo.content_hash)).all()
    hidden = any(c.not_a_face for c in old)
    s.execute(delete(Correction).where(Correction.content_hash == photo.content_hash))
    for face in photo.faces:
        if face.corrected:
            restore_model_answer(face)
    if hidden:
        photo.mtime_ns = 0  # the dropped face comes back when the next `index` analyses the photo again
    message = f"{photo.path}: {len(old)} correction{'s' if len(old) != 1 else ''} cleared"
    return Outcome(message + ("; a face marked 'not a face' returns at the next `moodindex index`" if hidden
                              else ""), reanalyse=hidden)


def list_corrections(s: Session) -> list[dict[str, Any]]:
    """Every correction with the photos (paths) it applies to now, newest first."""
    out = []
    for c in s.scalars(select(Correction).order_by(Correction.created_at.desc(), Correction.id.desc())):
        paths = list(s.scalars(select(Photo.path).where(Photo.content_hash == c.content_hash,
                                                        Photo.status == STATUS_OK).order_by(Photo.path)))
        out.append({"paths": paths, "content_hash": c.content_hash, "box": [c.x, c.y, c.w, c.h],
                    "emotion": c.emotion, "not_a_face": c.not_a_face,
                    "created_at": c.created_at.isoformat(timespec="seconds")})
    return out
