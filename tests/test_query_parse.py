"""The query language, table-driven: what each text means, and what each bad text says."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from indexer.query import Query, QueryError, parse

TODAY = date(2024, 3, 15)  # a Friday in a leap year


def d(y: int, m: int, day: int = 1) -> datetime:
    return datetime(y, m, day)


# (text, today or None for TODAY, expected fields of the Query)
GOOD = [
    # emotions, synonyms, several at once, filler words
    ("sad", None, {"emotions": ("sad",)}),
    ("unhappy crying gloomy pictures", None, {"emotions": ("sad",)}),
    ("smiling joyful cheerful photos of people", None, {"emotions": ("happy",)}),
    ("mad furious angry", None, {"emotions": ("angry",)}),
    ("shocked or amazed", None, {"emotions": ("surprise",)}),
    ("scared afraid fearful", None, {"emotions": ("fear",)}),
    ("grossed out", None, {"emotions": ("disgust",)}),
    ("disgusted shots", None, {"emotions": ("disgust",)}),
    ("calm serious neutral", None, {"emotions": ("neutral",)}),
    ("happy or surprised", None, {"emotions": ("happy", "surprise")}),
    ("Happy, SAD and Angry images with faces", None, {"emotions": ("angry", "happy", "sad")}),
    ("", None, {"emotions": (), "start": None, "end": None, "min_faces": None}),
    ("photos of me", None, {"emotions": ()}),
    # dates
    ("sad photos from 2019", None, {"emotions": ("sad",), "start": d(2019, 1), "end": d(2020, 1)}),
    ("in 2019", None, {"start": d(2019, 1), "end": d(2020, 1)}),
    ("in March 2019", None, {"start": d(2019, 3), "end": d(2019, 4)}),
    ("in mar 2019", None, {"start": d(2019, 3), "end": d(2019, 4)}),
    ("2018-2020", None, {"start": d(2018, 1), "end": d(2021, 1)}),
    ("2018..2020", None, {"start": d(2018, 1), "end": d(2021, 1)}),
    ("from 2018 to 2020", None, {"start": d(2018, 1), "end": d(2021, 1)}),
    ("between June 2019 and August 2019", None, {"start": d(2019, 6), "end": d(2019, 9)}),
    ("between June and August 2019", None, {"start": d(2019, 6), "end": d(2019, 9)}),
    ("between November and February 2020", None, {"start": d(2019, 11), "end": d(2020, 3)}),  # across New Year
    ("before 2015", None, {"start": None, "end": d(2015, 1)}),
    ("after 2020-05-01", None, {"start": d(2020, 5, 2), "end": None}),  # after the whole day
    ("since 2020-05-01", None, {"start": d(2020, 5, 1), "end": None}),
    ("until 2019", None, {"start": None, "end": d(2020, 1)}),
    ("2019-06", None, {"start": d(2019, 6), "end": d(2019, 7)}),
    ("on 2019/06/07", None, {"start": d(2019, 6, 7), "end": d(2019, 6, 8)}),
    ("last year", None, {"start": d(2023, 1), "end": d(2024, 1)}),
    ("last year", date(2021, 1, 1), {"start": d(2020, 1), "end": d(2021, 1)}),      # on New Year's Day
    ("this year", date(2020, 12, 31), {"start": d(2020, 1), "end": d(2021, 1)}),    # on New Year's Eve
    ("this month", None, {"start": d(2024, 3), "end": d(2024, 4)}),
    ("this month", date(2019, 12, 31), {"start": d(2019, 12), "end": d(2020, 1)}),  # December -> January
    ("last month", date(2020, 1, 15), {"start": d(2019, 12), "end": d(2020, 1)}),   # January -> December
    ("today", date(2020, 2, 29), {"start": d(2020, 2, 29), "end": d(2020, 3, 1)}),  # leap day
    ("yesterday", date(2021, 3, 1), {"start": d(2021, 2, 28), "end": d(2021, 3, 1)}),
    ("yesterday", date(2020, 3, 1), {"start": d(2020, 2, 29), "end": d(2020, 3, 1)}),
    ("2020-02-29", None, {"start": d(2020, 2, 29), "end": d(2020, 3, 1)}),
    ("February 2020", None, {"start": d(2020, 2), "end": d(2020, 3)}),
    ("last week", None, {"start": d(2024, 3, 4), "end": d(2024, 3, 11)}),          # Monday-first weeks
    ("last 30 days", None, {"start": d(2024, 2, 15), "end": d(2024, 3, 16)}),
    ("past 1 year", date(2024, 2, 29), {"start": d(2023, 3, 1), "end": d(2024, 3, 1)}),   # 366 days, leap day in
    ("last 9999 years", None, {"start": None, "end": d(2024, 3, 16)}),
    ("last 1 month", date(2024, 3, 30), {"start": d(2024, 2, 29), "end": d(2024, 3, 31)}),  # clamped to Feb 29
    ("summer 2021", None, {"start": d(2021, 6), "end": d(2021, 9)}),
    ("winter 2021", None, {"start": d(2021, 12), "end": d(2022, 3)}),
    ("in the summer of 2021", None, {"start": d(2021, 6), "end": d(2021, 9)}),
    ("last summer", None, {"start": d(2023, 6), "end": d(2023, 9)}),
    ("last winter", date(2024, 1, 10), {"start": d(2022, 12), "end": d(2023, 3)}),  # the one under way is not "last"
    ("in March", date(2024, 2, 1), {"start": d(2023, 3), "end": d(2023, 4)}),       # the latest March begun
    ("happy December", date(2024, 1, 5), {"start": d(2023, 12), "end": d(2024, 1)}),
    # filters
    ("emotion:sad year:2019", None, {"emotions": ("sad",), "start": d(2019, 1), "end": d(2020, 1)}),
    ("emotion:smiling,sad", None, {"emotions": ("happy", "sad")}),
    ("year:2018..2020", None, {"start": d(2018, 1), "end": d(2021, 1)}),
    ("year:2019..", None, {"start": d(2019, 1), "end": None}),
    ("after:2019-06-01 before:2019-09", None, {"start": d(2019, 6, 2), "end": d(2019, 9)}),
    ("date:2019-06", None, {"start": d(2019, 6), "end": d(2019, 7)}),
    ("year:2019 summer", date(2019, 10, 1), {"start": d(2019, 6), "end": d(2019, 9)}),  # intersection
    ('path:Trips path:"Summer Holiday"', None, {"paths": ("Trips", "Summer Holiday")}),
    ("faces:2+", None, {"min_faces": 2, "max_faces": None}),
    ("faces:2", None, {"min_faces": 2, "max_faces": 2}),
    ("faces:1..3", None, {"min_faces": 1, "max_faces": 3}),
    ("score:0.7", None, {"min_score": 0.7}),
    ("score:70%", None, {"min_score": 0.7}),
    ("group photos", None, {"min_faces": 3, "max_faces": None}),
    ("alone", None, {"min_faces": 1, "max_faces": 1}),
    ("sad portraits", None, {"emotions": ("sad",), "min_faces": 1, "max_faces": 1}),
    ("happy 2+ people", None, {"emotions": ("happy",), "min_faces": 2, "max_faces": None}),
    ("couple", None, {"min_faces": 2, "max_faces": 2}),
    # counts and superlatives: the emotion ranks, the count cuts
    ("the 20 happiest pictures of last summer", None,
     {"emotions": ("happy",), "top": 20, "start": d(2023, 6), "end": d(2023, 9)}),
    ("the 5 saddest photos", None, {"emotions": ("sad",), "top": 5}),
    ("top 10 surprised", None, {"emotions": ("surprise",), "top": 10}),
    ("most fearful", None, {"emotions": ("fear",), "top": None}),
    ("angriest portraits in 2019", None,
     {"emotions": ("angry",), "top": None, "min_faces": 1, "max_faces": 1, "start": d(2019, 1), "end": d(2020, 1)}),
    ("the 3 most disgusted", None, {"emotions": ("disgust",), "top": 3}),
    ("top 7 calmest", None, {"emotions": ("neutral",), "top": 7}),
    ("5 most happy photos", None, {"emotions": ("happy",), "top": 5}),
    ("the ten saddest", None, {"emotions": ("sad",), "top": 10}),
    ("top five most fearful pictures", None, {"emotions": ("fear",), "top": 5}),
    ("top 1000 angry", None, {"emotions": ("angry",), "top": 1000}),
    ("20 photos from 2019", None, {"emotions": (), "top": 20, "start": d(2019, 1), "end": d(2020, 1)}),
    ("happiest 2019", None, {"emotions": ("happy",), "top": None, "start": d(2019, 1), "end": d(2020, 1)}),
    ("top:15 sad", None, {"emotions": ("sad",), "top": 15}),
    ("top 10 happy top:3", None, {"top": 3}),  # the smaller count wins
    ("3 faces", None, {"top": None, "min_faces": 3, "max_faces": 3}),  # still a face count
]


@pytest.mark.parametrize(("text", "today", "expected"), GOOD, ids=[g[0] or "(empty)" for g in GOOD])
def test_good_queries(text: str, today: date | None, expected: dict) -> None:
    q = parse(text, today or TODAY)
    assert isinstance(q, Query)
    got = {k: getattr(q, k) for k in expected}
    assert got == expected


# (text, words the message must contain)
BAD = [
    ("sda photos", ["'sda'", "sad"]),
    ("hapy fotos", ["'hapy'", "happy", "'fotos'", "photos"]),
    ("happy in paris", ["'in'", "expected a date", "'paris'"]),
    ("blurry", ["'blurry'"]),
    ("not sad", ["'not'", "not supported"]),
    ("from", ["'from'", "expected a date"]),
    ("2019-02-29", ["2019-02-29 is not a date", "28 days"]),
    ("2100-02-29", ["not a date"]),
    ("2019-13", ["no month 13"]),
    ("1700", ["1700 is not a plausible year"]),
    ("2020-2018", ["ends before it starts"]),
    ("between August 2019 and June 2019", ["ends before it starts"]),
    ("2019 before 2015", ["exclude each other"]),
    ("alone group photos", ["face counts", "exclude each other"]),
    ("emtion:sad", ["unknown filter", "emotion:"]),
    ("foo:bar", ["unknown filter 'foo:'", "path:"]),
    ("emotion:sadd", ["unknown emotion 'sadd'", "sad"]),
    ("emotion:", ["needs a value", "emotion:sad"]),
    ("year:19", ["year:19", "year:2019"]),
    ("year:2019-03", ["expected a year"]),
    ("after:yesterday", ["after:yesterday", "expected a date"]),
    ("faces:many", ["faces:many", "faces:2+"]),
    ("faces:3..1", ["ends before it starts"]),
    ("score:high", ["score:high", "between 0 and 1"]),
    ("score:1.5", ["between 0 and 1"]),
    ("path:", ["needs a value", "path:Trips"]),
    ("last 0 days", ["at least 1"]),
    ("top 0 happy", ["top 0", "at least 1"]),
    ("top:many", ["top:many", "top:10"]),
    ("least happy", ["'least'"]),  # would be a reversed ranking: not silently a "most"
]


@pytest.mark.parametrize(("text", "needles"), BAD, ids=[b[0] for b in BAD])
def test_bad_queries_say_what_was_not_understood(text: str, needles: list[str]) -> None:
    with pytest.raises(QueryError) as info:
        parse(text, TODAY)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message


def test_every_unknown_word_is_named_once() -> None:
    with pytest.raises(QueryError) as info:
        parse("happy blurry blurry dogs", TODAY)
    message = str(info.value)
    assert message.count("'blurry'") == 1 and "'dogs'" in message and "'happy'" not in message


@pytest.mark.parametrize(("text", "start", "end"), [
    ("summer 2021", d(2021, 12), d(2022, 3)),
    ("winter 2021", d(2021, 6), d(2021, 9)),
    ("autumn 2021", d(2021, 3), d(2021, 6)),
])
def test_southern_hemisphere_seasons(text: str, start: datetime, end: datetime) -> None:
    q = parse(text, TODAY, hemisphere="south")
    assert (q.start, q.end) == (start, end)


def test_unknown_hemisphere_is_an_error() -> None:
    with pytest.raises(QueryError, match="hemisphere"):
        parse("summer", TODAY, hemisphere="east")


def test_query_is_frozen_and_describes_itself() -> None:
    q = parse("sad or happy group photos in 2019 path:Trips score:0.5", TODAY)
    with pytest.raises(AttributeError):
        q.emotions = ()  # type: ignore[misc]
    assert q.describe() == "happy or sad, 2019-01-01..2019-12-31, 3+ faces, path contains 'Trips', score >= 0.5"
    assert hash(q) == hash(parse("sad or happy group photos in 2019 path:Trips score:0.5", TODAY))


def test_default_today_is_the_real_today() -> None:
    q = parse("this year")
    assert q.start == datetime(date.today().year, 1, 1)


def test_any_text_gives_a_query_or_a_query_error() -> None:
    """Random mixes of known words, numbers, filters and junk never raise anything else."""
    import random

    from indexer.query.parse import KNOWN_WORDS

    pieces = [*KNOWN_WORDS, "2019", "2020-02-29", "2019-13-01", "0", "99999", "3+", "year:", "faces:2+", "path:",
              "score:0.5", "..", "-", "'", '"', "x:y", ",", "of", "the", "é", "2018..", "..2020", "between", "and"]
    rnd = random.Random(1234)
    for _ in range(3000):
        text = " ".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 6)))
        try:
            q = parse(text, TODAY)
        except QueryError as exc:
            assert str(exc) and "\n" not in str(exc)
        else:
            assert q.start is None or q.end is None or q.start < q.end
