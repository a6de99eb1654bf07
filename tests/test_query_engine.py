"""search(): which photos come back, in which order, with which score, over rows we insert.

Every test runs three times: ranking the candidate photos' faces directly, and through the
best-first face streams (the path large libraries take) started from the matching photos and
from the emotion's faces, which must all agree."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

import pytest

from indexer.db.session import session_scope
from indexer.query import Match, parse, search
from indexer.query import engine as query_engine
from tests.factories import add_photo

TODAY = date(2024, 3, 15)


@pytest.fixture(params=["few", "from_photos", "streamed"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param != "few":
        monkeypatch.setattr(query_engine, "FEW_PHOTOS", 0)
    monkeypatch.setattr(query_engine, "_few_enough_to_start_from", lambda s, q: request.param == "from_photos")
    return request.param


def run(engine, text: str, **kwargs) -> list[Match]:  # noqa: ANN001
    with session_scope(engine) as s:
        return search(s, parse(text, TODAY), **kwargs)


def paths(matches: list[Match]) -> list[str]:
    return [m.photo.path for m in matches]


def test_score_is_the_best_face_of_that_emotion_and_only_ok_photos_count(engine, mode) -> None:
    with session_scope(engine) as s:
        add_photo(s, "/lib/a.jpg", faces=[("sad", 0.55), ("sad", 0.91), ("neutral", 0.97)])
        add_photo(s, "/lib/b.jpg", faces=[("sad", 0.80)])
        add_photo(s, "/lib/c.jpg", faces=[("happy", 0.60)])  # 8 % sad, but not a sad face
        add_photo(s, "/lib/gone.jpg", faces=[("sad", 0.99)], status="deleted")
        add_photo(s, "/lib/broken.jpg", faces=[("sad", 0.99)], status="error")
    got = run(engine, "sad")
    assert paths(got) == ["/lib/a.jpg", "/lib/b.jpg"]
    assert got[0].score == pytest.approx(0.91) and got[0].emotion == "sad" and got[0].faces == 3
    assert got[0].face is not None and got[0].face.idx == 1
    assert [f.idx for f in got[0].photo.faces] == [0, 1, 2]  # faces loaded, usable after the session
    with pytest.raises(dataclasses.FrozenInstanceError):
        got[0].score = 1.0  # type: ignore[misc]


def test_several_emotions_take_the_best_of_any(engine, mode) -> None:
    with session_scope(engine) as s:
        add_photo(s, "/lib/party.jpg", faces=[("happy", 0.7), ("surprise", 0.9)])
        add_photo(s, "/lib/smile.jpg", faces=[("happy", 0.8)])
        add_photo(s, "/lib/cry.jpg", faces=[("sad", 0.99)])
    got = run(engine, "happy or surprised")
    assert [(m.photo.path, m.emotion) for m in got] == [("/lib/party.jpg", "surprise"), ("/lib/smile.jpg", "happy")]


def test_ties_newest_first_then_path_also_across_the_limit(engine, mode) -> None:
    with session_scope(engine) as s:
        add_photo(s, "/lib/old.jpg", datetime(2015, 1, 1), [("sad", 0.8)])
        add_photo(s, "/lib/new.jpg", datetime(2020, 1, 1), [("sad", 0.8)])
        add_photo(s, "/lib/undated.jpg", None, [("sad", 0.8)])
        add_photo(s, "/lib/b-mid.jpg", datetime(2018, 1, 1), [("sad", 0.8)])
        add_photo(s, "/lib/a-mid.jpg", datetime(2018, 1, 1), [("sad", 0.8)])
        add_photo(s, "/lib/best.jpg", datetime(2010, 1, 1), [("sad", 0.9)])
    assert paths(run(engine, "sad", limit=None)) == [
        "/lib/best.jpg", "/lib/new.jpg", "/lib/a-mid.jpg", "/lib/b-mid.jpg", "/lib/old.jpg", "/lib/undated.jpg"]
    assert paths(run(engine, "sad", limit=3)) == ["/lib/best.jpg", "/lib/new.jpg", "/lib/a-mid.jpg"]


def test_limit_defaults_to_20_and_none_or_zero_means_all(engine, mode) -> None:
    with session_scope(engine) as s:
        for i in range(25):
            add_photo(s, f"/lib/{i:02d}.jpg", datetime(2019, 1, 1 + i), [("happy", 0.5 + i / 100)])
    assert len(run(engine, "happy")) == 20
    assert len(run(engine, "happy", limit=None)) == 25
    assert len(run(engine, "happy", limit=0)) == 25
    assert paths(run(engine, "happy", limit=2)) == ["/lib/24.jpg", "/lib/23.jpg"]


def test_min_score_from_option_and_from_query(engine, mode) -> None:
    with session_scope(engine) as s:
        add_photo(s, "/lib/strong.jpg", faces=[("angry", 0.9)])
        add_photo(s, "/lib/weak.jpg", faces=[("angry", 0.5)])
        add_photo(s, "/lib/calm.jpg", faces=[("neutral", 0.6)])
    assert paths(run(engine, "angry", min_score=0.7)) == ["/lib/strong.jpg"]
    assert paths(run(engine, "angry score:0.7")) == ["/lib/strong.jpg"]
    assert paths(run(engine, "angry score:0.4", min_score=0.7)) == ["/lib/strong.jpg"]  # the stricter wins
    # no emotion word: the dominant face's probability
    assert sorted(paths(run(engine, "", min_score=0.55))) == ["/lib/calm.jpg", "/lib/strong.jpg"]


def test_dates_filter_and_exif_only(engine, mode) -> None:
    with session_scope(engine) as s:
        add_photo(s, "/lib/2018.jpg", datetime(2018, 12, 31, 23, 59, 59), [("happy", 0.9)])
        add_photo(s, "/lib/2019a.jpg", datetime(2019, 1, 1, 0, 0, 0), [("happy", 0.8)])
        add_photo(s, "/lib/2019b.jpg", datetime(2019, 12, 31, 23, 59, 59, 999999), [("happy", 0.7)],
                  date_source="file")
        add_photo(s, "/lib/2020.jpg", datetime(2020, 1, 1), [("happy", 0.6)])
        add_photo(s, "/lib/undated.jpg", None, [("happy", 0.95)])
    assert paths(run(engine, "happy from 2019")) == ["/lib/2019a.jpg", "/lib/2019b.jpg"]
    assert paths(run(engine, "happy from 2019", exif_only=True)) == ["/lib/2019a.jpg"]
    assert paths(run(engine, "happy before 2019")) == ["/lib/2018.jpg"]
    assert paths(run(engine, "happy after 2019-12-31")) == ["/lib/2020.jpg"]
    assert paths(run(engine, "happy 2018-2019")) == ["/lib/2018.jpg", "/lib/2019a.jpg", "/lib/2019b.jpg"]
    assert run(engine, "happy from 2019")[1].date_estimated
    assert not run(engine, "happy from 2019")[0].date_estimated
    assert paths(run(engine, "happy"))[0] == "/lib/undated.jpg"  # no date filter: undated photos still count
    assert "/lib/undated.jpg" not in paths(run(engine, "happy", exif_only=True))


def test_xmp_and_sidecar_dates_are_not_estimated(engine, mode) -> None:
    """Only a file time is an estimate: --exif-only keeps dates read from XMP, in the file or a sidecar."""
    with session_scope(engine) as s:
        for source in ("exif", "sidecar", "xmp", "file"):
            add_photo(s, f"/lib/{source}.jpg", datetime(2019, 5, 1), [("happy", 0.9)], date_source=source)
    matches = run(engine, "happy from 2019")
    assert {m.photo.path: m.date_estimated for m in matches} == {
        "/lib/exif.jpg": False, "/lib/sidecar.jpg": False, "/lib/xmp.jpg": False, "/lib/file.jpg": True}
    assert sorted(paths(run(engine, "happy from 2019", exif_only=True))) == [
        "/lib/exif.jpg", "/lib/sidecar.jpg", "/lib/xmp.jpg"]


def test_empty_query_is_every_photo_with_faces_newest_first(engine, mode) -> None:
    with session_scope(engine) as s:
        add_photo(s, "/lib/old.jpg", datetime(2001, 1, 1), [("sad", 0.6), ("happy", 0.9)])
        add_photo(s, "/lib/new.jpg", datetime(2023, 1, 1), [("neutral", 0.7)])
        add_photo(s, "/lib/undated.jpg", None, [("fear", 0.5)])
        add_photo(s, "/lib/landscape.jpg", datetime(2022, 1, 1), [])
        add_photo(s, "/lib/deleted.jpg", datetime(2022, 1, 1), [("sad", 0.6)], status="deleted")
    got = run(engine, "")
    assert paths(got) == ["/lib/new.jpg", "/lib/old.jpg", "/lib/undated.jpg"]
    assert (got[1].emotion, got[1].score, got[1].faces) == ("happy", pytest.approx(0.9), 2)
    nofaces = run(engine, "faces:0")
    assert paths(nofaces) == ["/lib/landscape.jpg"] and nofaces[0].score is None and nofaces[0].emotion is None


def test_face_counts_and_paths(engine, mode) -> None:
    with session_scope(engine) as s:
        add_photo(s, "/lib/Trips/solo.jpg", faces=[("happy", 0.9)])
        add_photo(s, "/lib/Trips/pair.jpg", faces=[("happy", 0.8), ("sad", 0.6)])
        add_photo(s, "/lib/Home/crowd.jpg", faces=[("happy", 0.7), ("happy", 0.6), ("neutral", 0.9)])
        add_photo(s, "/lib/100%_real/x.jpg", faces=[("happy", 0.5)])
        add_photo(s, "/lib/100xxreal/y.jpg", faces=[("happy", 0.4)])
    assert paths(run(engine, "happy group photos")) == ["/lib/Home/crowd.jpg"]
    assert paths(run(engine, "happy alone path:trips")) == ["/lib/Trips/solo.jpg"]  # case-insensitive
    assert paths(run(engine, "happy faces:2+")) == ["/lib/Trips/pair.jpg", "/lib/Home/crowd.jpg"]
    assert paths(run(engine, "faces:1..2 path:Trips")) == ["/lib/Trips/pair.jpg", "/lib/Trips/solo.jpg"]
    assert paths(run(engine, "happy path:100%_real")) == ["/lib/100%_real/x.jpg"]  # % and _ are literal
    assert run(engine, "happy path:nowhere") == []


def test_both_ranking_paths_agree_on_a_larger_library(engine, monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    rnd = random.Random(7)
    emotions = ["happy", "sad", "neutral", "surprise"]
    with session_scope(engine) as s:
        for i in range(300):
            faces = [(rnd.choice(emotions), round(rnd.uniform(0.3, 0.99), 2)) for _ in range(rnd.randint(0, 4))]
            taken = None if i % 17 == 0 else datetime(2010 + i % 12, 1 + i % 12, 1 + i % 28)
            add_photo(s, f"/lib/{i:03d}.jpg", taken, faces, date_source="file" if i % 5 == 0 else "exif")
    queries = ["sad", "happy or surprised", "sad 2015-2018", "neutral faces:2+", "happy score:0.8", "surprise alone"]
    queries.append("")  # no emotion: newest first

    def results(q: str, **kwargs) -> list[tuple]:
        return [(m.photo.path, m.score, m.emotion, m.faces) for m in run(engine, q, limit=15, **kwargs)]

    few = {q: results(q) for q in queries}
    without_faces = {q: results(q, load_faces=False) for q in queries}
    monkeypatch.setattr(query_engine, "FEW_PHOTOS", 0)
    monkeypatch.setattr(query_engine, "_few_enough_to_start_from", lambda s, q: True)
    from_photos = {q: results(q) for q in queries}
    monkeypatch.setattr(query_engine, "_few_enough_to_start_from", lambda s, q: False)
    streamed = {q: results(q) for q in queries}
    # a stream read in many small pages (rounded scores: ties fall on the page boundaries)
    monkeypatch.setattr(query_engine, "STREAM_PAGE_MAX", 3)
    paged = {q: results(q) for q in queries}
    monkeypatch.setattr(query_engine, "_few_enough_to_start_from", lambda s, q: True)
    paged_from_photos = {q: results(q) for q in queries}
    assert few == from_photos == streamed == without_faces == paged == paged_from_photos
    assert all(len(v) > 0 for v in few.values())
    assert run(engine, "sad", load_faces=False)[0].face is None


def test_a_count_in_the_query_ranks_by_that_emotion_and_cuts(engine, mode) -> None:
    with session_scope(engine) as s:
        for i in range(8):
            add_photo(s, f"/lib/smile{i}.jpg", faces=[("happy", 0.5 + i / 20)])
        add_photo(s, "/lib/cry.jpg", faces=[("sad", 0.99)])
    assert paths(run(engine, "the 3 happiest pictures")) == ["/lib/smile7.jpg", "/lib/smile6.jpg", "/lib/smile5.jpg"]
    assert len(run(engine, "top 5 happy", limit=2)) == 2        # the smaller of --limit and the count
    assert len(run(engine, "top 5 happy", limit=None)) == 5     # --limit 0 (all) still cut at the count
    assert paths(run(engine, "saddest")) == ["/lib/cry.jpg"]


def test_newest_first_reads_its_index_without_sorting(engine) -> None:
    """A query without emotion words (newest first, undated last, then path) is read off
    ix_photos_status_newest in that order: on PostgreSQL, whose DESC puts NULL first, the
    (status, taken_at) index cannot give `DESC NULLS LAST`, and a million photos were sorted."""
    from indexer.query.engine import date_select

    with session_scope(engine) as s:
        for i in range(50):
            add_photo(s, f"/lib/{i:02d}.jpg", None if i % 9 == 0 else datetime(2020, 1, 1 + i % 28), [("happy", 0.9)])
    stmt = date_select(parse("", TODAY))
    with engine.connect() as conn:
        sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        if conn.dialect.name == "postgresql":  # a 50-row table is read whole otherwise
            conn.exec_driver_sql("SET enable_seqscan = off")
            conn.exec_driver_sql("SET enable_bitmapscan = off")
            plan = [r[0] for r in conn.exec_driver_sql("EXPLAIN " + sql)]
        else:
            plan = [r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
    assert any("ix_photos_status_newest" in line for line in plan), plan
    assert not any("Sort" in line or "TEMP B-TREE" in line for line in plan), plan


def test_a_short_date_range_starts_from_its_photos(engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """More matching photos than are ranked directly but few enough to count (a month of a large
    library): the face stream starts from those photos and their faces (ix_faces_photo), not from
    the emotion's faces, which SQLite without statistics always walked (0.4-0.5 s for "disgusted
    in March 2019" at a million photos, benchmarks/query_scale.py)."""
    from sqlalchemy import event

    with session_scope(engine) as s:
        for i in range(40):
            taken = datetime(2019, 3 if i < 12 else 5, 1 + i % 28)
            add_photo(s, f"/lib/{i:02d}.jpg", taken, [("disgust", 0.5 + i / 100)])
    monkeypatch.setattr(query_engine, "FEW_PHOTOS", 4)
    monkeypatch.setattr(query_engine, "FROM_PHOTOS_MAX", 20)
    seen: list[tuple[str, object]] = []

    def record(conn, cursor, statement, params, context, executemany) -> None:  # noqa: ANN001
        if "FROM faces JOIN photos" in statement:
            seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", record)
    try:
        got = paths(run(engine, "disgusted in March 2019", limit=5))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert got == [f"/lib/{i:02d}.jpg" for i in (11, 10, 9, 8, 7)]
    assert seen and all("faces.emotion || ''" in statement for statement, _ in seen)
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            plan = [r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + seen[0][0], seen[0][1])]
        assert any("ix_faces_photo" in step for step in plan), plan
        assert not any("ix_faces_emotion_score" in step for step in plan), plan
    monkeypatch.setattr(query_engine, "FROM_PHOTOS_MAX", 5)  # more than that: the emotion's faces
    seen.clear()
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert paths(run(engine, "disgusted in 2019", limit=5)) == [f"/lib/{i:02d}.jpg" for i in (39, 38, 37, 36, 35)]
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert seen and not any("||" in statement for statement, _ in seen)
    if engine.dialect.name == "sqlite":  # a path the trigram index narrows: in few enough photos
        seen.clear()
        event.listen(engine, "before_cursor_execute", record)
        try:
            assert paths(run(engine, "disgusted path:/lib/", limit=2)) == ["/lib/39.jpg", "/lib/38.jpg"]
        finally:
            event.remove(engine, "before_cursor_execute", record)
        assert seen and all("faces.emotion || ''" in statement for statement, _ in seen)


