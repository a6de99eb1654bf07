"""plugins/digikam/moodindex-bqm.sh as digiKam's Batch Queue Manager runs it: INPUT -> tagged OUTPUT."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.tagkit import as_list, exif_json, need_exiftool, pixels

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "plugins" / "digikam" / "moodindex-bqm.sh"


def test_bqm_script_tags_output_and_keeps_input(tmp_path: Path, dev_faces_dir: Path) -> None:
    need_exiftool()
    src = next(p for p in sorted((dev_faces_dir / "images").glob("*.jpg")))
    work = tmp_path / "album"
    work.mkdir()
    inp = work / "a'; touch x; '$(id).jpg"
    shutil.copy(src, inp)
    out = work / "BatchTool-$(touch y)-1.digikamtempfile.jpg"
    digest = hashlib.sha256(inp.read_bytes()).hexdigest()
    wrapper = tmp_path / "moodindex"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -m indexer \"$@\"\n")
    wrapper.chmod(0o755)
    env = {**os.environ, "MOODINDEX": str(wrapper), "MOODINDEX_MIN_SCORE": "0", "PYTHONPATH": str(ROOT)}
    # digiKam runs the script text with /bin/bash, INPUT/OUTPUT set; the one-liner from the README:
    script = f'{SCRIPT} "$INPUT" "$OUTPUT"'
    done = subprocess.run(["/bin/bash", "-c", script], cwd=work, capture_output=True, text=True, timeout=120,
                          env={**env, "INPUT": str(inp), "OUTPUT": str(out)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert hashlib.sha256(inp.read_bytes()).hexdigest() == digest  # the original is untouched
    assert (pixels(out) == pixels(inp)).all()
    classified = subprocess.run([str(wrapper), "classify", "--format", "json", str(inp)], capture_output=True,
                                text=True, env=env, check=True)
    emotions = sorted({f["emotion"] for f in json.loads(classified.stdout)[0]["faces"]})
    assert emotions, "the test photo must show a detectable face"
    got = exif_json(out)
    expected = [f"Emotion|{e.capitalize()}" for e in emotions]
    assert sorted(as_list(got.get("XMP-lr:HierarchicalSubject"))) == sorted(expected)
    assert sorted(as_list(got.get("XMP-digiKam:TagsList"))) == sorted(e.replace("|", "/") for e in expected)
    assert "Emotion" in as_list(got.get("IPTC:Keywords"))
    assert not (work / "x").exists() and not (work / "y").exists()


def test_bqm_script_usage() -> None:
    done = subprocess.run(["/bin/sh", str(SCRIPT), "only-one"], capture_output=True, text=True)
    assert done.returncode == 2 and "usage" in done.stderr
    if shutil.which("shellcheck"):
        subprocess.run(["shellcheck", str(SCRIPT)], check=True)
    else:
        subprocess.run(["/bin/sh", "-n", str(SCRIPT)], check=True)


@pytest.mark.parametrize("name", ["IMG_1.NEF"])
def test_raw_output_refused_with_a_clear_message(tmp_path: Path, name: str) -> None:
    raw = tmp_path / name
    raw.write_bytes(b"raw")
    done = subprocess.run([sys.executable, "-m", "indexer", "tag-file", str(raw), "--in-file"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode != 0 and "moodindex:" in done.stderr and "Traceback" not in done.stderr
