"""A `Query` -> one SQL select over the index -> ranked `Match`es.

Ranking.  With emotion words, a photo's score is the highest probability among its faces
whose top class is one of the asked emotions (max over faces: one crying child makes a sad
photo, however many neutral bystanders).  A face counts only when that emotion is its top
class, so "sad" never returns a photo of smiling people with a 10 % sad face.  Results run
by descending score, ties newest first, then by path.  Without emotion words the results
are every matching photo with faces, newest first (undated last); each still reports its
dominant face's emotion and probability.

People.  With names (`person:` or names in the words) and emotion words, only the named people's
own faces are ranked: "happy photos of Anna" is scored by Anna's smile, not a bystander's.

Speed.  An emotion query reads faces best-first along the (emotion, score) index, one stream
per asked emotion merged in Python, and stops as soon as `limit` distinct photos are found,
instead of grouping and sorting every sad face in the library.  Which side a query starts from is
counted, not guessed: up to FEW_PHOTOS matching photos, their faces are ranked directly; up to
FROM_PHOTOS_MAX (a month of a large library), the streams read the matching photos and sort
their faces; beyond that they walk the emotion's faces.  A query without emotions walks
the (status, taken_at DESC, path) index newest first with LIMIT.  Only then are the ORM rows and
faces of the photos returned loaded.  See `benchmarks/query_bench.py` (100,000 photos) and
`benchmarks/query_scale.py` (1,000,000, SQLite and PostgreSQL) for figures and plans.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import ColumnElement, Row, Select, case, exists, func, literal_column, null, or_, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from indexer.db import path_index
from indexer.db.models import Face, Person, Photo, PhotoPerson
from indexer.db.path_index import narrowed_texts
from indexer.domain import DATE_FILE, STATUS_OK, TRUSTED_DATE_SOURCES, date_is_estimated
from indexer.paths import escape_path
from indexer.query import filters
from indexer.query.parse import Query

LOAD_CHUNK = 500  # photo ids per IN (...) when loading rows: far below SQLite's variable limit
FEW_PHOTOS = 2000  # below this many candidate photos, rank their faces directly instead of streaming
FROM_PHOTOS_MAX = 10_000  # up to this many, the face streams start from the photos, not the emotion's faces
assert path_index.NARROW_MAX <= FROM_PHOTOS_MAX  # a narrowed path: few enough photos to start from
STREAM_PAGE_MAX = 4096  # rows in the largest page of a best-first face stream (the first has ~limit)


@dataclass(frozen=True)
class Match:
    """One result: the photo row (faces loaded), its score for the query and the emotion behind it.

    `face` is the face that gave the score (None for a photo without faces)."""

    photo: Photo
    score: float | None
    emotion: str | None
    faces: int
    face: Face | None = None

    @property
    def date_estimated(self) -> bool:
        """True when the date is the file's time, not one from EXIF or XMP."""
        return date_is_estimated(self.photo.date_source)


def photo_conditions(query: Query, exif_only: bool = False) -> list[ColumnElement[bool]]:
    """WHERE terms on `photos` shared by every kind of query: what each filter adds (filters.py)."""
    conds: list[ColumnElement[bool]] = [Photo.status == STATUS_OK]
    if exif_only:
        conds.append(Photo.date_source.in_(TRUSTED_DATE_SOURCES))  # XMP dates are the photo's too
    for flt in filters.FILTERS:
        conds.extend(flt.conditions(query))
    return conds


def with_path_plan(session: Session, query: Query) -> Query:
    """`query` with the path texts SQLite's trigram index should narrow (db/path_index.py)."""
    if not query.paths:
        return query
    return replace(query, narrowed_paths=narrowed_texts(session, map(escape_path, query.paths)))


