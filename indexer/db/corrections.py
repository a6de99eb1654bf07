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
--force` or a new model find the same face again within `SAME_FACE_IOU`.

Corrections made in a photo manager.  An `Emotion|…` tag the user removed from those moodindex
wrote, or added themselves, in digiKam or darktable (media.tagstate) becomes a correction at the
next `index` (`record_tag_verdicts`, source "tags"): "not happy" or "angry", on the photo's one
face, or on the whole photo when it has several (`photo_level`, no box; `show` says so).  "Not
E" turns every face showing E to the model's best other class, at the model's probability;
"E" for a whole photo goes on the face the model finds likeliest to show E, unless one does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from indexer.db.models import Correction, Face, Photo
from indexer.domain import CLASSES, STATUS_OK
from indexer.media.regions import iou, match_regions
from indexer.media.tagstate import TagVerdicts

# A box found again by a re-run or another detector overlaps the old one at IoU >= 0.52 even when
# the two detectors differ (benchmarks/region_match.py: Haar vs YuNet); the same detector finds
# the same box.  0.5 would sit on that edge, 0.4 keeps a margin and is still far above any overlap
# of two different faces.
SAME_FACE_IOU = 0.4
USER_SCORE = 1.0
SOURCE_CLI, SOURCE_TAGS = "cli", "tags"  # `moodindex correct`, or tags changed in a photo manager


class CorrectionError(ValueError):
    """A correction that cannot be made; str() says why and what to do."""


@dataclass(frozen=True)
class Outcome:
    message: str
    reanalyse: bool = False  # a cleared "not a face": the photo is analysed again on the next `index`


def _box(item: Face | Correction) -> tuple[int, int, int, int]:
    return item.x, item.y, item.w, item.h


def apply_corrections(s: Session, photo: Photo) -> None:
    """Lay the corrections for this photo's fingerprint on its faces (see the module docstring),
    oldest first, so the newest word on a face wins.  Faces corrected before get the model's answer
    back first: laying them again gives the same faces whatever was laid before."""
    if not photo.content_hash:
        return
    corrections = s.scalars(select(Correction).where(Correction.content_hash == photo.content_hash)
                            .order_by(Correction.created_at, Correction.id)).all()
    for face in photo.faces:
        if face.corrected:
            restore_model_answer(face)
    if not corrections:
        return
    faces = list(photo.faces)
    # each correction on its own face: several may be about one face ("not happy", then "angry")
    matches = {c.id: match_regions([_box(c)], [_box(f) for f in faces], SAME_FACE_IOU)[0]
               for c in corrections if not c.photo_level}
    excluded: dict[int, set[str]] = {}  # id(face) -> emotions the user said it does not show
    dropped = []
    for correction in corrections:
        if correction.photo_level:
            _lay_on_photo(correction, faces, excluded)
            continue
        if (m := matches[correction.id]) is None:
            continue
        face = faces[m]
        if correction.not_a_face:
            dropped.append(face)
        elif correction.not_emotion:
            _exclude(face, correction.not_emotion, excluded)
        else:
            face.emotion, face.score, face.corrected = correction.emotion, USER_SCORE, True
    for face in dropped:
        photo.faces.remove(face)
    photo.face_count = len(photo.faces)


def _exclude(face: Face, emotion: str, excluded: dict[int, set[str]]) -> None:
    """"Not `emotion`": a face showing it gets the model's best other class, at the model's probability."""
    gone = excluded.setdefault(id(face), set())
    gone.add(emotion)
    if face.emotion != emotion:
        return
    scores = {c: getattr(face, c) for c in CLASSES if c not in gone}
    if scores:
        best = max(scores, key=scores.__getitem__)
        face.emotion, face.score, face.corrected = best, float(scores[best]), True


def _lay_on_photo(correction: Correction, faces: list[Face], excluded: dict[int, set[str]]) -> None:
    """A correction of the whole photo (a tag changed on a photo with several faces): "not E" holds
    for every face; "E" is laid on the face the model finds likeliest to show it, unless one does."""
    if correction.not_emotion:
        for face in faces:
            _exclude(face, correction.not_emotion, excluded)
        return
    emotion = correction.emotion
    if not emotion or not faces or any(f.emotion == emotion for f in faces):
        return
    face = max(faces, key=lambda f: getattr(f, emotion))
    face.emotion, face.score, face.corrected = emotion, USER_SCORE, True


def _model_emotion(face: Face) -> str:
    scores = [getattr(face, c) for c in CLASSES]
    return CLASSES[scores.index(max(scores))]


def record_tag_verdicts(s: Session, photo: Photo, verdicts: TagVerdicts) -> None:
    """Turn what the user did to the photo's emotion tags (media.tagstate) into corrections: on
    its one face, or on the whole photo when it has several.  A verdict already recorded is left
    as it is (its date keeps its place among the user's other corrections); the opposite one for
    the same emotion is replaced.  A tag the user added that the model already gives a face says
    nothing new and is not recorded (digiKam writing our own tags back into the file, too).
    Verdicts are only ever added by what the tags say: a sidecar that disappears takes none away."""
    if not verdicts or not photo.content_hash:
        return
    faces = list(photo.faces)
    model_says = {_model_emotion(f) for f in faces}
    wanted = [(e, False) for e in verdicts.added if e not in model_says] + [(e, True) for e in verdicts.removed]
    if not wanted:
        return
    mine = s.scalars(select(Correction).where(Correction.content_hash == photo.content_hash,
                                              Correction.source == SOURCE_TAGS)).all()
    box = _box(faces[0]) if len(faces) == 1 else (0, 0, 0, 0)
    for emotion, negative in wanted:
        if any((c.not_emotion if negative else c.emotion) == emotion for c in mine):
            continue
        for c in mine:
            if (c.emotion if negative else c.not_emotion) == emotion:
                s.delete(c)
        s.add(Correction(content_hash=photo.content_hash, x=box[0], y=box[1], w=box[2], h=box[3],
                         emotion=None if negative else emotion, not_emotion=emotion if negative else None,
                         not_a_face=False, photo_level=len(faces) != 1, source=SOURCE_TAGS,
                         created_at=datetime.now()))
    s.flush()


def photo_corrections(s: Session, photo: Photo) -> list[dict[str, Any]]:
    """The corrections of the whole photo (not of one face), for `show`."""
    if not photo.content_hash:
        return []
    rows = s.scalars(select(Correction).where(Correction.content_hash == photo.content_hash,
                                              Correction.photo_level.is_(True))
                     .order_by(Correction.created_at, Correction.id))
    return [{"emotion": c.emotion or c.not_emotion, "shows": c.not_emotion is None, "source": c.source}
            for c in rows]


def restore_model_answer(face: Face) -> None:
    face.emotion = _model_emotion(face)
    face.score, face.corrected = float(getattr(face, face.emotion)), False


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
        s.flush()
        apply_corrections(s, photo)  # the model's answer, under what still holds for the whole photo
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
        out.append({"paths": paths, "content_hash": c.content_hash,
                    "box": None if c.photo_level else [c.x, c.y, c.w, c.h], "photo_level": c.photo_level,
                    "emotion": c.emotion, "not_emotion": c.not_emotion, "not_a_face": c.not_a_face,
                    "source": c.source,
                    "created_at": c.created_at.isoformat(timespec="seconds")})
    return out
