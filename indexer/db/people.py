"""The people tables: names read from metadata, tied to the faces the detector found.

A photo's named regions are rebuilt whenever the photo is stored (a new analysis, or a
metadata-only edit that kept its faces), so a name added, renamed or removed in digiKam or
Lightroom is what the index says after the next `index`.  Each region is matched to a detected
face by overlap (`media.regions.match_regions`, threshold `MATCH_IOU`); a region no face matches
stays on the photo with no face."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from indexer.db.models import Face, Person, Photo, PhotoPerson
from indexer.domain import CLASSES, STATUS_OK, clean_name, person_key
from indexer.media.regions import MATCH_IOU, NamedRegion, match_regions


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
    if photo.id is not None:
        s.execute(delete(PhotoPerson).where(PhotoPerson.photo_id == photo.id))


def store_regions(s: Session, photo: Photo, regions: Sequence[NamedRegion]) -> None:
    """Replace the photo's named regions with `regions` (normalised, displayed frame), matching
    each to one of the photo's faces."""
    s.flush()  # the photo and its faces need their ids
    clear_regions(s, photo)
    if not regions or not photo.width or not photo.height:
        return
    width, height = photo.width, photo.height
    seen: set[str] = set()
    unique = []
    for r in regions:  # one region per person and photo: the first one written
        if person_key(r.name) not in seen:
            seen.add(person_key(r.name))
            unique.append(r)
    boxes = [(r.box[0] * width, r.box[1] * height, r.box[2] * width, r.box[3] * height) for r in unique]
    faces = list(photo.faces)
    matches = match_regions(boxes, [(f.x, f.y, f.w, f.h) for f in faces], MATCH_IOU)
    for region, box, match in zip(unique, boxes, matches, strict=True):
        x, y, w, h = (round(v) for v in box)
        s.add(PhotoPerson(photo_id=photo.id, person_id=person_for(s, region.name).id,
                          face_id=None if match is None else faces[match].id,
                          source=region.source, x=x, y=y, w=w, h=h))


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