def emotion_select(emotion: str, query: Query, min_score: float | None = None, exif_only: bool = False,
                   from_photos: bool = False) -> Select:
    """Faces whose top class is `emotion` on matching photos, best first: (photo id, score, taken_at, path,
    face id).

    Ordered by the (emotion, score) index (ties by face id: SQLite's index ends with it, PostgreSQL
    sorts only the ties), so the database walks it backwards and `search` can stop reading as
    soon as it has enough distinct photos.  That walk reads about (rows wanted) x (photos) /
    (matching photos) faces: with a few thousand matching photos in a million (a month),
    thousands of faces, each with its photo looked up.  `from_photos` is for those: the emotion
    test is made one the index cannot serve (`emotion || ''`, the idiom both databases know), so
    the database reads the matching photos by their own index, their faces by ix_faces_photo,
    and sorts those few; SQLite, without statistics, would otherwise always walk the emotion, and
    PostgreSQL's estimate chose it for a common emotion too (2 s for "happy in March 2019")."""
    threshold = _threshold(query, min_score)
    tested = Face.emotion.concat(literal_column("''")) if from_photos else Face.emotion
    conds = [tested == emotion, *photo_conditions(query, exif_only)]
    if (named := _named_faces(query)) is not None:
        conds.append(Face.id.in_(named))
    if threshold is not None:
        conds.append(Face.score >= threshold)
    return (
        select(Face.photo_id, Face.score, Photo.taken_at, Photo.path, Face.id.label("face_id"))
        .join(Photo, Photo.id == Face.photo_id)
        .where(*conds)
        .order_by(Face.score.desc(), Face.id.desc())
    )


def date_select(query: Query, limit: int | None = 20, min_score: float | None = None,
                exif_only: bool = False) -> Select:
    """Photos for a query without emotion words, newest first: (photo id, NULL)."""
    threshold = _threshold(query, min_score)
    conds = photo_conditions(query, exif_only)
    if threshold is not None:
        conds.append(exists().where(Face.photo_id == Photo.id, Face.score >= threshold))
    # undated photos last on every database: SQLite's DESC does so already (and still walks the index);
    # PostgreSQL sorts NULL highest, so without NULLS LAST they would come first
    newest: ColumnElement = Photo.taken_at
    if query.narrowed_paths:  # SQLite only (path_index): at most NARROW_MAX photos, listed by the
        # trigram table; `+taken_at` keeps SQLite from walking the newest-first index until they come
        # (0.5 s for `path:event00042`) and has it sort those few instead
        newest = UnaryExpression(Photo.taken_at, operator=custom_op("+"), type_=Photo.taken_at.type)
    stmt = (select(Photo.id, null().label("score")).where(*conds)
            .order_by(newest.desc().nulls_last(), Photo.path))
    if limit is not None and limit > 0:
        stmt = stmt.limit(limit)
    return stmt


def _best_first(session: Session, stmt: Select, first: int) -> Iterator[Row]:
    """The rows of a best-first face select (`emotion_select`), read in pages of `first` rows, then
    8x more each time: each page is the same query with a LIMIT, continuing after the last row
    (score, face id) of the one before.  A LIMIT is what makes every database plan it as a walk
    down the (emotion, score) index that stops early (PostgreSQL, asked for the whole result,
    joined and sorted every face of that emotion first: seconds at a million photos), and a
    small first page is what keeps a selective filter ("in March 2019") from walking tens of
    thousands of faces to fill a page nobody reads."""
    size, after = first, None
    while True:
        page = stmt
        if after is not None:
            score, face_id = after
            page = stmt.where(Face.score <= score, or_(Face.score < score, Face.id < face_id))
        # Core execution: the ORM would build objects for rows that are never looked at
        rows = session.connection().execute(page.limit(size)).all()
        yield from rows
        if len(rows) < size:
            return
        after = (rows[-1].score, rows[-1].face_id)
        size = min(size * 8, STREAM_PAGE_MAX)


def _ranked_by_emotion(session: Session, query: Query, limit: int | None, min_score: float | None,
                       exif_only: bool) -> list[int]:
    """Photo ids in result order for a query with emotion words.

    When the photo filters leave few photos (a rare path, a short date range) their faces are
    read directly; otherwise the best-first face streams are merged, which stops early, started
    from the matching photos while they are at most FROM_PHOTOS_MAX (see emotion_select)."""
    conds = photo_conditions(query, exif_only)
    candidates = session.connection().execute(
        select(Photo.id, Photo.taken_at, Photo.path).where(*conds).limit(FEW_PHOTOS + 1)).all()
    if len(candidates) <= FEW_PHOTOS:
        return _rank_few(session, query, candidates, limit, min_score)
    return _rank_streamed(session, query, limit, min_score, exif_only, _few_enough_to_start_from(session, query))


