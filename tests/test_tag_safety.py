"""Writing tags must never write through a symlink, leave stray copies, or fail on a long name."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.tagkit import as_list, exif_json, need_exiftool

from indexer.export.safety import NAME_MAX, TEMP_NAME_RE, UnsafeTarget, copy_photo, temp_name

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "plugins" / "digikam" / "moodindex-bqm.sh"


@pytest.fixture()
def face_photo(tmp_path: Path, dev_faces_dir: Path) -> Path:
    need_exiftool()
    src = next(p for p in sorted((dev_faces_dir / "images").glob("*.jpg")))
    photo = tmp_path / "in" / "face.jpg"
    photo.parent.mkdir()
    shutil.copy(src, photo)
    return photo


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("dangling", [False, True])
def test_tag_file_output_never_writes_through_a_symlink(run_cli, face_photo: Path, tmp_path: Path,
                                                        dangling: bool) -> None:
    """The copy into `precious` used to happen before the refusal (or created it, for a dangling link)."""
    precious = tmp_path / "elsewhere" / "precious"
    precious.parent.mkdir()
    if not dangling:
        precious.write_bytes(b"do not overwrite me")
    out = tmp_path / "out"
    out.mkdir()
    (out / "link.jpg").symlink_to(precious)
    res = run_cli("tag-file", face_photo, "--output", out / "link.jpg", "--min-score", "0")
    assert res.exit_code == 1 and "refused" in res.stderr and "symbolic link" in res.stderr, res.output
    assert precious.exists() != dangling
    if not dangling:
        assert precious.read_bytes() == b"do not overwrite me"
    assert os.path.islink(out / "link.jpg")
    assert sorted(p.name for p in out.iterdir()) == ["link.jpg"]  # no temp file left either


def test_copy_photo_refuses_what_is_not_a_file_name_and_replaces_atomically(face_photo: Path, tmp_path: Path) -> None:
    for bad in (Path(""), Path("."), tmp_path):
        with pytest.raises(UnsafeTarget):
            copy_photo(face_photo, bad)
    dest = tmp_path / "copy.jpg"
    dest.write_bytes(b"old")
    copy_photo(face_photo, dest)
    assert _digest(dest) == _digest(face_photo) and not os.path.islink(dest)
    assert dest.stat().st_mtime_ns == face_photo.stat().st_mtime_ns  # like `cp -p`
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def _bqm(inp: str, out: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MOODINDEX": str(cwd / "moodindex"), "PYTHONPATH": str(ROOT)}
    (cwd / "moodindex").write_text(f"#!/bin/sh\nexec {sys.executable} -m indexer \"$@\"\n")
    (cwd / "moodindex").chmod(0o755)
    return subprocess.run(["/bin/sh", str(SCRIPT), inp, out], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=env)


def test_bqm_script_refuses_an_empty_output_and_a_symlink(face_photo: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    done = _bqm(str(face_photo), "", work)
    assert done.returncode == 2 and "must not be empty" in done.stderr
    assert sorted(p.name for p in work.iterdir()) == ["moodindex"]  # no stray copy of INPUT here
    precious = tmp_path / "precious.jpg"
    precious.write_bytes(b"keep")
    (work / "out.jpg").symlink_to(precious)
    done = _bqm(str(face_photo), str(work / "out.jpg"), work)
    assert done.returncode == 1 and "symbolic link" in done.stderr
    assert precious.read_bytes() == b"keep"


def test_temp_names_fit_beside_a_name_at_the_limit() -> None:
    for name in ("a.jpg", "x" * 251 + ".jpg", "é" * 125 + ".jpeg", "noext"):
        tmp = temp_name(Path("/photos") / name)
        assert len(os.fsencode(tmp.name + "_exiftool_tmp")) <= NAME_MAX, len(os.fsencode(tmp.name))
        assert TEMP_NAME_RE.match(tmp.name) and tmp.name.endswith(f"{Path(name).suffix}") and "/" not in tmp.name
        assert tmp.name.startswith("." + name[:8])


@pytest.mark.parametrize("length", [228, 251])
def test_a_long_file_name_can_be_tagged_in_file(run_cli, face_photo: Path, length: int) -> None:
    """The temp name (and exiftool's NAME_exiftool_tmp beside it) used to exceed NAME_MAX: "File name too long"."""
    long_name = face_photo.with_name("p" * (length - 4) + ".jpg")
    face_photo.rename(long_name)
    res = run_cli("tag-file", long_name, "--min-score", "0")
    assert res.exit_code == 0, res.output
    assert any(v.startswith("Emotion|") for v in as_list(exif_json(long_name).get("XMP-lr:HierarchicalSubject")))
    assert sorted(p.name for p in long_name.parent.iterdir()) == [long_name.name]
