"""Query text -> a frozen `Query` value.

The language is words first ("sad photos from 2019", "happy or surprised group photos last
summer") with `key:value` filters for precision (`emotion:sad year:2018..2020 path:Trips
faces:2+ score:0.7`).  Every word must be understood: anything else raises `QueryError`
naming the words and the nearest known ones, because a silently ignored word ("blurry",
"not") would return confidently wrong results.

Dates are intervals of naive local time ([start, end)), matching `Photo.taken_at`, which is
the local time of capture.  Seasons are meteorological (whole months); the northern
hemisphere is assumed unless `hemisphere="south"`.  A season named with a year starts in
that year: "winter 2021" is December 2021 to February 2022 in the north, "summer 2021"
is December 2021 to February 2022 in the south.
"""

from __future__ import annotations

import difflib
import re
from calendar import monthrange
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from indexer.domain import CLASSES


class QueryError(ValueError):
    """A query that could not be understood; the message says which words and what was meant."""


# --- vocabulary ------------------------------------------------------------------------

EMOTION_WORDS: dict[str, str] = {}
_SYNONYMS = {  # superlatives ("happiest") are synonyms too: emotion words already rank by that emotion
    "happy": "happy happiness smiling smile smiles smiley joyful joy joyous cheerful laughing laugh laughs glad "
             "delighted grinning grin merry beaming happiest merriest cheeriest cheerfullest jolliest gladdest "
             "smiliest",
    "sad": "sad sadness unhappy crying cry cries tears tearful gloomy upset depressed miserable sorrowful sorrow "
           "melancholy glum saddest unhappiest gloomiest glummest",
    "angry": "angry anger mad furious annoyed irritated grumpy rage raging cross enraged angriest maddest "
             "grumpiest crossest",
    "surprise": "surprise surprised shocked shock amazed astonished stunned astounded wow",
    "fear": "fear scared afraid fearful frightened terrified anxious nervous worried spooked",
    "disgust": "disgust disgusted grossed gross revolted repulsed yuck",
    "neutral": "neutral calm serious expressionless blank straight-faced poker-faced calmest",
}
for _cls, _words in _SYNONYMS.items():
    for _w in _words.split():
        EMOTION_WORDS[_w] = _cls
assert set(EMOTION_WORDS.values()) == set(CLASSES)

# two-word phrases folded into one token before parsing
PHRASES = {
    ("grossed", "out"): "disgust",
    ("poker", "face"): "neutral",
    ("straight", "face"): "neutral",
}

FILLERS = frozenset(
    "photos photo pictures picture pics pic images image shots shot snaps snapshots of with me my all show find "
    "the a an some any people person faces face that are is who where taken look looking everyone everybody "
    "someone somebody".split()
)
CONNECTORS = frozenset(["and", "or", "&", ",", "+", "/"])
GROUP_WORDS = frozenset(["group", "groups", "crowd", "crowds"])    # 3+ faces
ALONE_WORDS = frozenset(["alone", "portrait", "portraits", "solo", "selfie", "selfies"])  # exactly 1 face
COUPLE_WORDS = frozenset(["couple", "couples", "pair", "pairs"])   # exactly 2 faces

MONTHS: dict[str, int] = {}
for _i, _name in enumerate(
    "january february march april may june july august september october november december".split(), start=1
):
    MONTHS[_name] = _i
    MONTHS[_name[:3]] = _i
MONTHS["sept"] = 9

# first month of each meteorological season, per hemisphere
SEASONS = {
    "north": {"spring": 3, "summer": 6, "autumn": 9, "fall": 9, "winter": 12},
    "south": {"autumn": 3, "fall": 3, "winter": 6, "spring": 9, "summer": 12},
}
RELATIVE_UNITS = {"day": "day", "days": "day", "week": "week", "weeks": "week", "month": "month",
                  "months": "month", "year": "year", "years": "year"}
PREPOSITIONS = frozenset(["from", "in", "during", "on", "between", "before", "after", "since", "until", "till",
                          "through", "to"])  # each must be followed by a date
NEGATIONS = frozenset(["not", "no", "without", "except", "but"])
# "top 10 surprised", "the 5 saddest", "most fearful": the emotion words rank, these words only
# say so (and "top"/a count before an emotion or photo word cuts the results at that count)
RANK_WORDS = frozenset(["top", "most", "best"])
COUNT_WORDS = {w: i for i, w in enumerate(
    "one two three four five six seven eight nine ten eleven twelve".split(), start=1)} | {"twenty": 20}
