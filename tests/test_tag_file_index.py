"""`tag-file` keeps the index in step when it rewrites an indexed photo, and creates no index when
there is none (digiKam's Batch Queue Manager runs it on files that were never indexed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures.tagkit import need_exiftool
from sqlalchemy import select

from indexer.db.models import Photo
from indexer.db.session import open_db, session_scope
from tests.photo_factory import compose, dev_faces, write_photo


@pytest.fixture()
def photo(tmp_path: Path, dev_faces_dir: Path) -> Path:
    need_exiftool()
    img, _ = compose(dev_faces(dev_faces_dir, "happy", 1), seed=5)
    return write_photo(tmp_path / "lib" / "one.jpg", img)


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text('detector = "haar"\ntag_min_score = 0.0\n')  # any face makes a tag
    return path


def test_tag_file_updates_the_indexed_row(run_cli, db_path, photo, config) -> None:
    res = run_cli("--config", config, "index", photo.parent, "--workers", "1", "--format", "json")
    assert json.loads(res.stdout)["faces"] >= 1
    res = run_cli("--config", config, "tag-file", photo, "--in-file")
    assert res.exit_code == 0 and "written:" in res.output, res.output
    st = photo.stat()
    with session_scope(open_db(db_path)) as s:
        row = s.scalar(select(Photo).where(Photo.path == str(photo)))
        assert (row.size, row.mtime_ns) == (st.st_size, st.st_mtime_ns)
    again = json.loads(run_cli("--config", config, "index", photo.parent, "--format", "json").stdout)
    assert again["unchanged"] == 1 and again["changed"] == 0  # no re-analysis of a tag edit


def test_tag_file_without_an_index_creates_none(run_cli, db_path, photo, config) -> None:
    res = run_cli("--config", config, "tag-file", photo, "--in-file")
    assert res.exit_code == 0 and "written:" in res.output, res.output
    assert not db_path.exists()
