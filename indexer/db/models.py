"""SQLAlchemy 2 models: photos, the faces found in them, and the people named in them.

`migrations/` (Alembic) owns the real schema; these classes describe it for the ORM and
Alembic's autogenerate.  Boxes are in the pixels of the displayed image, i.e. after the
EXIF orientation has been applied, so tools drawing them need no further rotation.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql import operators

# the status and date words moved to indexer.domain; kept importable from here for old callers
from indexer.domain import (  # noqa: F401
    CLASSES,
    DATE_EXIF,
    DATE_FILE,
    STATUS_DELETED,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_SKIPPED,
)
from indexer.paths import escape_path, unescape_path

_LIKE_OPS = {operators.like_op, operators.ilike_op, operators.not_like_op, operators.not_ilike_op}


class PathText(TypeDecorator):
    """A file path, stored as `paths.escape_path` text: any name the file system holds (bytes
    that are not UTF-8 included) fits SQLite and PostgreSQL `text`, and comes back as the same
    str os functions take.  Comparisons (=, IN, the range of `db.photos.under`) escape their
    operand the same way; a LIKE pattern is the caller's to build from escaped text."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect) -> str | None:  # noqa: ANN001
        return None if value is None else escape_path(value)

    def process_result_value(self, value: str | None, dialect) -> str | None:  # noqa: ANN001
        return None if value is None else unescape_path(value)

    def coerce_compared_value(self, op, value):  # noqa: ANN001, ANN201
        return Text() if op in _LIKE_OPS else self


class SafeText(TypeDecorator):
    """Free text that may quote a file name (an error message): a byte that is not UTF-8 is
    stored as `\\xNN`, so it never stops a batch from being stored."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect) -> str | None:  # noqa: ANN001
        if value is None:
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return escape_path(value)
        return value


class Base(DeclarativeBase):
    pass


class Photo(Base):
    __tablename__ = "photos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(PathText, unique=True)  # escaped text: see indexer.paths
    root: Mapped[str] = mapped_column(PathText, index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    content_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    taken_at: Mapped[datetime | None] = mapped_column(DateTime)  # local time of capture (naive)
    date_source: Mapped[str | None] = mapped_column(String(8))
    utc_offset_min: Mapped[int | None] = mapped_column(Integer)
    camera: Mapped[str | None] = mapped_column(Text)
    width: Mapped[int | None] = mapped_column(Integer)   # displayed (oriented) size
    height: Mapped[int | None] = mapped_column(Integer)
    orientation: Mapped[int | None] = mapped_column(Integer)  # EXIF orientation 1..8
    status: Mapped[str] = mapped_column(String(16), index=True)
    error: Mapped[str | None] = mapped_column(SafeText)
    # what libraries said while the file was read (libjpeg's "Corrupt JPEG data", libpng, exifread) and
    # metadata that could not be read: short lines, shown by `show` and `errors`; None when there were none
    warnings: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    face_count: Mapped[int] = mapped_column(Integer, default=0)
    model_version: Mapped[str | None] = mapped_column(String(64))
    detector: Mapped[str | None] = mapped_column(String(64))
    indexed_at: Mapped[datetime] = mapped_column(DateTime)
    # the photo's .xmp sidecars as last read (sizes, mtimes, inodes; media.tagstate.sidecar_signature):
    # a sidecar-only edit changes it, and the next scan re-reads the metadata without the models
    sidecars: Mapped[str | None] = mapped_column(String(32))

    faces: Mapped[list[Face]] = relationship(
        back_populates="photo", cascade="all, delete-orphan", passive_deletes=True, order_by="Face.idx"
    )
    # everyone named on the photo, face found or not (photo_people)
    people: Mapped[list[Person]] = relationship(secondary="photo_people", viewonly=True, lazy="selectin",
                                                order_by="Person.name")

    __table_args__ = (Index("ix_photos_status_taken", "status", "taken_at"),)


# newest first, undated last, then by path: the order of a query without emotion words (migration
# 0006 adds NULLS LAST on PostgreSQL, where it is not what DESC means)
Index("ix_photos_status_newest", Photo.status, Photo.taken_at.desc(), Photo.path)


class Face(Base):
    __tablename__ = "faces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"))
    idx: Mapped[int] = mapped_column(Integer)
    x: Mapped[int] = mapped_column(Integer)
    y: Mapped[int] = mapped_column(Integer)
    w: Mapped[int] = mapped_column(Integer)
    h: Mapped[int] = mapped_column(Integer)
    confidence: Mapped[float] = mapped_column(Float)
    angry: Mapped[float] = mapped_column(Float)
    disgust: Mapped[float] = mapped_column(Float)
    fear: Mapped[float] = mapped_column(Float)
    happy: Mapped[float] = mapped_column(Float)
    sad: Mapped[float] = mapped_column(Float)
    surprise: Mapped[float] = mapped_column(Float)
    neutral: Mapped[float] = mapped_column(Float)
    emotion: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float)
    # emotion and score are the user's (a Correction), not the model's; the seven
    # probabilities stay the model's, so clearing the correction restores its answer
    corrected: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    photo: Mapped[Photo] = relationship(back_populates="faces")
    # who this face is, when a named region in the metadata matched it (photo_people)
    person: Mapped[Person | None] = relationship(secondary="photo_people", viewonly=True, lazy="selectin")

    __table_args__ = (
        Index("ix_faces_photo", "photo_id"),
        Index("ix_faces_emotion_score", "emotion", "score"),
    )

    def scores(self) -> dict[str, float]:
        return {c: getattr(self, c) for c in CLASSES}


class Run(Base):
    """One `index` or `watch` pass, for `status` ("last run")."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    roots: Mapped[str] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)  # JSON counts