COUNTED_NOUNS = frozenset(["photos", "photo", "pictures", "picture", "pics", "images", "shots", "snaps",
                           "snapshots", "portraits", "selfies"])

MIN_YEAR, MAX_YEAR = 1826, 2199  # the first photograph .. far future: anything else is a typo

KNOWN_WORDS = sorted(
    set(EMOTION_WORDS) | FILLERS | GROUP_WORDS | ALONE_WORDS | COUPLE_WORDS | set(MONTHS) | set(SEASONS["north"])
    | PREPOSITIONS | {"and", "or", "last", "this", "past", "today", "yesterday", "out"} | set(RELATIVE_UNITS)
    | RANK_WORDS | set(COUNT_WORDS)
)

_KNOWN_SET = frozenset(KNOWN_WORDS)


# --- the value -------------------------------------------------------------------------

@dataclass(frozen=True)
class Query:
    """What the user asked for; every field optional, an empty Query means every photo with faces.

    `emotions` are class names in `CLASSES` order; dates are a half-open interval of naive
    local datetimes; `min_faces`/`max_faces` are inclusive bounds on `Photo.face_count`;
    `paths` are case-insensitive substrings that must all occur in the photo's path.
    """

    text: str = ""
    emotions: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    min_faces: int | None = None
    max_faces: int | None = None
    paths: tuple[str, ...] = ()
    min_score: float | None = None
    top: int | None = None  # "the 20 happiest", "top 10", top:10: at most this many results
    extra: tuple[tuple[str, str], ...] = ()  # (filter name, value) of filters without a field here
    # the `paths` (stored form) SQLite's trigram index narrows: set by the engine, which asks the
    # index how rare each is (db/path_index.narrowed_texts); not part of what was asked
    narrowed_paths: frozenset[str] = frozenset()

    def describe(self) -> str:
        """A short human summary, e.g. for "no photos match ..." messages (each filter says its part)."""
        return ", ".join(part for f in _filters.FILTERS for part in f.describe(self))


# --- dates -----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Span:
    start: date
    end: date  # exclusive


def _add_months(d: date, months: int) -> date:
    """`d` moved by whole months, the day clamped to the target month (Feb 29 -> Feb 28)."""
    index = d.year * 12 + d.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(d.day, monthrange(year, month + 1)[1]))


def _year(y: int) -> _Span:
    if not MIN_YEAR <= y <= MAX_YEAR:
        raise QueryError(f"{y} is not a plausible year for a photo ({MIN_YEAR}..{MAX_YEAR})")
    return _Span(date(y, 1, 1), date(y + 1, 1, 1))


def _month(y: int, m: int) -> _Span:
    _year(y)
    if not 1 <= m <= 12:
        raise QueryError(f"{y}-{m:02d}: there is no month {m}")
    start = date(y, m, 1)
    return _Span(start, _add_months(start, 1))


def _day(y: int, m: int, d: int) -> _Span:
    _month(y, m)
    try:
        start = date(y, m, d)
    except ValueError:
        raise QueryError(f"{y}-{m:02d}-{d:02d} is not a date ({date(y, m, 1):%B %Y} has "
                         f"{monthrange(y, m)[1]} days)") from None
    return _Span(start, start + timedelta(days=1))


_ISO = re.compile(r"^(\d{4})(?:[-/](\d{1,2})(?:[-/](\d{1,2}))?)?$")
_RANGE = re.compile(r"^(\S+?)(?:\.\.|–|-)(\S+)$")


def _iso(token: str) -> _Span | None:
    """2019 | 2019-03 | 2019-03-05 (also with '/')."""
    m = _ISO.match(token)
    if not m:
        return None
    y, mo, d = (int(g) if g else None for g in m.groups())
    if d is not None:
        return _day(y, mo, d)
    if mo is not None:
        return _month(y, mo)
    return _year(y)


def _iso_range(token: str) -> _Span | None:
    """2018-2020 | 2018..2020 | 2019-06-01..2019-08-31 | 2019.. | ..2019 (open ends)."""
    if ".." in token:
        left, right = token.split("..", 1)
    else:
        m = _RANGE.match(token)
        if not m or not re.fullmatch(r"\d{4}", m.group(1)) or not re.fullmatch(r"\d{4}", m.group(2)):
            return None  # 2019-03 is a month, not a range
        left, right = m.groups()
    lo = _iso(left) if left else None
    hi = _iso(right) if right else None
    if (left and lo is None) or (right and hi is None) or (lo is None and hi is None):
        return None
    start = lo.start if lo else date(MIN_YEAR, 1, 1)
    end = hi.end if hi else date(MAX_YEAR + 1, 1, 1)
    if end <= start:
        raise QueryError(f"{token}: the range ends before it starts")
    return _Span(start, end)