def test_walks_down_the_emotion_run_without_parallel_workers_on_postgresql(engine, monkeypatch) -> None:  # noqa: ANN001
    """PostgreSQL planned the LIMIT walk down ix_faces_emotion_score in parallel: workers each
    walking ahead, 7,000 faces read for 34 rows (150-200 ms for `disgusted in 2019` at 1M)."""
    from sqlalchemy import event

    with session_scope(engine) as s:
        for i in range(10):
            add_photo(s, f"/lib/{i}.jpg", datetime(2019, 1 + i, 1), [("disgust", 0.5 + i / 100)])
    monkeypatch.setattr(query_engine, "FEW_PHOTOS", 0)
    monkeypatch.setattr(query_engine, "_few_enough_to_start_from", lambda s, q: False)
    workers: list[str] = []

    def record(conn, cursor, statement, params, context, executemany) -> None:  # noqa: ANN001
        if "FROM faces JOIN photos" in statement and conn.dialect.name == "postgresql":
            workers.append(conn.exec_driver_sql("SHOW max_parallel_workers_per_gather").scalar())

    event.listen(engine, "before_cursor_execute", record)
    try:
        with session_scope(engine) as s:
            got = [m.photo.path for m in search(s, parse("disgusted in 2019", TODAY), limit=3)]
            after = s.connection().exec_driver_sql("SHOW max_parallel_workers_per_gather").scalar() \
                if engine.dialect.name == "postgresql" else None
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert got == ["/lib/9.jpg", "/lib/8.jpg", "/lib/7.jpg"]
    if engine.dialect.name == "postgresql":
        assert workers and set(workers) == {"0"}
        assert after != "0"  # put back for the rest of the transaction
