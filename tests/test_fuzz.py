"""Fuzz: a few hundred mutated JPEG/PNG/TIFF/HEIC/WebP files in one `moodindex index` run.

Every file must be accounted for (indexed, or recorded with its reason), with no traceback,
exit 0 and bounded memory.  benchmarks/fuzz_index.py builds the files and runs the command;
the README's Robustness section quotes its figures."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES, SEED = 300, 1
MEMORY_LIMIT = 3 << 30      # address space per process: a decoder allocating for a bomb would hit it
PEAK_RSS_MIB_BOUND = 600    # what a run that decodes nothing bigger than max_pixels allows stays under


@pytest.fixture(scope="module")
def fuzz_index():
    spec = importlib.util.spec_from_file_location("fuzz_index", ROOT / "benchmarks" / "fuzz_index.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_index"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(600)
def test_mutated_photos_never_stop_a_run(fuzz_index, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    try:
        request.getfixturevalue("yunet_installed")  # the detector users run; Haar (slower) without ../shared
    except pytest.skip.Exception:
        pass
    result, made = fuzz_index.fuzz(FILES, SEED, workers=2, mem_limit=MEMORY_LIMIT, work=tmp_path)
    print(result.as_dict())
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert result.missing == [] and sum(result.statuses.values()) == result.files == FILES
    assert "(no reason recorded)" not in result.reasons
    assert result.statuses["ok"] > 0 and result.statuses["error"] > 0  # the mutations did both
    refusals = [r for r in result.reasons if r.startswith("refused")]
    assert refusals, "no header edit reached the pixel guard"
    assert all("max_pixels" in r for r in refusals), refusals  # not Pillow's own limit: ours is the one
    assert result.peak_rss_mib < PEAK_RSS_MIB_BOUND, result.as_dict()