class _Parser:
    """Recursive descent over lower-cased word tokens (filters are handled before)."""

    def __init__(self, words: list[str], today: date, hemisphere: str) -> None:
        self.words = words
        self.today = today
        self.seasons = SEASONS[hemisphere]
        self.pos = 0

    def peek(self, k: int = 0) -> str | None:
        i = self.pos + k
        return self.words[i] if i < len(self.words) else None

    # A date atom: one span, consuming words on success and nothing on failure.
    def atom(self, year_hint: int | None = None) -> _Span | None:
        if self.peek() == "the" and self.peek(1) is not None:  # "in the summer of 2021"
            self.pos += 1
            span = self.atom(year_hint)
            if span is None:
                self.pos -= 1
            return span
        w = self.peek()
        if w is None:
            return None
        span = _iso_range(w) or _iso(w)
        if span is not None:
            self.pos += 1
            return span
        if w in MONTHS:
            return self._month_atom(year_hint)
        if w in self.seasons:
            return self._season_atom()
        return self._relative_atom()

    def _year_after(self, k: int) -> tuple[int | None, int]:
        """A 4-digit year at offset k (optionally after 'of'); returns (year, words used)."""
        if self.peek(k) == "of" and re.fullmatch(r"\d{4}", self.peek(k + 1) or ""):
            return int(self.peek(k + 1)), 2
        if re.fullmatch(r"\d{4}", self.peek(k) or ""):
            return int(self.peek(k)), 1
        return None, 0

    def _month_atom(self, year_hint: int | None, which: str = "bare") -> _Span:
        month = MONTHS[self.peek()]
        year, used = self._year_after(1)
        self.pos += 1 + used
        if year is None and year_hint is not None:
            year = year_hint
        if year is None:
            return self._recurring(month, 1, which)
        return _month(year, month)

    def _season_atom(self, which: str = "bare") -> _Span:
        first = self.seasons[self.peek()]
        year, used = self._year_after(1)
        self.pos += 1 + used
        if year is None:
            return self._recurring(first, 3, which)
        _year(year)
        start = date(year, first, 1)
        return _Span(start, _add_months(start, 3))

    def _recurring(self, first_month: int, length: int, which: str) -> _Span:
        """A month or season named without a year.  bare ("in March", "summer"): the latest one
        that has begun; "this": the one under way, else this calendar year's; "last": the latest
        one that has ended."""
        t = self.today
        starts = [date(y, first_month, 1) for y in range(t.year - 2, t.year + 2)]
        spans = [_Span(s, _add_months(s, length)) for s in starts]
        if which == "last":
            return [s for s in spans if s.end <= t][-1]
        if which == "this":
            current = [s for s in spans if s.start <= t < s.end]
            return current[0] if current else next(s for s in spans if s.start.year == t.year)
        return [s for s in spans if s.start <= t][-1]

    def _relative_atom(self) -> _Span | None:
        w, nxt = self.peek(), self.peek(1)
        t = self.today
        if w == "today":
            self.pos += 1
            return _Span(t, t + timedelta(days=1))
        if w == "yesterday":
            self.pos += 1
            return _Span(t - timedelta(days=1), t)
        if w in ("this", "last") and nxt is not None and (nxt in MONTHS or nxt in self.seasons):
            self.pos += 1
            if nxt in MONTHS:
                return self._month_atom(None, which=w)
            return self._season_atom(which=w)
        if w in ("this", "last") and nxt in ("day", "week", "month", "year"):
            back = 1 if w == "last" else 0
            if nxt == "day":
                start = t - timedelta(days=back)
                span = _Span(start, start + timedelta(days=1))
            elif nxt == "week":  # ISO weeks: Monday first
                start = t - timedelta(days=t.weekday() + 7 * back)
                span = _Span(start, start + timedelta(days=7))
            elif nxt == "month":
                start = _add_months(date(t.year, t.month, 1), -back)
                span = _Span(start, _add_months(start, 1))
            else:
                span = _Span(date(t.year - back, 1, 1), date(t.year - back + 1, 1, 1))
            self.pos += 2
            return span
        if w in ("last", "past") and re.fullmatch(r"\d{1,4}", nxt or "") and self.peek(2) in RELATIVE_UNITS:
            n, unit = int(nxt), RELATIVE_UNITS[self.peek(2)]
            if n < 1:
                raise QueryError(f"{w} {nxt} {self.peek(2)}: the number must be at least 1")
            end = t + timedelta(days=1)
            try:
                if unit == "day":
                    start = end - timedelta(days=n)
                elif unit == "week":
                    start = end - timedelta(weeks=n)
                else:
                    start = _add_months(end, -n * (12 if unit == "year" else 1))
            except (ValueError, OverflowError):  # before year 1: simply "ever"
                start = date(MIN_YEAR, 1, 1)
            start = max(start, date(MIN_YEAR, 1, 1))
            self.pos += 3
            return _Span(start, end)
        return None

    def date_expr(self) -> _Span | None:
        """A prepositional or bare date phrase; None (nothing consumed) when none starts here."""
        start_pos = self.pos
        w = self.peek()
        if w == "between":
            self.pos += 1
            span = self._range_tail(("and",))
        elif w == "from":
            self.pos += 1
            span = self._maybe_range()
        elif w in ("in", "during", "on"):
            self.pos += 1
            span = self.atom()
        elif w in ("before", "after", "since", "until", "till", "through"):
            self.pos += 1
            inner = self.atom()
            span = None if inner is None else _open_span(w, inner)
        else:
            span = self._maybe_range()
        if span is None:
            self.pos = start_pos
        return span

    def _maybe_range(self) -> _Span | None:
        """An atom, extended to a range by "to/until/through <atom>" when one follows."""
        first_pos = self.pos
        first = self.atom()
        if first is not None and self.peek() in ("to", "until", "till", "through") and self._next_is_atom():
            return self._finish_range(first, first_pos)
        return first

    def _next_is_atom(self) -> bool:
        save = self.pos
        self.pos += 1
        try:
            return self.atom() is not None
        finally:
            self.pos = save

    def _range_tail(self, joiners: tuple[str, ...]) -> _Span | None:
        first_pos = self.pos
        first = self.atom()
        if first is None or self.peek() not in joiners:
            return None
        return self._finish_range(first, first_pos)

    def _finish_range(self, first: _Span, first_pos: int | None = None) -> _Span | None:
        self.pos += 1  # the joiner
        second = self.atom()
        if second is None:
            return None
        if first_pos is not None and self.words[first_pos] in MONTHS and not _has_year_after(self.words, first_pos):
            # "between June and August 2019": the first month takes the year of the second
            save = self.pos
            self.pos = first_pos
            year = second.start.year if MONTHS[self.words[first_pos]] <= second.start.month else second.start.year - 1
            first = self._month_atom(year)
            self.pos = save
        if second.end <= first.start:
            raise QueryError(f"the range {first.start}..{second.end - timedelta(days=1)} ends before it starts")
        return _Span(first.start, second.end)