def _few_enough_to_start_from(session: Session, query: Query) -> bool:
    """Whether the face streams should start from the matching photos (emotion_select): at most
    FROM_PHOTOS_MAX of them.  Counted, not guessed, and cheaply: a path the trigram index narrows
    is in at most path_index.NARROW_MAX photos already; a date range is counted on the (status,
    taken_at) index alone, stopping past the bound, without reading a row (its photos are what
    that plan reads); other filters (faces, people) rarely leave so few, and are not counted."""
    if query.narrowed_paths:
        return True
    if query.start is None and query.end is None:
        return False
    dated = select(Photo.id).where(Photo.status == STATUS_OK, *filters.filter_for("date").conditions(query))
    counted = select(func.count()).select_from(dated.limit(FROM_PHOTOS_MAX + 1).subquery())
    return session.connection().execute(counted).scalar_one() <= FROM_PHOTOS_MAX


def _order(best: dict[int, tuple[float, datetime | None, str]], limit: int | None) -> list[int]:
    """Descending score, ties newest first (undated last), then by path."""
    ids = sorted(best, key=lambda i: best[i][2])
    ids.sort(key=lambda i: (best[i][1] is not None, best[i][1] or datetime.min), reverse=True)
    ids.sort(key=lambda i: best[i][0], reverse=True)
    return ids[:limit] if limit else ids


def _rank_few(session: Session, query: Query, candidates: Sequence[Row], limit: int | None,
              min_score: float | None) -> list[int]:
    info = {r.id: (r.taken_at, r.path) for r in candidates}
    threshold = _threshold(query, min_score)
    best: dict[int, tuple[float, datetime | None, str]] = {}
    ids = list(info)
    wanted = set(query.emotions)
    for i in range(0, len(ids), LOAD_CHUNK):
        # filter emotion and score here: with them in SQL, SQLite prefers the emotion index and
        # walks every face of that emotion instead of the few photos' faces
        stmt = select(Face.photo_id, Face.emotion, Face.score).where(Face.photo_id.in_(ids[i:i + LOAD_CHUNK]))
        if (named := _named_faces(query)) is not None:
            stmt = stmt.where(Face.id.in_(named))
        for pid, emotion, score in session.connection().execute(stmt):
            if emotion in wanted and (threshold is None or score >= threshold) and (
                    pid not in best or score > best[pid][0]):
                best[pid] = (score, *info[pid])
    return _order(best, limit)


def _rank_streamed(session: Session, query: Query, limit: int | None, min_score: float | None,
                   exif_only: bool, from_photos: bool = False) -> list[int]:
    """Merge one best-first stream per emotion; keep each photo's first (= highest) face; stop once
    `limit` photos are in hand and the next score is lower (rows tied with the last are kept so
    that ties are ordered by date without sorting every face)."""
    first = limit + limit // 2 + 4 if limit else STREAM_PAGE_MAX  # a photo has several faces: a margin
    streams = [_best_first(session, emotion_select(e, query, min_score, exif_only, from_photos), first)
               for e in query.emotions]
    rows = heapq.merge(*streams, key=lambda r: -r.score) if len(streams) > 1 else streams[0]
    best: dict[int, tuple[float, datetime | None, str]] = {}
    cutoff: float | None = None
    with _serial_on_postgresql(session, not from_photos):
        for row in rows:
            if cutoff is not None and row.score < cutoff:
                break
            if row.photo_id in best:
                continue
            best[row.photo_id] = (row.score, row.taken_at, row.path)
            if limit and cutoff is None and len(best) >= limit:
                cutoff = row.score
    return _order(best, limit)


@contextmanager
def _serial_on_postgresql(session: Session, active: bool) -> Iterator[None]:
    """No parallel workers for PostgreSQL's walks down the emotion's index (this transaction's
    setting, put back after).  Such a walk stops after a few hundred rows; planned in parallel, it
    started two workers that each walked their own share ahead while the leader merged: 7,000
    faces for 34 rows, 150-200 ms for `disgusted in 2019` at a million photos, 40-64 ms serial
    (benchmarks/query_scale.py).  The reads that start from photos keep what the planner chooses."""
    conn = session.connection()
    if not active or conn.dialect.name != "postgresql":
        yield
        return
    setting = "max_parallel_workers_per_gather"
    before = conn.execute(select(func.current_setting(setting))).scalar_one()
    conn.execute(select(func.set_config(setting, "0", True)))
    try:
        yield
    finally:
        conn.execute(select(func.set_config(setting, before, True)))


def _threshold(query: Query, min_score: float | None) -> float | None:
    values = [s for s in (query.min_score, min_score) if s is not None]
    return max(values) if values else None


