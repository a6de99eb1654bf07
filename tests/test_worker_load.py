"""The model and detector load in the worker processes only (moodindex itself never analyses a
photo), yet a load that fails is still the user's one clear line, before any photo is stored, and
what the loaders warn about is said once, by moodindex."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tests.photo_factory import background, write_photo


@pytest.fixture()
def lib(tmp_path: Path) -> Path:
    folder = tmp_path / "lib"
    for i in range(5):
        write_photo(folder / f"p{i}.jpg", background(320, 240, seed=i))
    return folder


def _one_line_error(result, *fragments: str) -> None:  # noqa: ANN001
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("moodindex: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_model_that_does_not_load_is_one_clear_line(run_cli, lib: Path, tmp_path: Path, workers: str) -> None:
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a flatbuffer" * 64)
    config = tmp_path / "cfg.toml"
    config.write_text(f'model = "{broken}"\ndetector = "haar"\n')
    result = run_cli("--config", config, "index", lib, "-j", workers)
    _one_line_error(result, str(broken), "not a usable TFLite model")
    assert run_cli("list", "--format", "paths").stdout == ""  # nothing stored, not even as an error


@pytest.mark.parametrize("files", [1, 5])
def test_a_detector_that_is_not_installed_is_one_clear_line(run_cli, lib: Path, files: int) -> None:
    target = lib / "p0.jpg" if files == 1 else lib
    _one_line_error(run_cli("index", target, "--detector", "yunet"), "YuNet weights not installed",
                    "moodindex model fetch yunet")
    assert run_cli("list", "--format", "paths").stdout == ""


def test_load_warnings_from_the_workers_are_said_once(run_cli, lib: Path, monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    from tests.worker_spy import LOAD_WARNING, init_worker_warning_on_load

    monkeypatch.setattr("indexer.executor.init_worker", init_worker_warning_on_load)
    caplog.set_level(logging.WARNING, logger="indexer")
    result = run_cli("index", lib, "-j", "2", "--detector", "haar", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["new"] == 5
    said = [r for r in caplog.records if r.getMessage() == LOAD_WARNING]
    assert len(said) == 1 and said[0].name == "indexer.vision.faces" and said[0].levelno == logging.WARNING


@pytest.mark.parametrize("photos", [True, False])
def test_the_watcher_stops_with_the_same_line(lib: Path, tmp_path: Path, photos: bool) -> None:
    """At start, whether or not it found photos to analyse (not when the first one arrives)."""
    import subprocess
    import sys

    root = lib if photos else tmp_path / "empty"
    root.mkdir(exist_ok=True)
    result = subprocess.run([sys.executable, "-m", "indexer", "--db", str(tmp_path / "i.db"), "watch", str(root),
                             "--detector", "yunet"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("moodindex: YuNet weights not installed"), result.stderr
    assert "Traceback" not in result.stderr