def _has_year_after(words: list[str], i: int) -> bool:
    nxt = words[i + 1] if i + 1 < len(words) else ""
    nxt2 = words[i + 2] if i + 2 < len(words) else ""
    return bool(re.fullmatch(r"\d{4}", nxt) or (nxt == "of" and re.fullmatch(r"\d{4}", nxt2)))


def _open_span(word: str, inner: _Span) -> _Span:
    """before X: earlier than all of X; after X: later than all of X; since X: from X's start; until X: to its end."""
    lo, hi = date(MIN_YEAR, 1, 1), date(MAX_YEAR + 1, 1, 1)
    if word == "before":
        return _Span(lo, inner.start)
    if word == "after":
        return _Span(inner.end, hi)
    if word == "since":
        return _Span(inner.start, hi)
    return _Span(lo, inner.end)  # until / till / through


# --- filters ---------------------------------------------------------------------------

_TOKEN = re.compile(r"""(\w+:"[^"]*"|\w+:'[^']*'|"[^"]*"|'[^']*'|\S+)""")
_STRIP = ".,;:!?()[]{}\"'"


def _suggest(word: str, vocabulary: list[str] | tuple[str, ...], n: int = 3) -> list[str]:
    return difflib.get_close_matches(word, vocabulary, n=n, cutoff=0.6)


# --- entry point -----------------------------------------------------------------------

