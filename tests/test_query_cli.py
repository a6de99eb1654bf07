"""`moodindex query` through click: every output format, the error and empty paths, and a real
indexed library whose EXIF dates the test writes."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path

import pytest

from indexer.db.session import open_db, session_scope
from tests.factories import add_photo

KEYS = ["path", "score", "emotion", "taken_at", "date_source", "faces", "person", "people"]


@pytest.fixture()
def rows(db_location: Path | str) -> Path:
    engine = open_db(db_location)
    with session_scope(engine) as s:
        add_photo(s, "/lib/2019/rain.jpg", datetime(2019, 11, 2, 9, 0), [("sad", 0.93), ("neutral", 0.8)])
        add_photo(s, "/lib/2019/tears, and <b>.jpg", datetime(2019, 5, 1, 8, 30), [("sad", 0.71)], date_source="file")
        add_photo(s, "/lib/2020/party.jpg", datetime(2020, 7, 14, 18, 3, 22), [("happy", 0.97)] * 3)
        add_photo(s, "/lib/2015/old.jpg", datetime(2015, 1, 1), [("sad", 0.51)])
        add_photo(s, "/lib/2021/landscape.jpg", datetime(2021, 6, 1), [])
    engine.dispose()
    return db_location


def test_table_marks_estimated_dates(run_cli, rows) -> None:
    res = run_cli("query", "sad", "photos", "from", "2019")  # several words, no quotes
    assert res.exit_code == 0 and res.stderr == ""
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["SCORE", "EMOTION", "FACES", "TAKEN", "PATH"]
    assert lines[1].split()[:5] == ["0.93", "sad", "2", "2019-11-02", "09:00"]
    assert lines[1].endswith("/lib/2019/rain.jpg")
    assert "2019-05-01 08:30~" in lines[2] and lines[2].endswith("/lib/2019/tears, and <b>.jpg")
    assert lines[3].startswith("~ date estimated")
    assert len(lines) == 4


def test_json_has_exactly_the_documented_keys(run_cli, rows) -> None:
    res = run_cli("query", "--format", "json", "sad")
    assert res.exit_code == 0
    data = json.loads(res.stdout)
    assert [list(d) for d in data] == [KEYS] * 3
    assert data[0] == {"path": "/lib/2019/rain.jpg", "score": 0.93, "emotion": "sad",
                       "taken_at": "2019-11-02T09:00:00", "date_source": "exif", "faces": 2,
                       "person": None, "people": []}
    assert data[1]["date_source"] == "file" and data[1]["path"] == "/lib/2019/tears, and <b>.jpg"
    assert [d["score"] for d in data] == sorted((d["score"] for d in data), reverse=True)


def test_csv_round_trips_awkward_paths(run_cli, rows) -> None:
    res = run_cli("query", "--format", "csv", "sad", "--limit", "2")
    assert res.exit_code == 0
    records = list(csv.DictReader(io.StringIO(res.stdout)))
    assert list(records[0]) == KEYS
    assert [r["path"] for r in records] == ["/lib/2019/rain.jpg", "/lib/2019/tears, and <b>.jpg"]
    assert records[1]["date_source"] == "file" and records[1]["faces"] == "1"


def test_paths_one_per_line_with_notes_on_stderr(run_cli, rows) -> None:
    res = run_cli("query", "--format", "paths", "sad")
    assert res.exit_code == 0
    assert res.stdout.splitlines() == ["/lib/2019/rain.jpg", "/lib/2019/tears, and <b>.jpg", "/lib/2015/old.jpg"]
    assert "1 of these photos has a date estimated" in res.stderr  # not "have"
    nul = run_cli("query", "--format", "paths", "-0", "sad", "--exif-only")
    assert nul.stdout == "/lib/2019/rain.jpg\0/lib/2015/old.jpg\0" and nul.stderr == ""


def test_options_limit_min_score_exif_only(run_cli, rows) -> None:
    def got(*args: str) -> list[str]:
        res = run_cli("query", "--format", "paths", *args)
        assert res.exit_code == 0
        return res.stdout.splitlines()

    assert got("sad", "--limit", "1") == ["/lib/2019/rain.jpg"]
    assert got("sad", "--min-score", "0.7") == ["/lib/2019/rain.jpg", "/lib/2019/tears, and <b>.jpg"]
    assert got("sad", "--exif-only") == ["/lib/2019/rain.jpg", "/lib/2015/old.jpg"]
    assert got() == ["/lib/2020/party.jpg", "/lib/2019/rain.jpg", "/lib/2019/tears, and <b>.jpg",
                     "/lib/2015/old.jpg"]  # empty query: photos with faces, newest first
    assert got("group", "photos") == ["/lib/2020/party.jpg"]
    assert got("faces:0") == ["/lib/2021/landscape.jpg"]


def test_not_understood_is_one_line_exit_2(run_cli, rows) -> None:
    res = run_cli("query", "sda", "fotos", "from", "2019")
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert "'sda' (did you mean sad" in res.stderr and "'fotos' (did you mean photos" in res.stderr
    bad_option = run_cli("query", "sad", "--format", "xml")
    assert bad_option.exit_code == 2 and "xml" in bad_option.stderr


@pytest.mark.parametrize(("fmt", "stdout"), [("table", ""), ("paths", ""), ("json", "[]\n"),
                                             ("csv", ",".join(KEYS) + "\n")])
def test_empty_result_says_so_on_stderr_and_exits_0(run_cli, rows, fmt: str, stdout: str) -> None:
    res = run_cli("query", "--format", fmt, "angry", "in", "2019")
    assert res.exit_code == 0
    assert res.stdout == stdout
    assert res.stderr == (
        "moodindex: no photos match: angry, 2019-01-01..2019-12-31\n"
        "moodindex:   without angry: 2 photos match (1 of them is dated by file time: no EXIF or XMP date, "
        "and a copied file's time is when it was copied)\n"
        "moodindex:   without 2019-01-01..2019-12-31: no photos match either\n")


def test_empty_result_counts_without_each_part_and_says_the_dates_are_file_times(run_cli, db_location) -> None:
    """The first-hour case: photos copied today, asked for last summer."""
    engine = open_db(db_location)
    with session_scope(engine) as s:
        for i in range(3):
            add_photo(s, f"/copied/smile{i}.jpg", datetime.now(), [("happy", 0.9)], date_source="file")
        add_photo(s, "/copied/cry.jpg", datetime(2019, 7, 1), [("sad", 0.6)], date_source="exif")
    engine.dispose()
    res = run_cli("query", "the", "20", "happiest", "pictures", "of", "last", "summer", "path:copied",
                  "--exif-only", "--min-score", "0.5")
    assert res.exit_code == 0 and res.stdout == ""
    lines = res.stderr.splitlines()
    assert lines[0].startswith("moodindex: no photos with EXIF or XMP dates match: happy, ") and ", top 20" in lines[0]
    assert lines[1] == "moodindex:   without happy: no photos match either"
    assert lines[2].startswith("moodindex:   without 20") and lines[2].endswith(": no photos match either")
    assert lines[3] == "moodindex:   without path contains 'copied': no photos match either"
    assert lines[4] == "moodindex:   without --min-score 0.5: no photos match either"
    assert lines[5].startswith("moodindex:   without --exif-only: no photos match either")
    assert len(lines) == 6
    res = run_cli("query", "happy", "last", "summer")
    assert res.exit_code == 0
    assert res.stderr.splitlines()[2].endswith(": 3 photos match (all of them are dated by file time: no EXIF "
                                               "or XMP date, and a copied file's time is when it was copied)")


def test_empty_index_suggests_indexing(run_cli, db_location) -> None:
    res = run_cli("query", "happy")
    assert res.exit_code == 0 and "run `moodindex index FOLDER` first" in res.stderr


def test_newline_in_a_path_warns_to_use_null(run_cli, db_location) -> None:
    engine = open_db(db_location)
    with session_scope(engine) as s:
        add_photo(s, "/lib/two\nlines.jpg", faces=[("fear", 0.8)])
    engine.dispose()
    res = run_cli("query", "--format", "paths", "scared")
    assert res.stdout == "/lib/two\nlines.jpg\n" and "--null" in res.stderr


def test_hemisphere_option_and_environment(run_cli, db_location, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = open_db(db_location)
    with session_scope(engine) as s:
        add_photo(s, "/lib/july.jpg", datetime(2021, 7, 10), [("happy", 0.9)])
        add_photo(s, "/lib/january.jpg", datetime(2022, 1, 10), [("happy", 0.9)])
    engine.dispose()
    north = run_cli("query", "--format", "paths", "summer", "2021")
    south = run_cli("query", "--format", "paths", "--hemisphere", "south", "summer", "2021")
    assert north.stdout == "/lib/july.jpg\n" and south.stdout == "/lib/january.jpg\n"
    monkeypatch.setenv("MOODINDEX_HEMISPHERE", "south")
    assert run_cli("query", "--format", "paths", "summer", "2021").stdout == "/lib/january.jpg\n"


def test_help_shows_the_language(run_cli) -> None:
    res = run_cli("query", "--help")
    assert res.exit_code == 0
    for needle in ("sad photos from 2019", "year:2018..2020", "northern hemisphere", "--exif-only", "--min-score"):
        assert needle in res.stdout


# --- a real library: files written with EXIF dates, indexed by `moodindex index` ---------------

@pytest.mark.slow
def test_query_a_real_indexed_library(run_cli, tmp_path: Path, dev_faces_dir: Path) -> None:
    from tests.photo_factory import background, compose, dev_faces, write_photo

    lib = tmp_path / "Pictures"
    faces = dev_faces(dev_faces_dir, "happy", 4) + dev_faces(dev_faces_dir, "sad", 2)
    written = {
        "Trips/2019-02-28 ski.jpg": (faces[0:2], datetime(2019, 2, 28, 23, 59, 59)),
        "Trips/2019-12-31 party.jpg": (faces[2:3], datetime(2019, 12, 31, 23, 30)),
        "Home/2020-01-01 brunch.jpg": (faces[3:4], datetime(2020, 1, 1, 0, 15)),
        "Home/2020-02-29 leap.jpg": (faces[4:5], datetime(2020, 2, 29, 12)),
        "Home/no date.jpg": (faces[5:6], None),
    }
    for i, (name, (people, taken)) in enumerate(written.items()):
        img, _ = compose(people, size=(1600, 1200), face_px=360, seed=i)
        write_photo(lib / name, img, taken=taken)
    write_photo(lib / "Home/landscape.jpg", background(1600, 1200, seed=4), taken=datetime(2019, 6, 1))
    index = run_cli("index", lib, "--workers", "1", "--format", "json")
    assert index.exit_code == 0, index.stderr

    def records(*words: str) -> dict[str, dict]:
        res = run_cli("query", "--format", "json", "--limit", "0", *words)
        assert res.exit_code == 0, res.stderr
        return {Path(r["path"]).relative_to(lib).as_posix(): r for r in json.loads(res.stdout)}

    shown = {}
    for path in sorted(lib.rglob("*.jpg")):
        res = run_cli("show", path, "--format", "json")
        assert res.exit_code == 0, res.stderr
        shown[path.relative_to(lib).as_posix()] = json.loads(res.stdout)
    with_faces = {n for n, data in shown.items() if data["faces"]}
    everything = records()
    assert set(everything) == with_faces  # the empty query: every photo with faces
    found = with_faces - {"Home/landscape.jpg"}
    assert len(found) >= 4, f"the detector found faces in too few test photos: {sorted(found)}"
    for name, r in everything.items():
        taken = written[name][1] if name in written else datetime(2019, 6, 1)
        if taken is None:
            assert r["date_source"] == "file"
        else:
            assert (r["taken_at"], r["date_source"]) == (taken.isoformat(timespec="seconds"), "exif")
        assert r["faces"] == shown[name]["faces"] == len(shown[name]["face_details"])

    # date edges, by EXIF DateTimeOriginal (local time), not by file time
    dated = {n: (written[n][1] if n in written else datetime(2019, 6, 1)) for n in with_faces}

    def expect(test) -> set[str]:  # noqa: ANN001
        return {n for n, t in dated.items() if t is not None and test(t)}

    assert set(records("2019")) == expect(lambda t: t.year == 2019)
    assert set(records("2020-02-29")) == expect(lambda t: t.date() == datetime(2020, 2, 29).date())
    assert set(records("february", "2019")) == expect(lambda t: (t.year, t.month) == (2019, 2))
    assert set(records("between", "December", "2019", "and", "January", "2020")) == expect(
        lambda t: datetime(2019, 12, 1) <= t < datetime(2020, 2, 1))
    assert set(records("after", "2019-02-28", "before", "2020")) == expect(
        lambda t: datetime(2019, 3, 1) <= t < datetime(2020, 1, 1))
    assert len(expect(lambda t: True)) >= 3
    assert set(records("path:trips")) == {n for n in with_faces if n.startswith("Trips/")}
    assert set(records("--exif-only")) == expect(lambda t: True)
    if "Home/no date.jpg" in found:
        table = run_cli("query", "path:no")
        assert "~" in table.stdout and "date estimated" in table.stdout

    # each emotion query returns exactly the photos with a face of that top class, scored by the best one
    for emotion in ("happy", "sad", "neutral", "angry", "surprise", "fear", "disgust"):
        got = records(f"emotion:{emotion}")
        for name, data in shown.items():
            if name not in with_faces:
                continue
            best = [f["scores"][emotion] for f in data["face_details"] if f["emotion"] == emotion]
            if best:
                assert got[name]["score"] == pytest.approx(max(best), abs=1e-4)
                assert got[name]["emotion"] == emotion
            else:
                assert name not in got


def test_the_querys_own_count_replaces_the_default_limit(run_cli, db_location) -> None:
    engine = open_db(db_location)
    with session_scope(engine) as s:
        for i in range(30):
            add_photo(s, f"/lib/smile{i:02d}.jpg", datetime(2020, 1, 1 + i % 28), [("happy", 0.5 + i / 100)])
    engine.dispose()
    res = run_cli("query", "--format", "paths", "the", "25", "happiest", "pictures")
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[:2] == ["/lib/smile29.jpg", "/lib/smile28.jpg"]
    assert len(res.stdout.splitlines()) == 25                       # more than the default 20
    assert len(run_cli("query", "--format", "paths", "happy").stdout.splitlines()) == 20
    assert len(run_cli("query", "--format", "paths", "-n", "4", "top", "25", "happy").stdout.splitlines()) == 4
