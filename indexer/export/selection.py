"""Which indexed photos a `tag`/`untag`/`digikam sync` run visits."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from indexer.db.models import Photo
from indexer.domain import STATUS_OK
from indexer.export.safety import sidecar_path
from indexer.query import QueryError, parse, search


class SelectionError(ValueError):
    """The query text is invalid; the message says why."""


def _query_photos(session: Session, text: str, min_score: float | None) -> list[Photo]:
    try:
        kwargs = {} if min_score is None else {"min_score": min_score}
        matches = search(session, parse(text), limit=None, **kwargs)
    except QueryError as exc:
        raise SelectionError(str(exc)) from exc
    seen: dict[int, Photo] = {}
    for match in matches:
        photo = match.photo
        if photo.status == STATUS_OK:
            seen.setdefault(photo.id, photo)
    return sorted(seen.values(), key=lambda p: p.path)


def photos_to_tag(session: Session, query: str | None = None, *, min_score: float | None = None,
                  with_old_sidecars: bool = True, exists: Callable[[str], bool] = os.path.exists) -> list[Photo]:
    """With a query: the photos it matches.  Without: every indexed photo with faces, plus (for
    sidecar runs) faceless photos that have a sidecar, so tags we wrote before a model change that
    no longer finds a face are taken back."""
    if query:
        return _query_photos(session, query, min_score)
    stmt = (select(Photo).where(Photo.status == STATUS_OK).options(selectinload(Photo.faces))
            .order_by(Photo.path))
    photos = session.scalars(stmt).all()
    return [p for p in photos
            if p.face_count > 0 or p.faces or (with_old_sidecars and exists(str(sidecar_path(Path(p.path)))))]


def photos_to_untag(session: Session, query: str | None = None) -> list[Photo]:
    """With a query: the photos it matches; without: every indexed photo."""
    if query:
        return _query_photos(session, query, None)
    stmt = select(Photo).where(Photo.status == STATUS_OK).order_by(Photo.path)
    return list(session.scalars(stmt).all())

