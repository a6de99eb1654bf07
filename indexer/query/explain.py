"""Why a query found nothing: the counts with each of its parts dropped.

"the 20 happiest pictures of last summer" on photos copied today finds nothing because their
only date is the copy's file time; saying "12 match without 2023-06-01..2023-08-31, all 12
dated by file time" turns a silent empty result into the next step."""

from __future__ import annotations

from sqlalchemy.orm import Session

from indexer.query import filters
from indexer.query.engine import count_matches
from indexer.query.parse import Query


def _counted(total: int, estimated: int) -> str:
    if total == 0:
        return "no photos match either"
    text = f"{total} photo{'s' if total != 1 else ''} match{'es' if total == 1 else ''}"
    if estimated:
        whom = ("it is" if total == 1 else "all of them are" if estimated == total
                else f"{estimated} of them {'is' if estimated == 1 else 'are'}")
        text += f" ({whom} dated by file time: no EXIF or XMP date, and a copied file's time is when it was copied)"
    return text


def explain_empty(session: Session, query: Query, min_score: float | None = None,
                  exif_only: bool = False) -> list[str]:
    """One line per part of the query that could be dropped: what would match without it."""
    lines = []
    for flt in filters.FILTERS:
        relaxed = flt.without(query)
        if relaxed == query or flt is filters.filter_for("top"):  # a count never empties a result
            continue
        part = ", ".join(flt.describe(query))
        lines.append(f"without {part}: {_counted(*count_matches(session, relaxed, min_score, exif_only))}")
    if min_score is not None:
        lines.append(f"without --min-score {min_score:g}: "
                     f"{_counted(*count_matches(session, query, None, exif_only))}")
    if exif_only:
        lines.append(f"without --exif-only: {_counted(*count_matches(session, query, min_score, False))}")
    return lines