def _named_faces(query: Query) -> Select | None:
    """The faces of the people the query names (None when it names nobody)."""
    keys = filters.person_keys(query)
    if not keys:
        return None
    return (select(PhotoPerson.face_id).join(Person, Person.id == PhotoPerson.person_id)
            .where(Person.key.in_(keys), PhotoPerson.face_id.is_not(None)))


def _best_face(faces: Sequence[Face], emotions: Sequence[str], people: Sequence[str] = ()) -> Face | None:
    candidates = [f for f in faces if (not emotions or f.emotion in emotions)
                  and (not people or (f.person is not None and f.person.key in people))]
    return max(candidates, key=lambda f: f.score, default=None)


def search(session: Session, query: Query, limit: int | None = 20, min_score: float | None = None,
           exif_only: bool = False, *, load_faces: bool = True) -> list[Match]:
    """Photos matching `query`, best first; only photos with status 'ok' are ever returned.

    `limit` None (or <= 0) returns every match; `min_score` (0..1) drops photos whose score is
    lower (with no emotion asked, the dominant face's probability); `exif_only` drops photos
    dated by file time.  `load_faces=False` is for callers wanting many matches but not the
    boxes (tagging a whole library): `photo.faces` is then not preloaded and `Match.face` is
    None, which makes 40,000 matches about three times quicker.  A count in the query ("the 20
    happiest", top:20) cuts the results too: the smaller of the two wins."""
    if query.top is not None:
        limit = query.top if not limit or limit <= 0 else min(limit, query.top)
    query = with_path_plan(session, query)
    if query.emotions:
        ids = _ranked_by_emotion(session, query, limit, min_score, exif_only)
    else:
        ids = [row[0] for row in session.execute(date_select(query, limit, min_score, exif_only))]
    by_id: dict[int, Photo] = {}
    best: dict[int, tuple[str, float]] = {}  # photo id -> (emotion, score), when faces are not loaded
    wanted = set(query.emotions)
    for i in range(0, len(ids), LOAD_CHUNK):
        chunk = ids[i:i + LOAD_CHUNK]
        stmt = select(Photo).where(Photo.id.in_(chunk))
        if load_faces:
            stmt = stmt.options(selectinload(Photo.faces))
        else:
            faces = select(Face.photo_id, Face.emotion, Face.score).where(Face.photo_id.in_(chunk))
            if wanted and (named := _named_faces(query)) is not None:
                faces = faces.where(Face.id.in_(named))
            for pid, emotion, score in session.connection().execute(faces):
                if (not wanted or emotion in wanted) and (pid not in best or score > best[pid][1]):
                    best[pid] = (emotion, score)
        by_id.update((p.id, p) for p in session.scalars(stmt))
    matches = []
    for pid in ids:
        photo = by_id[pid]
        if load_faces:
            face = _best_face(photo.faces, query.emotions, filters.person_keys(query) if query.emotions else ())
            emotion, score = (face.emotion, face.score) if face is not None else (None, None)
        else:
            face = None
            emotion, score = best.get(pid, (None, None))
        matches.append(Match(photo=photo, score=score, emotion=emotion, faces=photo.face_count, face=face))
    return matches


def count_matches(session: Session, query: Query, min_score: float | None = None,
                  exif_only: bool = False) -> tuple[int, int]:
    """(photos matching `query`, how many of them are dated by file time), ignoring the count it
    asks for: what an empty result's explanation quotes for the query with one part dropped."""
    conds = photo_conditions(with_path_plan(session, query), exif_only)
    threshold = _threshold(query, min_score)
    face_conds = [Face.photo_id == Photo.id]
    if query.emotions:
        face_conds.append(Face.emotion.in_(query.emotions))
    if threshold is not None:
        face_conds.append(Face.score >= threshold)
    if len(face_conds) > 1:
        conds.append(exists().where(*face_conds))
    stmt = select(func.count(), func.coalesce(func.sum(case((Photo.date_source == DATE_FILE, 1), else_=0)), 0))
    total, estimated = session.execute(stmt.select_from(Photo).where(*conds)).one()
    return int(total), int(estimated)


def count_indexed(session: Session) -> int:
    """Photos with status 'ok' (to tell "no match" from "nothing indexed yet")."""
    return session.scalar(select(func.count()).select_from(Photo).where(Photo.status == STATUS_OK)) or 0
