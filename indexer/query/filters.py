"""The `key:value` filters of the query language, one entry each (beets' queryparse is the model).

A filter says which keys it answers to, how a value is read (into the `Terms` a query is built
from), how the finished `Query` describes it, and which SQL conditions on `photos` it adds.
Adding a filter means adding one class to `FILTERS` and one test; the parser,
`Query.describe`, the engine, the error messages and the CLI help all read this list.

Words ("sad", "2019", "group") fill the same `Terms` as the filters, so `emotion:sad` and "sad"
mean the same thing; a filter that no word sets keeps its values in `Query.extra`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from indexer.domain import CLASSES, person_key
from indexer.query.parse import (
    EMOTION_WORDS,
    QueryError,
    _iso,
    _iso_range,
    _open_span,
    _Span,
    _suggest,
)

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement

    from indexer.query.parse import Query


@dataclass
class Terms:
    """What the words and filters of one query asked for, before they are combined into a Query."""

    emotions: list[str] = field(default_factory=list)
    spans: list[_Span] = field(default_factory=list)
    face_bounds: list[tuple[int, int | None]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    tops: list[int] = field(default_factory=list)
    extra: list[tuple[str, str]] = field(default_factory=list)  # (filter name, value) for other filters
    people: list[str] | None = None  # the names the index knows, when the caller said (parse's `people`)


class Filter:
    """One filter: override `read` (value -> Terms), `describe` and `conditions` as needed."""

    name: ClassVar[str]
    keys: ClassVar[tuple[str, ...]]
    example: ClassVar[str]          # shown when a value is missing
    help_examples: ClassVar[tuple[str, ...]]  # the CLI help's examples

    def read(self, key: str, value: str, terms: Terms) -> None:
        terms.extra.append((self.name, value))

    def describe(self, query: Query) -> list[str]:
        return []

    def conditions(self, query: Query) -> list[ColumnElement[bool]]:
        return []

    def without(self, query: Query) -> Query:
        """`query` with this filter's part dropped (to explain an empty result)."""
        return replace(query, extra=tuple((n, v) for n, v in query.extra if n != self.name))

    def example_for(self, key: str) -> str:
        return self.example if key == self.keys[0] else f"{key}:{self.example.split(':', 1)[1]}"


class EmotionFilter(Filter):
    """emotion:sad, mood:happy,surprised.  Emotions rank results; the engine reads them itself."""

    name, keys, example = "emotion", ("emotion", "mood"), "emotion:sad"
    help_examples = ("emotion:sad",)

    def read(self, key: str, value: str, terms: Terms) -> None:
        found = []
        for part in re.split(r"[,|+/]", value.lower()):
            if not part:
                continue
            if part not in EMOTION_WORDS and part not in CLASSES:
                hint = _suggest(part, sorted(set(EMOTION_WORDS) | set(CLASSES)))
                raise QueryError(f"{key}:{value}: unknown emotion {part!r}"
                                 + (f" (did you mean {', '.join(hint)}?)" if hint
                                    else f" (known: {', '.join(CLASSES)})"))
            found.append(EMOTION_WORDS.get(part, part))
        if not found:
            raise QueryError(f"{key}: needs an emotion, e.g. {key}:sad")
        terms.emotions.extend(found)

    def example_for(self, key: str) -> str:
        return {"emotion": "emotion:sad", "mood": "mood:happy"}[key]

    def describe(self, query: Query) -> list[str]:
        return [" or ".join(query.emotions)] if query.emotions else ["any emotion"]

    def without(self, query: Query) -> Query:
        return replace(query, emotions=())


class DateFilter(Filter):
    """year:2019 year:2018..2020 date:2019-06 after:2019-06-01 before:2020 since:… until:…"""

    name, keys, example = "date", ("year", "date", "after", "before", "since", "until"), "year:2019"
    help_examples = ("year:2019", "year:2018..2020", "date:2019-06", "after:2019-06-01", "before:2020")

    def read(self, key: str, value: str, terms: Terms) -> None:
        v = value.strip()
        if key in ("year", "date"):
            span = _iso_range(v) or _iso(v)
            if span is None or (key == "year"
                                and not re.fullmatch(r"\d{4}|\d{4}(\.\.|-)\d{4}|\.\.\d{4}|\d{4}\.\.", v)):
                raise QueryError(f"{key}:{value}: expected "
                                 + ("a year or range like year:2019 or year:2018..2020" if key == "year"
                                    else "a date like date:2019, date:2019-06, date:2019-06-01 or a range a..b"))
            terms.spans.append(span)
            return
        span = _iso(v)
        if span is None:
            raise QueryError(f"{key}:{value}: expected a date like {key}:2019, {key}:2019-06 or {key}:2019-06-01")
        terms.spans.append(_open_span(key, span))

    def example_for(self, key: str) -> str:
        return f"{key}:2019"

    def describe(self, query: Query) -> list[str]:
        if not (query.start or query.end):
            return []
        start = query.start.date().isoformat() if query.start else "…"
        end = (query.end - timedelta(microseconds=1)).date().isoformat() if query.end else "…"
        return [start if start == end else f"{start}..{end}"]

    def conditions(self, query: Query) -> list[ColumnElement[bool]]:
        from indexer.db.models import Photo

        out = []
        if query.start is not None:
            out.append(Photo.taken_at >= query.start)
        if query.end is not None:
            out.append(Photo.taken_at < query.end)
        return out

    def without(self, query: Query) -> Query:
        return replace(query, start=None, end=None)


