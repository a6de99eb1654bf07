"""`moodindex roots add|list|remove` edit the config file's roots (keeping the rest of it), and
`moodindex forget PATH` removes a folder's rows on purpose, after asking: the one way rows of a
root that is gone leave the index."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from indexer.config import load_settings, tomllib
from indexer.config_edit import render_roots, write_roots
from indexer.db.models import Face, Photo
from indexer.db.session import open_db
from tests.photo_factory import background, write_photo

CONFIG = '''# my moodindex settings
detector = "haar"   # the fast one

roots = [
  "~/Pictures",   # the phone's
]
workers = 1
'''


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    path = tmp_path / "cfg" / "config.toml"
    path.parent.mkdir()
    path.write_text(CONFIG)
    path.chmod(0o600)
    return path


def test_add_list_remove_keep_the_rest_of_the_file(run_cli, config: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    added = run_cli("--config", config, "roots", "add", a, b)
    assert added.exit_code == 0, added.output
    text = config.read_text()
    assert text.startswith('# my moodindex settings\ndetector = "haar"   # the fast one\n\n')
    assert text.endswith("workers = 1\n")
    assert load_settings(config).roots == (Path.home() / "Pictures", a, b)
    assert stat.S_IMODE(config.stat().st_mode) == 0o600  # the file's mode is kept
    listed = json.loads(run_cli("--config", config, "roots", "list", "--format", "json").stdout)
    assert [(it["path"], it["found"]) for it in listed] == [
        (str(Path.home() / "Pictures"), (Path.home() / "Pictures").is_dir()), (str(a), True), (str(b), True)]

    again = run_cli("--config", config, "roots", "add", a, a / ".")
    assert again.exit_code == 0 and "already a root" in again.stderr
    (a / "inner").mkdir()
    inner = run_cli("--config", config, "roots", "add", a / "inner")
    assert "already inside the root" in inner.stderr and load_settings(config).roots[1:] == (a, b)

    b.rmdir()  # a root gone for good can still be removed
    removed = run_cli("--config", config, "roots", "remove", b, "~/Pictures")
    assert removed.exit_code == 0, removed.output
    assert "its photos stay in the index" in removed.stdout and "moodindex forget" in removed.stdout
    assert load_settings(config).roots == (a,)
    assert config.read_text().startswith('# my moodindex settings\ndetector = "haar"   # the fast one\n')
    assert tomllib.loads(config.read_text())["workers"] == 1


def test_usage_errors(run_cli, config: Path, tmp_path: Path) -> None:
    missing = run_cli("--config", config, "roots", "add", tmp_path / "nope")
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    unknown = run_cli("--config", config, "roots", "remove", tmp_path)
    assert unknown.exit_code == 2 and "not a root" in unknown.stderr
    assert config.read_text() == CONFIG  # nothing written


def test_a_new_config_file_and_a_single_string_root(run_cli, tmp_path: Path) -> None:
    config = tmp_path / "new" / "config.toml"
    assert run_cli("--config", config, "roots", "add", tmp_path).exit_code == 0
    assert tomllib.loads(config.read_text()) == {"roots": [str(tmp_path)]}
    config.write_text('roots = "~/Pictures"  # one folder\ndb = "~/i.db"\n')
    assert run_cli("--config", config, "roots", "add", tmp_path).exit_code == 0
    assert tomllib.loads(config.read_text()) == {"roots": ["~/Pictures", str(tmp_path)], "db": "~/i.db"}


def test_file_names_are_data_in_toml(tmp_path: Path) -> None:
    odd = ['/p/quote"s', "/p/back\\slash", "/p/new\nline", "/p/tab\t\x7fdel", "/p/ünïcødé 🙂"]
    assert tomllib.loads(render_roots(odd))["roots"] == odd
    config = tmp_path / "c.toml"
    config.write_text("roots = ['/x']\n")
    write_roots(config, odd)
    assert tomllib.loads(config.read_text())["roots"] == odd


def test_index_without_paths_uses_the_roots(run_cli, config: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    write_photo(lib / "one.jpg", background(200, 150))
    run_cli("--config", config, "roots", "remove", "~/Pictures")
    run_cli("--config", config, "roots", "add", lib)
    result = run_cli("--config", config, "index", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["new"] == 1


def _count(location: Path | str, model: type) -> int:
    engine = open_db(location)
    with Session(engine) as s:
        n = s.scalar(select(func.count()).select_from(model))
    engine.dispose()
    return n


def test_forget_asks_then_removes_a_gone_roots_photos(run_cli, db_location, config: Path, tmp_path: Path,
                                                      dev_faces_dir: Path) -> None:
    from tests.photo_factory import compose, dev_faces

    gone, kept = tmp_path / "old-drive", tmp_path / "kept"
    img, _ = compose(dev_faces(dev_faces_dir, "happy", 1), size=(1200, 900), face_px=300)
    write_photo(gone / "face.jpg", img)
    write_photo(gone / "sub" / "b.jpg", background(200, 150))
    write_photo(kept / "c.jpg", background(200, 150))
    write_photo(tmp_path / "old-drive-2" / "d.jpg", background(200, 150))  # a name that only starts alike
    for folder in (gone, kept, tmp_path / "old-drive-2"):
        assert run_cli("index", folder, "--detector", "haar").exit_code == 0
    assert _count(db_location, Face) >= 1
    os.rename(gone, tmp_path / "elsewhere")  # the drive is gone: indexing keeps its rows
    assert run_cli("index", gone, "--detector", "haar").exit_code == 0
    assert _count(db_location, Photo) == 4

    declined = run_cli("forget", gone, input="n\n")
    assert declined.exit_code == 1 and f"Forget 2 photos under {gone}?" in declined.stderr
    assert _count(db_location, Photo) == 4

    confirmed = run_cli("forget", gone, input="y\n")
    assert confirmed.exit_code == 0 and f"forgot 2 photos under {gone}" in confirmed.stdout
    assert _count(db_location, Photo) == 2 and _count(db_location, Face) == 0
    listed = run_cli("list").stdout.splitlines()
    assert listed == [str(kept / "c.jpg"), str(tmp_path / "old-drive-2" / "d.jpg")]

    assert "nothing in the index there" in run_cli("forget", gone, "--yes").stderr
    forced = run_cli("--config", config, "forget", "--yes", kept / "c.jpg")
    assert forced.exit_code == 0 and "forgot 1 photo" in forced.stdout
    assert run_cli("list").stdout.splitlines() == [str(tmp_path / "old-drive-2" / "d.jpg")]
