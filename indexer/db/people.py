"""The people tables: names read from metadata, tied to the faces the detector found.

A photo's named regions from its metadata are rebuilt whenever the photo is stored (a new
analysis, or a metadata-only edit that kept its faces), so a name added, renamed or removed in
digiKam or Lightroom is what the index says after the next `index`.  Those read from digiKam's
database (`moodindex digikam sync`) are replaced at each sync and kept through re-analyses.
Each region, whatever its source, is matched to a detected face by overlap
(`media.regions.match_regions`, threshold `MATCH_IOU`); a region no face matches stays on the
photo with no face."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from indexer.db.models import Face, Person, Photo, PhotoPerson
from indexer.domain import CLASSES, STATUS_OK, clean_name, person_key
from indexer.media.regions import (
    MATCH_IOU,
    SOURCE_DIGIKAM,
    DigikamFace,
    NamedRegion,
    match_regions,
    pixel_region,
)


def person_for(s: Session, name: str) -> Person:
    """The person called `name`, created on first sight."""
    key = person_key(name)
    person = s.scalar(select(Person).where(Person.key == key))
    if person is None:
        person = Person(name=clean_name(name), key=key)
        s.add(person)
        s.flush()
    return person


def clear_regions(s: Session, photo: Photo) -> None:
    """Forget the regions read from the photo's metadata; digiKam's (read by `digikam sync` from its
    database) stay, and are matched again to whatever faces the photo gets."""
    if photo.id is not None:
        s.execute(delete(PhotoPerson).where(PhotoPerson.photo_id == photo.id,
                                            PhotoPerson.source != SOURCE_DIGIKAM))


def store_regions(s: Session, photo: Photo, regions: Sequence[NamedRegion], digikam: bool = False) -> None:
    """Replace the photo's named regions from the metadata (or, with `digikam`, those from digiKam's
    database) with `regions` (normalised, displayed frame), then match every region of the photo
    to its faces.  One person has one region per photo: one already there from the other source
    is kept."""
    s.flush()  # the photo and its faces need their ids
    if photo.id is None:
        return
    same = PhotoPerson.source == SOURCE_DIGIKAM if digikam else PhotoPerson.source != SOURCE_DIGIKAM
    s.execute(delete(PhotoPerson).where(PhotoPerson.photo_id == photo.id, same))
    if regions and photo.width and photo.height:
        width, height = photo.width, photo.height
        taken = set(s.scalars(select(PhotoPerson.person_id).where(PhotoPerson.photo_id == photo.id)))
        for r in regions:  # the first region written for a person wins
            person = person_for(s, r.name)
            if person.id in taken:
                continue
            taken.add(person.id)
            x, y, w, h = (round(v) for v in (r.box[0] * width, r.box[1] * height, r.box[2] * width,
                                             r.box[3] * height))
            s.add(PhotoPerson(photo_id=photo.id, person_id=person.id, source=r.source, x=x, y=y, w=w, h=h))
        s.flush()
    rematch(s, photo)


def rematch(s: Session, photo: Photo) -> None:
    """Tie each named region of the photo to one of its faces by overlap (`match_regions`, the one
    matching rule, threshold MATCH_IOU), or to none."""
    rows = s.scalars(select(PhotoPerson).where(PhotoPerson.photo_id == photo.id).order_by(PhotoPerson.id)).all()
    if not rows:
        return
    faces = list(photo.faces)
    matches = match_regions([(r.x, r.y, r.w, r.h) for r in rows], [(f.x, f.y, f.w, f.h) for f in faces], MATCH_IOU)
    for row, match in zip(rows, matches, strict=True):
        row.face_id = None if match is None else faces[match].id


def store_digikam_regions(s: Session, regions_by_path: Mapping[str, Sequence[DigikamFace]]) -> tuple[int, int]:
    """digiKam's named face rectangles (`export.digikam.named_faces`) onto the indexed photos:
    each photo's digiKam regions are replaced.  Returns (photos, regions) stored."""
    photos = regions = 0
    for path, faces in regions_by_path.items():
        photo = s.scalar(select(Photo).where(Photo.path == path, Photo.status == STATUS_OK))
        if photo is None or not photo.width or not photo.height:
            continue
        named = [r for f in faces if (r := pixel_region(f.name, f.rect, f.drawn_on, photo.orientation,
                                                         (photo.width, photo.height))) is not None]
        store_regions(s, photo, named, digikam=True)
        photos += bool(named)
        regions += len(named)
    return photos, regions


def known_names(s: Session) -> list[str]:
    """Everyone on at least one indexed photo (what queries may name)."""
    return list(s.scalars(select(Person.name).join(PhotoPerson, PhotoPerson.person_id == Person.id)
                          .join(Photo, Photo.id == PhotoPerson.photo_id).where(Photo.status == STATUS_OK)
                          .group_by(Person.id, Person.name).order_by(Person.name)))


def people_summary(s: Session) -> list[dict[str, Any]]:
    """Each person: on how many photos, how many of those with their face found, and their face's
    emotions (top class) counted over those photos; most photographed first."""
    rows = s.execute(select(Person.name, Photo.id, Face.emotion)
                     .join(PhotoPerson, PhotoPerson.person_id == Person.id)
                     .join(Photo, Photo.id == PhotoPerson.photo_id)
                     .outerjoin(Face, Face.id == PhotoPerson.face_id)
                     .where(Photo.status == STATUS_OK)).all()
    by_name: dict[str, dict[str, Any]] = {}
    for name, _photo_id, emotion in rows:
        entry = by_name.setdefault(name, {"name": name, "photos": 0, "faces": 0, "emotions": dict.fromkeys(CLASSES, 0)})
        entry["photos"] += 1
        if emotion is not None:
            entry["faces"] += 1
            entry["emotions"][emotion] += 1
    return sorted(by_name.values(), key=lambda e: (-e["photos"], e["name"].casefold()))


def person_count(s: Session) -> int:
    return s.scalar(select(func.count(func.distinct(PhotoPerson.person_id)))) or 0
