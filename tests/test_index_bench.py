"""The index benchmark's scene helpers: the right size, and a clear error when scenes are missing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("index_bench", ROOT / "benchmarks" / "index_bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scene_covers_the_photo_size(bench, tmp_path: Path):
    photo = tmp_path / "wide.jpg"
    cv2.imwrite(str(photo), np.random.default_rng(0).integers(0, 256, (160, 400, 3), dtype=np.uint8))
    for seed in (0, 1):  # plain and mirrored
        assert bench.scene(photo, 4000, 3000, seed).shape == (3000, 4000, 3)
    assert bench.scene(None, 640, 480, 0).shape == (480, 640, 3)  # 1/f noise
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    with pytest.raises(SystemExit, match="not a readable image"):
        bench.scene(tmp_path / "broken.jpg", 640, 480, 0)


def test_scene_files(bench, tmp_path: Path):
    assert bench.scene_files("noise") == []
    with pytest.raises(SystemExit, match="no scene photos"):
        bench.scene_files(str(tmp_path))
    (tmp_path / "a.jpg").write_bytes(b"")
    assert bench.scene_files(str(tmp_path)) == [tmp_path / "a.jpg"]
