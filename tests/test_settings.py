"""Every documented setting reaches the code that uses it (config file -> Settings -> Analyzer,
the worker processes, `classify`, `tag-file`, `tag`)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from fixtures.tagkit import add_photo, make_photo, need_exiftool

from indexer.config import Settings, load_settings
from indexer.db.session import session_scope
from indexer.pipeline import MIN_FACE_ANALYSIS_PX, Analyzer
from indexer.vision.emotion import default_model_path
from tests.photo_factory import compose, dev_faces, write_photo


def _config(tmp_path: Path, **values: object) -> Path:
    path = tmp_path / "config.toml"
    path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()))
    return path


@pytest.fixture()
def face_photos(tmp_path: Path, dev_faces_dir: Path) -> list[Path]:
    """Four photos with one 400 px face each (~170 px in the analysed image)."""
    out = []
    for i, face in enumerate(dev_faces(dev_faces_dir, "happy", 4)):
        img, _ = compose([face], seed=i)
        out.append(write_photo(tmp_path / "lib" / f"p{i}.jpg", img))
    return out


def test_from_settings_passes_every_analysis_setting(tmp_path: Path) -> None:
    model = shutil.copy(default_model_path(), tmp_path / "mine.tflite")
    settings = Settings(detector="haar", model=Path(model), threads=2, max_pixels=1234567, min_face=77,
                        max_file_bytes=7654321)
    analyzer = Analyzer.from_settings(settings)
    assert analyzer.detector.name == "haar"
    assert analyzer.model.path == Path(model)
    assert analyzer.model.threads == 2
    assert analyzer.max_pixels == 1234567
    assert analyzer.min_face == 77
    assert analyzer.max_file_bytes == 7654321


def test_min_face_default_is_the_pipeline_s() -> None:
    assert load_settings(env={}).min_face == MIN_FACE_ANALYSIS_PX


@pytest.mark.parametrize("workers", ["1", "2"])  # in-process, and in the worker processes
def test_min_face_reaches_index(run_cli, tmp_path, face_photos, workers) -> None:
    counts = []
    for min_face in (32, 400):
        config = _config(tmp_path, detector="haar", min_face=min_face)
        res = run_cli("--config", config, "index", face_photos[0].parent, "--workers", workers, "--force",
                      "--format", "json")
        assert res.exit_code == 0, res.output
        counts.append(json.loads(res.stdout)["faces"])
    assert counts[0] > 0 and counts[1] == 0


def test_min_face_reaches_classify(run_cli, tmp_path, face_photos) -> None:
    counts = []
    for min_face in (32, 400):
        res = run_cli("--config", _config(tmp_path, detector="haar", min_face=min_face), "classify",
                      face_photos[0], "--format", "json")
        assert res.exit_code == 0, res.output
        counts.append(len(json.loads(res.stdout)[0]["faces"]))
    assert counts == [1, 0]


def test_min_face_reaches_tag_file(run_cli, tmp_path, face_photos) -> None:
    need_exiftool()
    res = run_cli("--config", _config(tmp_path, detector="haar", min_face=400), "tag-file", face_photos[0],
                  "--dry-run")
    assert res.exit_code == 0, res.output
    assert "no emotion above the threshold" in res.output
    res = run_cli("--config", _config(tmp_path, detector="haar", min_face=32, tag_min_score=0.0), "tag-file",
                  face_photos[0], "--dry-run")
    assert "would-write" in res.output


def test_max_pixels_reaches_classify(run_cli, tmp_path, face_photos) -> None:
    res = run_cli("--config", _config(tmp_path, detector="haar", max_pixels=1000), "classify", face_photos[0],
                  "--format", "json")
    assert "decompression-bomb guard" in json.loads(res.stdout)[0]["error"]


def test_tag_min_score_reaches_tag(run_cli, tmp_path, engine) -> None:
    need_exiftool()
    root = tmp_path / "Pictures"
    root.mkdir()
    make_photo(root / "a.jpg")
    with session_scope(engine) as s:
        add_photo(s, root / "a.jpg", root, [("happy", 0.7)])
    high = run_cli("--config", _config(tmp_path, tag_min_score=0.8), "tag", "--dry-run")
    assert "would-write" not in high.output
    low = run_cli("--config", _config(tmp_path, tag_min_score=0.5), "tag", "--dry-run")
    assert "would-write" in low.output


def _invoke(config: Path, *args: str):  # noqa: ANN202
    from click.testing import CliRunner

    from indexer.cli import main

    return CliRunner().invoke(main, ["--config", str(config), *map(str, args)], catch_exceptions=False)


def test_db_and_roots_come_from_the_config_file(tmp_path: Path, face_photos: list[Path]) -> None:
    db = tmp_path / "elsewhere" / "my.db"
    config = _config(tmp_path, db=str(db), roots=[str(face_photos[0].parent)], detector="haar", workers=1)
    res = _invoke(config, "index", "--format", "json")  # no PATH: the configured roots
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["new"] == len(face_photos)
    assert db.exists()
    status = json.loads(_invoke(config, "status", "--format", "json").stdout)
    assert status["db"] == str(db) and status["photos"] == len(face_photos)


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_setting_decides_how_many_processes_analyse(run_cli, tmp_path, face_photos, worker_spy,
                                                            workers) -> None:
    """Never this process (a decoder crash would end the run): `workers` worker processes, one for -j 1."""
    res = run_cli("--config", _config(tmp_path, detector="haar", workers=workers), "index", face_photos[0].parent,
                  "--format", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["new"] == 4
    assert sorted(worker_spy.analysed) == sorted(map(str, face_photos))
    assert worker_spy.loads == workers and len(worker_spy.pids) <= workers
    assert os.getpid() not in worker_spy.pids


def test_model_setting_reaches_model_info(tmp_path: Path) -> None:
    model = Path(shutil.copy(default_model_path(), tmp_path / "mine.tflite"))
    info = json.loads(_invoke(_config(tmp_path, model=str(model), threads=3), "model", "info", "--format",
                              "json").stdout)
    assert info["path"] == str(model) and info["threads"] == 3