def _name_words(name: str) -> tuple[str, ...]:
    """A name cut into words the way query text is (lower case, punctuation stripped)."""
    return tuple(w for w in (piece.strip(_STRIP).lower() for piece in name.split()) if w)


def _people_index(people: Sequence[str]) -> dict[tuple[str, ...], str]:
    """Word sequences that name a person in free text: a full name ("anna lind"), or one word of
    it that names no one else ("anna", "lind").  A single word that is also a query word ("may",
    "happy") never names anyone here: `person:May` does."""
    full: dict[tuple[str, ...], str] = {}
    for name in people:
        words = _name_words(name)
        if words and (len(words) > 1 or words[0] not in _KNOWN_SET):
            full.setdefault(words, name)
    owners: dict[str, set[str]] = {}
    for name in people:
        for w in _name_words(name):
            owners.setdefault(w, set()).add(name)
    for w, names in owners.items():
        if len(names) == 1 and w not in _KNOWN_SET and (w,) not in full and not w.isdigit():
            full[(w,)] = next(iter(names))
    return full


def _match_name(words: list[str], pos: int, index: dict[tuple[str, ...], str]) -> tuple[str, int] | None:
    """The longest name starting at words[pos], and how many words it took."""
    longest = max((len(k) for k in index), default=0)
    for n in range(min(longest, len(words) - pos), 0, -1):
        if (name := index.get(tuple(words[pos:pos + n]))) is not None:
            return name, n
    return None


def near_names(word: str, people: Sequence[str], n: int = 3) -> list[str]:
    """People whose name, or a word of it, looks like `word` (for "did you mean")."""
    by_word: dict[str, list[str]] = {}
    for name in people:
        by_word.setdefault(name.casefold(), []).append(name)
        for w in _name_words(name):
            by_word.setdefault(w, []).append(name)
    close = difflib.get_close_matches(word.casefold(), list(by_word), n=n, cutoff=0.7)
    return list(dict.fromkeys(name for c in close for name in by_word[c]))[:n]


def parse(text: str, today: date | None = None, *, hemisphere: str = "north",
          people: Sequence[str] | None = None) -> Query:
    """Parse query text; raise QueryError naming every word that was not understood.

    `people`: the names the index knows.  With it, names are understood in free text ("happy
    photos of Anna Lind", "Anna and Ben laughing") and `person:` values are checked, with a "did
    you mean" for near names; without it, `person:` takes any name and free text has none."""
    if hemisphere not in SEASONS:
        raise QueryError(f"hemisphere must be 'north' or 'south', not {hemisphere!r}")
    today = today or date.today()
    terms = _filters.Terms(people=None if people is None else list(people))
    names = _people_index(people or ())
    words: list[str] = []

    for raw in _TOKEN.findall(text or ""):
        key, sep, value = raw.partition(":")
        if sep and re.fullmatch(r"\w+", key) and not re.fullmatch(r"\d+", key):
            key = key.lower()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            flt = _filters.filter_for(key)
            if flt is None:
                keys = _filters.filter_keys()
                hint = _suggest(key, keys)
                raise QueryError(f"unknown filter {key + ':'!r}"
                                 + (f" (did you mean {', '.join(h + ':' for h in hint)}?)" if hint
                                    else f" (known: {', '.join(k + ':' for k in keys)})"))
            if not value:
                raise QueryError(f"{key}: needs a value, e.g. {flt.example_for(key)}")
            flt.read(key, value, terms)
            continue
        for piece in raw.split(","):
            word = piece.strip(_STRIP).lower()
            if word.endswith("'s"):
                word = word[:-2]
            if word:
                words.append(word)

    # fold two-word phrases
    folded: list[str] = []
    i = 0
    while i < len(words):
        pair = tuple(words[i:i + 2])
        if pair in PHRASES:
            folded.append(PHRASES[pair])
            i += 2
        else:
            folded.append(words[i])
            i += 1

    p = _Parser(folded, today, hemisphere)
    unknown: list[str] = []
    while p.peek() is not None:
        w = p.peek()
        if (count := _count_at(p)) is not None:
            terms.tops.append(count)
            continue
        if names and (found := _match_name(p.words, p.pos, names)):
            terms.extra.append(("person", found[0]))
            p.pos += found[1]
            continue
        # "3 faces", "2+ people"
        if re.fullmatch(r"\d{1,3}\+?", w) and p.peek(1) in ("faces", "people", "persons", "face", "person"):
            terms.face_bounds.append(_filters.faces_bounds(w))
            p.pos += 2
            continue
        span = p.date_expr()
        if span is not None:
            terms.spans.append(span)
            continue
        p.pos += 1
        if w in EMOTION_WORDS:
            terms.emotions.append(EMOTION_WORDS[w])
        elif w in GROUP_WORDS:
            terms.face_bounds.append((3, None))
        elif w in ALONE_WORDS:
            terms.face_bounds.append((1, 1))
        elif w in COUPLE_WORDS:
            terms.face_bounds.append((2, 2))
        elif w in FILLERS or w in CONNECTORS or w in RANK_WORDS or w in ("and", "or"):
            pass
        elif w in PREPOSITIONS or w in ("last", "this", "past"):
            unknown.append(w)
        else:
            unknown.append(w)

    if unknown:
        raise QueryError(_unknown_message(unknown, people or ()))

    start = end = None
    for span in terms.spans:
        start = span.start if start is None else max(start, span.start)
        end = span.end if end is None else min(end, span.end)
    if start is not None and end is not None and end <= start:
        raise QueryError("the dates in this query exclude each other (no day satisfies all of them)")
    lo = hi = None
    for f_lo, f_hi in terms.face_bounds:
        lo = f_lo if lo is None else max(lo, f_lo)
        if f_hi is not None:
            hi = f_hi if hi is None else min(hi, f_hi)
    if lo is not None and hi is not None and hi < lo:
        raise QueryError("the face counts in this query exclude each other (e.g. 'alone' and 'group')")

    ordered = tuple(c for c in CLASSES if c in set(terms.emotions))
    return Query(
        text=text or "",
        emotions=ordered,
        start=None if start is None or start <= date(MIN_YEAR, 1, 1) else datetime.combine(start, datetime.min.time()),
        end=None if end is None or end >= date(MAX_YEAR + 1, 1, 1) else datetime.combine(end, datetime.min.time()),
        min_faces=lo,
        max_faces=hi,
        paths=tuple(terms.paths),
        min_score=max(terms.scores) if terms.scores else None,
        top=min(terms.tops) if terms.tops else None,
        extra=tuple(terms.extra),
    )