class Person(Base):
    """A name read from a photo's metadata.  `key` is the name casefolded, so "anna lind" and
    "Anna Lind" are one person; `name` keeps the spelling first seen."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    key: Mapped[str] = mapped_column(String(255), unique=True)


class PhotoPerson(Base):
    """A named region of a photo: who, where (displayed-photo pixels) and, when a detected face lies
    there, which face.  A region no face matched keeps `face_id` empty: the person is still on
    the photo.  Rebuilt from the metadata whenever the photo is (re)read."""

    __tablename__ = "photo_people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    face_id: Mapped[int | None] = mapped_column(ForeignKey("faces.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(16))  # mwg | microsoft | digikam
    x: Mapped[int] = mapped_column(Integer)
    y: Mapped[int] = mapped_column(Integer)
    w: Mapped[int] = mapped_column(Integer)
    h: Mapped[int] = mapped_column(Integer)

    person: Mapped[Person] = relationship()

    __table_args__ = (
        Index("ix_photo_people_photo", "photo_id"),
        Index("ix_photo_people_person", "person_id"),
        Index("ix_photo_people_face", "face_id"),
        UniqueConstraint("photo_id", "person_id", name="uq_photo_people_photo_person"),
    )


class Correction(Base):
    """The user's word on one face, kept apart from model output so that nothing the models do
    overwrites it.  Keyed by the photo's content fingerprint and the face's box (displayed
    pixels): a move, a rename, a metadata edit, `index --force` or a new model keep both, and
    the correction is laid again on whichever face then lies there (db/corrections.py)."""

    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    x: Mapped[int] = mapped_column(Integer)
    y: Mapped[int] = mapped_column(Integer)
    w: Mapped[int] = mapped_column(Integer)
    h: Mapped[int] = mapped_column(Integer)
    emotion: Mapped[str | None] = mapped_column(String(16))  # None with not_a_face or not_emotion
    not_a_face: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # "not this emotion": an Emotion tag the user removed in digiKam or darktable
    not_emotion: Mapped[str | None] = mapped_column(String(16))
    # about the photo, not one face (a tag changed on a photo with several faces); the box is empty
    photo_level: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    source: Mapped[str] = mapped_column(String(8), default="cli", server_default="cli")  # cli | tags

    __table_args__ = (Index("ix_corrections_content_hash", "content_hash"),)
