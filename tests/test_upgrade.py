"""A better detector or a new model upgrades the index: unchanged photos analysed by something
older are re-analysed, newest first, resumably; --no-upgrade skips it; status counts them; a run
on the fallback detector says once how to get the better one."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from indexer.config import Settings
from indexer.db.models import Photo
from indexer.db.session import open_db
from indexer.executor import LocalExecutor
from indexer.scan import Indexer
from indexer.vision.identity import Installed, is_older
from tests.photo_factory import compose, dev_faces, write_photo

YUNET_A, YUNET_B, HAAR = "yunet-aaaaaaaaaaaa", "yunet-bbbbbbbbbbbb", "haar-frontalface-default"
MODEL_1, MODEL_1_NEW_WEIGHTS, MODEL_2 = "fer-1.0+11111111", "fer-1.0+22222222", "fer-2.0+33333333"


@pytest.mark.parametrize(("detector", "model", "now", "older"), [
    (f"{YUNET_A}/onnxruntime-1.19", MODEL_1, Installed(YUNET_A, MODEL_1), False),  # same: unchanged
    (f"{YUNET_A}/opencv-4.10", MODEL_1, Installed(YUNET_A, MODEL_1), False),       # another runtime: same results
    ("haar-frontalface-default/opencv-4.10", MODEL_1, Installed(YUNET_A, MODEL_1), True),  # YuNet installed
    (f"{YUNET_A}/opencv-4.10", MODEL_1, Installed(YUNET_B, MODEL_1), True),        # another YuNet file
    (f"{YUNET_A}/opencv-4.10", MODEL_1, Installed(HAAR, MODEL_1), False),          # back to Haar: no downgrade
    (f"{YUNET_A}/opencv-4.10", MODEL_1, Installed(YUNET_A, MODEL_2), True),        # a newer model
    (f"{YUNET_A}/opencv-4.10", MODEL_1, Installed(YUNET_A, MODEL_1_NEW_WEIGHTS), True),  # re-exported
    (f"{YUNET_A}/opencv-4.10", MODEL_2, Installed(YUNET_A, MODEL_1), False),       # older model installed
    (None, None, Installed(YUNET_A, MODEL_1), True),
])
def test_what_counts_as_older(detector: str | None, model: str | None, now: Installed, older: bool) -> None:
    assert is_older(detector, model, now) is older


@pytest.fixture()
def haar_library(tmp_path: Path, dev_faces_dir: Path) -> Path:
    """Three photos with EXIF dates, the newest written first (so path order is not date order)."""
    faces = dev_faces(dev_faces_dir, "happy", 3)
    lib = tmp_path / "lib"
    for i, (name, year) in enumerate([("a.jpg", 2021), ("b.jpg", 2015), ("c.jpg", 2019)]):
        img, _ = compose([faces[i]], size=(900, 700), face_px=300, seed=i)
        write_photo(lib / name, img, taken=datetime(year, 5, 1, 12))
    return lib


def _detectors(db_path: Path) -> dict[str, str]:
    engine = open_db(db_path)
    with Session(engine) as s:
        got = {Path(p).name: d for p, d in s.execute(select(Photo.path, Photo.detector))}
    engine.dispose()
    return got


def test_installing_yunet_upgrades_the_index_newest_first_and_resumably(
        run_cli, haar_library: Path, db_path: Path, request: pytest.FixtureRequest) -> None:
    first = run_cli("index", haar_library)
    assert first.exit_code == 0, first.output
    assert first.stderr.count("fallback Haar detector") == 1 and "moodindex model fetch yunet" in first.stderr
    assert all(d.startswith("haar") for d in _detectors(db_path).values())

    request.getfixturevalue("yunet_installed")
    assert "upgrade   3 photos analysed by an older detector or model" in run_cli("status").stdout
    assert json.loads(run_cli("status", "--format", "json").stdout)["older_analysis"] == 3
    skipped = json.loads(run_cli("index", haar_library, "--no-upgrade", "--format", "json").stdout)
    assert skipped["unchanged"] == 3 and skipped["upgraded"] == 0

    # interrupted after one photo: the newest (2021) was the first re-analysed
    engine = open_db(db_path)
    stop = threading.Event()
    settings = Settings(workers=1)
    seen: list[str] = []

    class StopAfterOne(LocalExecutor):
        def results(self, paths, known, isolate=frozenset()):  # noqa: ANN001, ANN202
            for result in super().results(paths, known, isolate):
                seen.append(Path(result.path).name)
                stop.set()
                yield result

    indexer = Indexer(engine, settings, stop=stop, executor=StopAfterOne(settings, stop))
    summary = indexer.scan([haar_library])
    indexer.close()
    engine.dispose()
    assert seen == ["a.jpg"] and summary.upgraded == 1 and summary.interrupted
    detectors = _detectors(db_path)
    assert detectors["a.jpg"].startswith("yunet") and detectors["b.jpg"].startswith("haar")

    rest = run_cli("index", haar_library)  # resumes with the other two, and no Haar note any more
    assert rest.exit_code == 0 and "2 upgraded to the installed detector/model" in rest.stdout
    assert "fallback Haar" not in rest.stderr
    assert all(d.startswith("yunet") for d in _detectors(db_path).values())
    assert json.loads(run_cli("index", haar_library, "--format", "json").stdout)["unchanged"] == 3
    assert "upgrade " not in run_cli("status").stdout