def _count(word: str | None) -> int | None:
    """'20' or 'five' as a number of results; None for anything else (a year like 2019 is a date)."""
    if word is None:
        return None
    if re.fullmatch(r"\d{1,3}", word):
        return int(word)
    return COUNT_WORDS.get(word)


def _count_at(p: _Parser) -> int | None:
    """A result count starting at the parser's position, consumed: "top 10" (any number, also 4 digits),
    "top ten", or a count directly before an emotion, "most" or a photo word ("the 5 saddest",
    "20 photos")."""
    w, nxt = p.peek(), p.peek(1)
    if w in ("top", "best") and (_count(nxt) is not None or re.fullmatch(r"\d{1,6}", nxt or "")):
        n, used = int(nxt) if nxt.isdigit() else COUNT_WORDS[nxt], 2
    elif _count(w) is not None and (nxt in EMOTION_WORDS or nxt in COUNTED_NOUNS or nxt in RANK_WORDS):
        n, used = _count(w), 1
    else:
        return None
    if n < 1:
        raise QueryError(f"{' '.join(p.words[p.pos:p.pos + used])}: the number of results must be at least 1")
    p.pos += used
    return n


def _unknown_message(unknown: list[str], people: Sequence[str] = ()) -> str:
    parts = []
    for w in dict.fromkeys(unknown):
        if w in NEGATIONS:
            parts.append(f"{w!r} (leaving photos out is not supported; ask for what you want, e.g. 'happy or neutral')")
            continue
        if w in PREPOSITIONS or w in ("last", "this", "past"):
            parts.append(f"{w!r} (expected a date after {w.split()[0]!r}, e.g. 2019, March 2019, 2019-06-01, "
                         "summer 2021, last year)")
            continue
        hint = near_names(w, people) + _suggest(w, KNOWN_WORDS)
        parts.append(f"{w!r} (did you mean {' / '.join(hint)}?)" if hint else f"{w!r} (no similar known word)")
    return ("not understood: " + ", ".join(parts)
            + "; use emotion words, dates (2019, March 2019, last year, summer 2021, before/after/between ...) "
              "or filters " + " ".join(k + ":" for k in _filters.main_keys()))


# The filters (filters.py) use the vocabulary and date helpers above, and the parser uses the
# filters: imported last, as a module, so either can be imported first.
from indexer.query import filters as _filters  # noqa: E402