def faces_bounds(value: str) -> tuple[int, int | None]:
    """'2' -> (2, 2), '2+' -> (2, None), '1..3' or '1-3' -> (1, 3)."""
    v = value.strip()
    if m := re.fullmatch(r"(\d+)\+", v):
        return int(m.group(1)), None
    if re.fullmatch(r"\d+", v):
        return int(v), int(v)
    if m := re.fullmatch(r"(\d+)(?:\.\.|-)(\d+)", v):
        lo, hi = int(m.group(1)), int(m.group(2))
        if hi < lo:
            raise QueryError(f"faces:{value}: the range ends before it starts")
        return lo, hi
    raise QueryError(f"faces:{value}: expected a count like faces:2, faces:2+ or faces:1..3")


class FacesFilter(Filter):
    """faces:2 faces:2+ faces:1..3.  Without it (or a word like "group"), only photos with faces match."""

    name, keys, example = "faces", ("faces",), "faces:2+"
    help_examples = ("faces:2+", "faces:1..3")

    def read(self, key: str, value: str, terms: Terms) -> None:
        terms.face_bounds.append(faces_bounds(value))

    def describe(self, query: Query) -> list[str]:
        lo, hi = query.min_faces, query.max_faces
        if lo is None and hi is None:
            return []
        return [f"{lo} face{'s' if lo != 1 else ''}" if lo == hi
                else f"{lo}+ faces" if hi is None else f"{lo or 0}..{hi} faces"]

    def conditions(self, query: Query) -> list[ColumnElement[bool]]:
        from indexer.db.models import Photo

        if query.min_faces is None and query.max_faces is None:
            # "every indexed photo with faces"; a named person counts too, seen by the detector or not
            return [] if extra_values(query, "person") else [Photo.face_count >= 1]
        out = []
        if query.min_faces:
            out.append(Photo.face_count >= query.min_faces)
        if query.max_faces is not None:
            out.append(Photo.face_count <= query.max_faces)
        return out

    def without(self, query: Query) -> Query:
        return replace(query, min_faces=None, max_faces=None)


class PathFilter(Filter):
    """path:Trips — a case-insensitive substring of the path; several must all occur."""

    name, keys, example = "path", ("path",), "path:Trips"
    help_examples = ("path:Trips",)

    def read(self, key: str, value: str, terms: Terms) -> None:
        terms.paths.append(value)

    def describe(self, query: Query) -> list[str]:
        return [f"path contains {p!r}" for p in query.paths]

    def conditions(self, query: Query) -> list[ColumnElement[bool]]:
        from indexer.db.models import Photo
        from indexer.db.path_index import path_contains
        from indexer.paths import escape_path

        # case-insensitive on every database: "path:trips" finds .../Trips/... (ILIKE on PostgreSQL,
        # lower() LIKE lower() on SQLite, whose plain LIKE already ignores ASCII case); the text is
        # the stored (escaped) form, so a name that is not UTF-8 is found too; path_index.py says
        # how the trigram index (migration 0008) serves it
        return [path_contains(Photo.path, text, narrow=text in query.narrowed_paths)
                for text in map(escape_path, query.paths)]

    def without(self, query: Query) -> Query:
        return replace(query, paths=(), narrowed_paths=frozenset())


