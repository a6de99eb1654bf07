"""File names are bytes on POSIX: a name that is not UTF-8 (an old Latin-1 archive) is indexed,
queried, shown escaped, listed as its exact bytes and tagged, on SQLite and PostgreSQL.

It used to stop the whole run: "internal error: UnicodeEncodeError ... surrogates not allowed",
0 rows stored, good files included."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from indexer.db.models import Photo
from indexer.db.session import open_db
from indexer.paths import escape_path, path_json, unescape_path
from tests.photo_factory import compose, dev_faces, write_photo

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file names are bytes on POSIX only")


def name(raw: bytes) -> str:
    """A str the os functions take for these bytes (surrogateescape)."""
    return os.fsdecode(raw)


@pytest.fixture()
def latin1_library(tmp_path: Path, dev_faces_dir: Path, yunet_installed: Path) -> dict[str, Path]:
    """A root folder whose own name is Latin-1 ("Bilder_ä"), holding a face photo with a Latin-1
    name, a good one, a name with a backslash, and a broken file with a Latin-1 name."""
    root = tmp_path / name(b"Bilder_\xe4")
    happy = dev_faces(dev_faces_dir, "happy", 3)
    photos = {"latin1": root / name(b"f\xeate_\xff.jpg"), "good": root / "good.jpg",
              "backslash": root / "a\\xff.jpg"}  # a real backslash: must not read back as byte 0xff
    for i, path in enumerate(photos.values()):
        img, _ = compose([happy[i]], size=(1200, 900), face_px=360, seed=i)
        write_photo(path, img)
    photos["broken"] = root / name(b"cass\xe9.jpg")
    photos["broken"].write_bytes(b"not a photo at all")
    photos["root"] = root
    return photos


def _rows(db_location: Path | str) -> dict[str, str]:
    engine = open_db(db_location)
    with Session(engine) as s:
        rows = {p.path: p.status for p in s.scalars(select(Photo))}
    engine.dispose()
    return rows


def _exiftool_subjects(path: Path) -> list[str]:
    """What exiftool itself reads from the file at these exact bytes."""
    done = subprocess.run([b"exiftool", b"-j", b"-XMP-lr:HierarchicalSubject", os.fsencode(path)],
                          capture_output=True, check=True)
    value = json.loads(done.stdout.decode("utf-8", "replace"))[0].get("HierarchicalSubject", [])
    return value if isinstance(value, list) else [value]


def test_escaping_is_reversible_and_keeps_folders_prefixes() -> None:
    for raw in (b"/a/b.jpg", b"/a/f\xeate_\xff.jpg", b"/a\\b", b"/a\\xff", b"\\\\x", b"/\xc3/\xa9"):
        text = escape_path(name(raw))
        assert unescape_path(text) == name(raw)
        text.encode("utf-8")  # storable and printable as it is
    assert escape_path(name(b"/a/\xff")) == "/a/\\xff" and escape_path("/a/\\xff") == "/a/\\\\xff"
    folder, inside = name(b"/p/\xe4"), name(b"/p/\xe4/x.jpg")
    assert escape_path(inside).startswith(escape_path(folder) + "/")
    assert not escape_path(name(b"/p/\xe4\xe4/x.jpg")).startswith(escape_path(folder) + "/")


def test_a_name_that_is_not_utf8_is_indexed_queried_shown_and_tagged(run_cli, latin1_library, db_location):
    lib = latin1_library
    root, latin1 = lib["root"], lib["latin1"]
    res = run_cli("index", root, "-j", "1", "--format", "json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert (summary["new"], summary["failed"]) == (3, 1), summary
    rows = _rows(db_location)
    assert rows == {str(lib["latin1"]): "ok", str(lib["good"]): "ok", str(lib["backslash"]): "ok",
                    str(lib["broken"]): "error"}

    # listed as the exact bytes, one a line or NUL-separated
    listed = run_cli("list", "--format", "paths0")
    assert listed.exit_code == 0
    assert set(listed.stdout_bytes.split(b"\0")[:-1]) == {os.fsencode(lib[k]) for k in ("latin1", "good", "backslash")}
    assert os.fsencode(latin1) + b"\n" in run_cli("list").stdout_bytes
    # JSON: the escaped text, and the exact bytes in base64 for the names that needed escaping
    records = {r["path"]: r for r in json.loads(run_cli("list", "--format", "json").stdout)}
    shown = escape_path(str(latin1))
    assert "\\xeate_\\xff.jpg" in shown and "Bilder_\\xe4" in shown
    assert base64.b64decode(records[shown]["path_bytes_base64"]) == os.fsencode(latin1)
    assert base64.b64decode(records[shown]["root_bytes_base64"]) == os.fsencode(root)
    assert path_json("/plain/good.jpg") == {"path": "/plain/good.jpg"}  # only names that need it get the bytes
    assert base64.b64decode(records[escape_path(str(lib["backslash"]))]["path_bytes_base64"]).endswith(b"a\\xff.jpg")

    # queried by emotion and by a path: filter holding the byte itself; shown escaped
    happy = run_cli("query", "happy", "--format", "paths", "--min-score", "0")
    assert os.fsencode(latin1) in happy.stdout_bytes.split(b"\n"), happy.output
    by_name = run_cli("query", "path:" + name(b"_\xff."), "--min-score", "0")
    assert by_name.exit_code == 0 and shown in by_name.output and "good.jpg" not in by_name.output
    show = run_cli("show", latin1)
    assert show.exit_code == 0 and show.output.splitlines()[0] == shown
    errors = run_cli("errors")
    assert escape_path(str(lib["broken"])) in errors.output and "cass\\xe9.jpg" in errors.output

    # tagged in the file itself, through exiftool, at the exact bytes of its name
    tagged = run_cli("tag", "--in-file", "--min-score", "0")
    assert tagged.exit_code == 0, tagged.output
    assert "Emotion|Happy" in _exiftool_subjects(latin1)
    # nothing was re-analysed or duplicated: every stored path is the file's own name
    again = json.loads(run_cli("index", root, "-j", "1", "--format", "json").stdout)
    assert (again["new"], again["changed"], again["moved"], again["deleted"]) == (0, 0, 0, 0), again
    assert _rows(db_location).keys() == rows.keys()
    # root membership: a photo deleted below the Latin-1 root is found gone
    lib["good"].unlink()
    gone = json.loads(run_cli("index", root, "-j", "1", "--format", "json").stdout)
    assert gone["deleted"] == 1 and str(lib["good"]) not in {p for p, s in _rows(db_location).items() if s == "ok"}


def test_paths_stored_before_escaping_are_migrated_both_ways(db_location):
    """Migration 0007: a backslash stored by an older version is doubled, so it reads back as itself."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from indexer.db.session import migrations_dir

    engine = open_db(db_location, migrate=False)
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))

    def migrate(to: str, how=command.upgrade) -> None:  # noqa: ANN001
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            how(cfg, to)

    def stored() -> list[tuple[str, str]]:
        with engine.connect() as conn:
            return sorted(tuple(r) for r in conn.execute(text("SELECT path, root FROM photos")))

    migrate("0003")
    with engine.begin() as conn:
        for path in ("/p\\q/a\\xff.jpg", "/p\\q/plain.jpg", "/r/plain.jpg"):
            conn.execute(text("INSERT INTO photos (path, root, size, mtime_ns, status, face_count, indexed_at) "
                              "VALUES (:p, :r, 1, 1, 'ok', 0, '2020-01-01')"), {"p": path, "r": path.rsplit("/", 1)[0]})
    migrate("head")
    assert stored() == [("/p\\\\q/a\\\\xff.jpg", "/p\\\\q"), ("/p\\\\q/plain.jpg", "/p\\\\q"), ("/r/plain.jpg", "/r")]
    with Session(engine) as s:
        assert sorted(s.scalars(select(Photo.path))) == ["/p\\q/a\\xff.jpg", "/p\\q/plain.jpg", "/r/plain.jpg"]
    migrate("0003", command.downgrade)
    assert stored() == [("/p\\q/a\\xff.jpg", "/p\\q"), ("/p\\q/plain.jpg", "/p\\q"), ("/r/plain.jpg", "/r")]
    engine.dispose()


def test_json_from_any_command_stays_valid_utf8(run_cli, latin1_library):
    """`classify` and the emit_json safety net: a name quoted anywhere is escaped inside the JSON
    text (never raw bytes, never an invalid escape such as a bare \\x), with its bytes alongside."""
    latin1, broken = latin1_library["latin1"], latin1_library["broken"]
    res = run_cli("classify", "--format", "json", latin1, broken)
    records = json.loads(res.stdout_bytes.decode("utf-8"))  # strict: raises on a raw byte
    assert [r["path"] for r in records] == [escape_path(str(latin1)), escape_path(str(broken))]
    assert base64.b64decode(records[0]["path_bytes_base64"]) == os.fsencode(latin1)
    assert records[0]["faces"] and records[1]["error"]
    assert run_cli("index", latin1_library["root"], "-j", "1").exit_code == 0
    status = json.loads(run_cli("status", "--format", "json").stdout_bytes.decode("utf-8"))
    assert status["last_run"]["roots"] == [escape_path(str(latin1_library["root"]))]  # the safety net
    missing = run_cli("index", latin1_library["root"] / name(b"gone_\xfe"))
    assert missing.exit_code == 2 and "gone_\\xfe: no such file or folder" in missing.output
