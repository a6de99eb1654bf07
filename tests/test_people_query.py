"""Queries by person: the parser (table-driven), the engine (the named person's own face must show
the emotion), and what `query`, `show`, `people` and `gallery` print about names."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path

import pytest

from indexer.db.models import Photo, PhotoPerson
from indexer.db.people import person_for
from indexer.db.session import open_db, session_scope
from indexer.query import QueryError, parse
from indexer.query.filters import person_keys
from tests.factories import add_photo
from tests.photo_factory import background, write_photo

PEOPLE = ["Anna Lind", "Ben Okafor", "Anna Berg", "May", "Zoë d'Arc"]


@pytest.mark.parametrize(("text", "people", "emotions"), [
    ("photos of Anna Lind", ["Anna Lind"], ()),
    ("happy photos of Anna Lind", ["Anna Lind"], ("happy",)),
    ("happy photos of anna LIND", ["Anna Lind"], ("happy",)),
    ("Anna Lind's happy photos", ["Anna Lind"], ("happy",)),
    ("Lind and Ben laughing", ["Anna Lind", "Ben Okafor"], ("happy",)),   # unique single words
    ("Ben Okafor and Anna Berg surprised", ["Ben Okafor", "Anna Berg"], ("surprise",)),
    ('person:"Anna Lind"', ["Anna Lind"], ()),
    ("person:'anna lind' sad", ["Anna Lind"], ("sad",)),
    ("person:May", ["May"], ()),                    # a one-word name that is also a month
    ("who:Ben happy", ["Ben Okafor"], ("happy",)),  # 'who' is person's second key; 'Ben' names one person
    ("photos of Zoë d'Arc", ["Zoë d'Arc"], ()),
    ("sad photos from May", [], ("sad",)),          # 'May' in free text stays the month
])
def test_names_are_understood(text, people, emotions):
    query = parse(text, people=PEOPLE)
    assert [n for k, n in query.extra if k == "person"] == people
    assert query.emotions == emotions


@pytest.mark.parametrize(("text", "message"), [
    ("photos of Ana Lind", "'ana' (did you mean Anna Lind"),
    ('person:"Ana Lindh"', "no one by that name in the index (did you mean Anna Lind?)"),
    ("person:Nobody", "`moodindex people` lists the names"),
    ("Anna laughing", "'anna' (did you mean Anna Lind / Anna Berg"),  # two Annas: not a name on its own
    ('person:""', "person: needs a value"),
])
def test_unknown_and_ambiguous_names_say_what_was_meant(text, message):
    with pytest.raises(QueryError) as err:
        parse(text, people=PEOPLE)
    assert message in str(err.value)


def test_without_the_index_names_person_takes_any_value():
    query = parse('person:"Someone Else" happy')
    assert person_keys(query) == ["someone else"] and query.describe() == "Someone Else, happy"
    with pytest.raises(QueryError):
        parse("photos of Anna Lind")  # free-text names need the names the index knows


# -- the engine and the commands ---------------------------------------------------------------

def _name(s, photo: Photo, name: str, face: int | None) -> None:
    s.add(PhotoPerson(photo_id=photo.id, person_id=person_for(s, name).id, source="mwg", x=0, y=0, w=10, h=10,
                      face_id=None if face is None else photo.faces[face].id))


@pytest.fixture()
def named(db_path: Path, tmp_path: Path) -> Path:
    """Anna smiles in a and d, is sad in b (where Ben smiles), and is named without a face in c.
    The photos exist (plain 1200x900 scenes), so the gallery draws their boxes."""
    lib = tmp_path / "lib"
    for n, name in enumerate("abcde"):
        write_photo(lib / f"{name}.jpg", background(1200, 900, seed=n))
    engine = open_db(db_path)
    with session_scope(engine) as s:
        a = add_photo(s, f"{lib}/a.jpg", datetime(2020, 1, 1), [("happy", 0.90), ("sad", 0.80)])
        b = add_photo(s, f"{lib}/b.jpg", datetime(2020, 1, 2), [("sad", 0.85), ("happy", 0.99)])
        c = add_photo(s, f"{lib}/c.jpg", datetime(2020, 1, 3), [])
        d = add_photo(s, f"{lib}/d.jpg", datetime(2020, 1, 4), [("happy", 0.70), ("happy", 0.95)])
        add_photo(s, f"{lib}/e.jpg", datetime(2020, 1, 5), [("happy", 0.97)])  # nobody named
        for photo, anna, ben in ((a, 0, 1), (b, 0, 1), (d, 0, 1)):
            _name(s, photo, "Anna Lind", anna)
            _name(s, photo, "Ben Okafor", ben)
        _name(s, c, "Anna Lind", None)
    engine.dispose()
    return lib


def _json(run_cli, *args: str):
    res = run_cli(*args)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_emotion_must_be_on_the_named_persons_own_face(run_cli, named):
    found = _json(run_cli, "query", "--format", "json", "happy", "photos", "of", "Anna", "Lind")
    # b has a happier face than any of Anna's, but it is Ben's
    assert [(Path(r["path"]).name, r["score"], r["person"]) for r in found] == [
        ("a.jpg", 0.9, "Anna Lind"), ("d.jpg", 0.7, "Anna Lind")]
    assert found[0]["people"] == ["Anna Lind", "Ben Okafor"]


def test_every_photo_of_a_person_face_found_or_not(run_cli, named):
    found = _json(run_cli, "query", "--format", "json", 'person:"ANNA LIND"')
    assert sorted(Path(r["path"]).name for r in found) == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]


def test_two_people_both_showing_it(run_cli, named):
    found = _json(run_cli, "query", "--format", "json", "Anna", "Lind", "and", "Ben", "laughing")
    assert [Path(r["path"]).name for r in found] == ["d.jpg"]
    assert found[0]["person"] in ("Anna Lind", "Ben Okafor")


def test_near_name_gets_a_suggestion(run_cli, named):
    res = run_cli("query", "photos", "of", "Ana", "Lind")
    assert res.exit_code == 2 and "did you mean Anna Lind" in res.stderr


def test_csv_carries_the_person(run_cli, named):
    res = run_cli("query", "--format", "csv", "sad", 'person:"Anna Lind"')
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [(Path(r["path"]).name, r["person"], r["people"]) for r in rows] == [("b.jpg", "Anna Lind",
                                                                      "Anna Lind; Ben Okafor")]


def test_people_lists_names_photos_and_emotions(run_cli, named):
    people = _json(run_cli, "people", "--format", "json")
    assert [(p["name"], p["photos"], p["faces"]) for p in people] == [("Anna Lind", 4, 3), ("Ben Okafor", 3, 3)]
    assert people[0]["emotions"]["happy"] == 2 and people[0]["emotions"]["sad"] == 1
    assert people[1]["emotions"]["happy"] == 2 and people[1]["emotions"]["sad"] == 1
    text = run_cli("people").stdout.splitlines()
    assert text[0].split() == ["NAME", "PHOTOS", "FACES", "EMOTIONS"]
    assert text[1].startswith("Anna Lind") and "happy 2, sad 1" in text[1]


def test_show_names_each_face(run_cli, named):
    data = _json(run_cli, "show", named / "b.jpg", "--format", "json")
    assert data["people"] == ["Anna Lind", "Ben Okafor"]
    assert [f["person"] for f in data["face_details"]] == ["Anna Lind", "Ben Okafor"]
    text = run_cli("show", named / "b.jpg").stdout
    assert "people    Anna Lind, Ben Okafor" in text and "(Ben Okafor)" in text


def test_gallery_labels_faces_by_name(run_cli, named, tmp_path):
    out = tmp_path / "g.html"
    res = run_cli("gallery", "happy", "photos", "of", "Anna", "Lind", "-o", out)
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert 'data-person="Anna Lind"' in html and "<span>Anna Lind happy</span>" in html
    assert "Face 2 (Ben Okafor)" in html
