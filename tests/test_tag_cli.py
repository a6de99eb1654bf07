"""`moodindex tag` / `untag` end to end: index rows -> files, read back with exiftool."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixtures.tagkit import DARKTABLE_SIDECAR, add_photo, as_list, exif_json, make_photo, need_exiftool
from sqlalchemy import select

from indexer.cli import main
from indexer.db.models import Photo
from indexer.db.session import open_db, session_scope

HS = "XMP-lr:HierarchicalSubject"


@pytest.fixture()
def library(tmp_path: Path, engine, db_location: Path | str):  # noqa: ANN001, ANN201
    need_exiftool()
    root = tmp_path / "Pictures"
    root.mkdir()
    files = {
        "happy.jpg": [("happy", 0.92)],
        "two.png": [("sad", 0.81), ("happy", 0.4)],        # happy below the default 0.5
        "unsure.jpg": [("angry", 0.3)],                     # no face qualifies
        "none.jpg": [],                                     # no faces: not visited by default
        "broken.jpg": [("fear", 0.9)],                      # gets a malformed sidecar
        "IMG_1.nef": [("surprise", 0.77)],                  # RAW: always a sidecar
    }
    with session_scope(engine) as s:
        for i, (name, faces) in enumerate(files.items()):
            path = root / name
            if name.endswith(".nef"):
                path.write_bytes(b"raw bytes")
            else:
                make_photo(path, seed=i)
            add_photo(s, path, root, faces)
    (root / "broken.jpg.xmp").write_text("<x:xmpmeta>not closed")
    shutil.copy(DARKTABLE_SIDECAR, root / "happy.jpg.xmp")
    return {"root": root, "db": db_location}


def run(db: Path, *args: str):  # noqa: ANN201
    return CliRunner().invoke(main, ["--db", str(db), *args])


def hs(path: Path) -> list[str]:
    return as_list(exif_json(path, HS).get(HS)) if path.exists() else []


def test_tag_default_sidecars(library: dict) -> None:
    root = library["root"]
    res = run(library["db"], "tag")
    assert res.exit_code == 1, res.output  # one file failed (the malformed sidecar) ...
    assert "refused:" in res.output and "broken.jpg.xmp" in res.output and "malformed" in res.output
    assert "3 written" in res.output and "1 refused" in res.output  # ... and the run went on
    assert hs(root / "happy.jpg.xmp") == ["Happy", "events|holiday 2023", "places|beach", "Emotion|Happy"]
    assert hs(root / "two.png.xmp") == ["Emotion|Sad"]
    assert hs(root / "IMG_1.nef.xmp") == ["Emotion|Surprise"]
    assert not (root / "unsure.jpg.xmp").exists() and not (root / "none.jpg.xmp").exists()
    assert (root / "broken.jpg.xmp").read_text() == "<x:xmpmeta>not closed"
    # the photos themselves are untouched in sidecar mode
    assert hs(root / "happy.jpg") == ["places|beach"]


def test_tag_again_is_a_no_op_and_min_score_retags(library: dict) -> None:
    root = library["root"]
    run(library["db"], "tag")
    again = run(library["db"], "-q", "tag")
    assert "0 written" in again.output and "written:" not in again.output
    lower = run(library["db"], "tag", "--min-score", "0.35")
    assert "written:" in lower.output
    assert sorted(hs(root / "two.png.xmp")) == ["Emotion|Happy", "Emotion|Sad"]
    assert hs(root / "unsure.jpg.xmp") == []


def test_in_file_and_untag(library: dict) -> None:
    root = library["root"]
    res = run(library["db"], "tag", "--in-file", "--prefix", "Mood")
    assert "written" in res.output
    assert hs(root / "happy.jpg") == ["places|beach", "Mood|Happy"]
    assert as_list(exif_json(root / "happy.jpg", "IPTC:Keywords")["IPTC:Keywords"]) == ["beach", "Mood", "Happy"]
    assert hs(root / "two.png") == ["places|beach", "Mood|Sad"]
    assert hs(root / "IMG_1.nef.xmp") == ["Mood|Surprise"]  # RAW: sidecar even with --in-file
    # only metadata changed: the index records the new size/mtime, so `index` won't re-run models
    with session_scope(open_db(library["db"])) as s:
        row = s.scalar(select(Photo).where(Photo.path == str(root / "happy.jpg")))
        st = (root / "happy.jpg").stat()
        assert (row.size, row.mtime_ns) == (st.st_size, st.st_mtime_ns)
    res = run(library["db"], "untag")
    assert hs(root / "happy.jpg") == ["places|beach"]
    assert hs(root / "two.png") == ["places|beach"]
    assert not (root / "IMG_1.nef.xmp").exists()  # we created it and it held nothing else
    assert hs(root / "happy.jpg.xmp") == ["Happy", "events|holiday 2023", "places|beach"]


def test_dry_run_and_query(library: dict) -> None:
    root = library["root"]
    res = run(library["db"], "tag", "--dry-run")
    assert "would-write:" in res.output and "+lr:hierarchicalSubject=Emotion|Sad" in res.output
    assert not (root / "two.png.xmp").exists()
    res = run(library["db"], "tag", "sad")
    assert hs(root / "two.png.xmp") == ["Emotion|Sad"]
    assert hs(root / "happy.jpg.xmp") == ["Happy", "events|holiday 2023", "places|beach"]  # not matched


@pytest.mark.parametrize("prefix", ["A|B", "A/B", "A,B"])
def test_bad_prefix_is_a_usage_error(library: dict, prefix: str) -> None:
    res = run(library["db"], "tag", "--prefix", prefix)
    assert res.exit_code == 2 and "must not contain" in res.output


def test_in_file_says_where_the_tags_went_and_query_takes_several_words(library: dict) -> None:
    root = library["root"]
    res = run(library["db"], "tag", "--in-file", "path:nef", "surprised", "photos")  # several QUERY words
    assert res.exit_code == 0, res.output
    assert "tag (sidecar: these formats are not rewritten in place): 1 written" in res.output
    assert "(in-file)" not in res.output
    assert hs(root / "IMG_1.nef.xmp") == ["Emotion|Surprise"] and not (root / "happy.jpg.xmp.tmp").exists()
    mixed = run(library["db"], "tag", "--in-file", "--prefix", "Mood", "--min-score", "0.5")
    assert "tag (in-file, 1 as sidecars):" in mixed.output  # the NEF's sidecar beside the rewritten files
    res = run(library["db"], "untag", "path:nef", "surprised")
    assert res.exit_code == 0, res.output
    assert not (root / "IMG_1.nef.xmp").exists()
    assert hs(root / "two.png") == ["places|beach", "Mood|Sad"]  # not matched by the untag query


def test_a_damaged_index_is_one_line_without_sqlalchemys_link(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"\x7fnot a database at all" * 300)
    res = run(junk, "status")
    assert res.exit_code == 1
    assert res.output.strip() == f"moodindex: cannot open the index at {junk}: file is not a database"
    assert "Background on this error" not in res.output and "sqlalche.me" not in res.output