class ScoreFilter(Filter):
    """score:0.7 or score:70% — the face's probability floor; applied to faces by the engine."""

    name, keys, example = "score", ("score",), "score:0.7"
    help_examples = ("score:0.7",)

    def read(self, key: str, value: str, terms: Terms) -> None:
        v = value.strip().lstrip(">=")
        try:
            s = float(v[:-1]) / 100 if v.endswith("%") else float(v)
        except ValueError:
            raise QueryError(f"score:{value}: expected a number between 0 and 1, e.g. score:0.7") from None
        if not 0.0 <= s <= 1.0:
            raise QueryError(f"score:{value}: expected a number between 0 and 1 (or a percentage)")
        terms.scores.append(s)

    def describe(self, query: Query) -> list[str]:
        return [] if query.min_score is None else [f"score >= {query.min_score:g}"]

    def without(self, query: Query) -> Query:
        return replace(query, min_score=None)


class TopFilter(Filter):
    """top:10 — at most this many results (words: "the 10 happiest", "top 10 surprised")."""

    name, keys, example = "top", ("top",), "top:10"
    help_examples = ("top:10",)

    def read(self, key: str, value: str, terms: Terms) -> None:
        if not re.fullmatch(r"\d{1,6}", value.strip()) or int(value) < 1:
            raise QueryError(f"top:{value}: expected a number of results of at least 1, e.g. top:10")
        terms.tops.append(int(value))

    def describe(self, query: Query) -> list[str]:
        return [] if query.top is None else [f"top {query.top}"]

    def without(self, query: Query) -> Query:
        return replace(query, top=None)


def person_keys(query: Query) -> list[str]:
    """The people a query names (`person:` or names in its words), as people-table keys."""
    return list(dict.fromkeys(person_key(v) for v in extra_values(query, "person")))


class PersonFilter(Filter):
    """person:"Anna Lind" — someone named in the photo's metadata (case-insensitive; several must
    all be there).  Names in free text ("photos of Anna Lind") come here too.  With emotion words,
    the named person's own face must show one of them, not just anyone's in the photo."""

    name, keys, example = "person", ("person", "who"), 'person:"Anna Lind"'
    help_examples = ('person:"Anna Lind"',)

    def read(self, key: str, value: str, terms: Terms) -> None:
        from indexer.query.parse import near_names

        wanted = person_key(value)
        if not wanted:
            raise QueryError(f'{key}: needs a name, e.g. {key}:"Anna Lind"')
        if terms.people is not None:
            known = {person_key(n): n for n in terms.people}
            # a word or words of one name only ("who:Ben" when there is a single Ben)
            partial = [n for n in terms.people if set(wanted.split()) <= set(person_key(n).split())]
            if wanted not in known and len(partial) == 1:
                wanted = person_key(partial[0])
            if wanted not in known:
                hint = near_names(value, terms.people)
                raise QueryError(f"{key}:{value}: no one by that name in the index"
                                 + (f" (did you mean {', '.join(hint)}?)" if hint else
                                    " (`moodindex people` lists the names)"))
            value = known[wanted]
        terms.extra.append((self.name, value))

    def example_for(self, key: str) -> str:
        return f'{key}:"Anna Lind"'

    def describe(self, query: Query) -> list[str]:
        names = list(dict.fromkeys(extra_values(query, self.name)))
        return [" and ".join(names)] if names else []

    def conditions(self, query: Query) -> list[ColumnElement[bool]]:
        from sqlalchemy import exists

        from indexer.db.models import Face, Person, Photo, PhotoPerson

        out = []
        for key in person_keys(query):
            named = exists().where(PhotoPerson.photo_id == Photo.id, PhotoPerson.person_id == Person.id,
                                   Person.key == key)
            if query.emotions:  # their own face shows it
                named = named.where(Face.id == PhotoPerson.face_id, Face.emotion.in_(query.emotions))
                if query.min_score is not None:
                    named = named.where(Face.score >= query.min_score)
            out.append(named)
        return out


# The registry, in the order a query describes itself.
FILTERS: list[Filter] = [PersonFilter(), EmotionFilter(), DateFilter(), FacesFilter(), PathFilter(), ScoreFilter(),
                          TopFilter()]


def filter_for(key: str) -> Filter | None:
    return next((f for f in FILTERS if key in f.keys), None)


def filter_keys() -> tuple[str, ...]:
    return tuple(k for f in FILTERS for k in f.keys)


def help_examples() -> str:
    """The filters line of the CLI help."""
    return " ".join(e for f in FILTERS for e in f.help_examples)


def main_keys() -> list[str]:
    """The keys the help names (one spelling each), for "not understood" messages."""
    return list(dict.fromkeys(e.split(":", 1)[0] for f in FILTERS for e in f.help_examples))


def extra_values(query: Query, name: str) -> list[Any]:
    """The values a filter without a Query field of its own read (see Terms.extra)."""
    return [v for n, v in query.extra if n == name]
