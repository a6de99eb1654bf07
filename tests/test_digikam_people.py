"""`moodindex digikam sync` reads the faces the user named in digiKam: a database built from
digiKam's own schema (tests/fixtures/digikam_core_schema.sql) holding People tags and their
`tagRegion` rectangles, matched to the faces moodindex found in real photos."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from fixtures.tagkit import FIXTURES

from indexer.export.digikam import parse_rect
from indexer.media.regions import DigikamFace, pixel_region
from tests.photo_factory import compose, dev_faces, rotate_for_orientation, write_photo

SCHEMA = FIXTURES / "digikam_core_schema.sql"


def _json(run_cli, *args):
    res = run_cli(*args)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _rect(box) -> str:
    x, y, w, h = box
    return f'<rect x="{x}" y="{y}" width="{w}" height="{h}"/>'


class Digikam:
    """digikam4.db as digiKam lays out confirmed faces: a People root, person tags below it (with
    the `person` property digiKam sets), ImageTags and ImageTagProperties 'tagRegion'."""

    def __init__(self, path: Path, root: Path) -> None:
        self.path = path
        with self.conn() as conn:
            conn.executescript(SCHEMA.read_text())
            conn.execute("INSERT INTO AlbumRoots (id, label, status, type, identifier, specificPath) VALUES "
                         "(1, 'Pictures', 0, 1, ?, '/')", (f"volumeid:?path={root}",))
            conn.execute("INSERT INTO Albums (id, albumRoot, relativePath) VALUES (1, 1, '/')")
            # the People root and its Unknown placeholder come with the schema, as on digiKam's first start
            self.people = conn.execute("SELECT id FROM Tags WHERE pid = 0 AND name = 'People'").fetchone()[0]
            self.unknown = conn.execute("SELECT id FROM Tags WHERE pid = ? AND name = 'Unknown'",
                                        (self.people,)).fetchone()[0]
            conn.execute("INSERT INTO TagProperties VALUES (?, 'unknownPerson', '')", (self.unknown,))
            conn.execute("INSERT INTO Tags (pid, name) VALUES (0, 'places')")

    def conn(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path)

    def image(self, image_id: int, name: str, size: tuple[int, int] | None, orientation: int = 1) -> None:
        with self.conn() as conn:
            conn.execute("INSERT INTO Images (id, album, name, status, category) VALUES (?, 1, ?, 1, 1)",
                         (image_id, name))
            if size:
                conn.execute("INSERT INTO ImageInformation (imageid, width, height, orientation) VALUES (?, ?, ?, ?)",
                             (image_id, *size, orientation))

    def person(self, name: str) -> int:
        with self.conn() as conn:
            row = conn.execute("SELECT id FROM Tags WHERE pid = ? AND name = ?", (self.people, name)).fetchone()
            if row:
                return row[0]
            tag = conn.execute("INSERT INTO Tags (pid, name) VALUES (?, ?)", (self.people, name)).lastrowid
            conn.execute("INSERT INTO TagProperties VALUES (?, 'person', ?)", (tag, name))
            return tag

    def face(self, image_id: int, tag: int, box, prop: str = "tagRegion") -> None:
        with self.conn() as conn:
            conn.execute("INSERT OR IGNORE INTO ImageTags VALUES (?, ?)", (image_id, tag))
            conn.execute("INSERT INTO ImageTagProperties VALUES (?, ?, ?, ?)", (image_id, tag, prop, _rect(box)))

    def forget(self, image_id: int, tag: int) -> None:
        with self.conn() as conn:
            conn.execute("DELETE FROM ImageTags WHERE imageid = ? AND tagid = ?", (image_id, tag))
            conn.execute("DELETE FROM ImageTagProperties WHERE imageid = ? AND tagid = ?", (image_id, tag))


@pytest.fixture()
def scene(tmp_path: Path, dev_faces_dir: Path, yunet_installed: Path):
    """Two indexed photos of two real faces each: one upright, one stored turned (orientation 6)."""
    img, _ = compose(dev_faces(dev_faces_dir, "happy", 2), seed=11)
    lib = tmp_path / "Pictures"
    upright = write_photo(lib / "party.jpg", img)
    turned = write_photo(lib / "turned.jpg", rotate_for_orientation(img, 6), orientation=6)
    return lib, upright, turned


def _boxes(run_cli, photo: Path) -> list[list[int]]:
    return [f["box"] for f in _json(run_cli, "show", photo, "--format", "json")["face_details"]]


def _who(run_cli, photo: Path) -> list[str | None]:
    return [f["person"] for f in _json(run_cli, "show", photo, "--format", "json")["face_details"]]


def _sync(run_cli, db: Path, *extra: str):
    res = run_cli("digikam", "sync", "--digikam-db", db, *extra)
    assert res.exit_code == 0, res.output
    return res.stdout


def test_names_and_rectangles_from_digikam_reach_the_faces(run_cli, scene, tmp_path):
    lib, upright, turned = scene
    assert run_cli("index", lib, "--workers", "1").exit_code == 0
    up, tu = _boxes(run_cli, upright), _boxes(run_cli, turned)
    assert len(up) == 2 and len(tu) == 2
    dk = Digikam(tmp_path / "digikam4.db", lib)
    dk.image(1, "party.jpg", (2400, 1800))
    dk.image(2, "turned.jpg", (2400, 1800), orientation=6)  # digiKam's size: as displayed
    anna, ben, cleo = dk.person("Anna Lind"), dk.person("Ben Okafor"), dk.person("Cleo")
    grow = lambda b: (b[0] - 20, b[1] - 30, b[2] + 40, b[3] + 50)  # noqa: E731 - a box drawn by hand, looser
    dk.face(1, anna, grow(up[0]))
    dk.face(1, ben, up[1])
    dk.face(1, cleo, (100, 100, 200, 200))  # a named face the detector did not find
    dk.face(1, dk.unknown, up[1])           # digiKam's "Unknown" placeholder: no name
    dk.face(2, ben, tu[0])
    dk.face(2, anna, tu[1], prop="autodetectedPerson")  # a suggestion the user never confirmed

    out = _sync(run_cli, dk.path)
    assert "4 named faces read on 2 photos" in out
    assert _who(run_cli, upright) == ["Anna Lind", "Ben Okafor"]
    assert _who(run_cli, turned) == ["Ben Okafor", None]
    people = {p["name"]: (p["photos"], p["faces"]) for p in _json(run_cli, "people", "--format", "json")}
    assert people == {"Anna Lind": (1, 1), "Ben Okafor": (2, 2), "Cleo": (1, 0)}
    found = _json(run_cli, "query", "happy", "photos", "of", "anna", "lind", "--format", "json")
    assert [r["path"] for r in found] == [str(upright)]

    # a re-analysis keeps digiKam's names and ties them to the new faces; a name the user took
    # away in digiKam goes at the next sync
    assert run_cli("index", lib, "--workers", "1", "--force").exit_code == 0
    assert _who(run_cli, upright) == ["Anna Lind", "Ben Okafor"]
    dk.forget(1, anna)
    _sync(run_cli, dk.path)
    assert _who(run_cli, upright) == [None, "Ben Okafor"]


def test_dry_run_reads_but_stores_no_names(run_cli, scene, tmp_path):
    lib, upright, _ = scene
    assert run_cli("index", lib, "--workers", "1").exit_code == 0
    dk = Digikam(tmp_path / "digikam4.db", lib)
    dk.image(1, "party.jpg", None)  # no ImageInformation: our own size is taken
    dk.face(1, dk.person("Anna Lind"), _boxes(run_cli, upright)[0])
    assert "1 named faces read on 1 photos" in _sync(run_cli, dk.path, "--dry-run")
    assert _who(run_cli, upright) == [None, None]
    _sync(run_cli, dk.path)
    assert _who(run_cli, upright) == ["Anna Lind", None]


def test_rect_parsing_and_frames():
    assert parse_rect('<rect x="10" y="20" width="30" height="40"/>') == (10, 20, 30, 40)
    assert parse_rect("<rect height='4' x='1'/>") is None
    assert parse_rect('<rect x="1" y="2" width="0" height="5"/>') is None
    assert parse_rect("garbage") is None
    # digiKam's size as displayed (1800x2400 for a 2400x1800 sensor turned by orientation 6): as is
    r = pixel_region("A", (180, 240, 360, 480), (1800, 2400), 6, (1800, 2400))
    assert r is not None and r.box == pytest.approx((0.1, 0.1, 0.2, 0.2))
    # its size as stored (an old scan): the rectangle is in the stored frame and is turned
    r = pixel_region("A", (240, 180, 480, 360), (2400, 1800), 6, (1800, 2400))
    assert r is not None and r.box == pytest.approx((0.7, 0.1, 0.2, 0.2))
    assert pixel_region("A", (5000, 5000, 10, 10), None, 1, (100, 100)) is None  # outside the photo
    assert DigikamFace("A", (1, 2, 3, 4)).drawn_on is None
