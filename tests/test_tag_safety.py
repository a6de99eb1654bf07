"""Writing tags must never write through a symlink, leave stray copies, or fail on a long name."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
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


def test_tag_file_and_the_bqm_script_never_open_a_fifo(tmp_path: Path) -> None:
    """Both hung for ever on `mkfifo in.jpg` (finding 2): now one clear line, at once, and no copy."""
    work = tmp_path / "work"
    work.mkdir()
    os.mkfifo(tmp_path / "in.jpg")
    done = _bqm(str(tmp_path / "in.jpg"), str(work / "out.jpg"), work)  # subprocess.run's timeout: 120 s
    assert done.returncode == 1 and "FIFO" in done.stderr and "never opened" in done.stderr
    assert sorted(p.name for p in work.iterdir()) == ["moodindex"]


def test_bqm_script_tags_names_that_are_not_utf8(face_photo: Path, tmp_path: Path) -> None:
    """digiKam hands the script the file system's bytes: an INPUT and an OUTPUT in Latin-1 are
    analysed, copied and tagged at exactly those names (exiftool reads the tags back there)."""
    inp = face_photo.rename(face_photo.with_name(os.fsdecode(b"f\xeate.jpg")))
    work = tmp_path / os.fsdecode(b"sortie_\xe9")
    work.mkdir()
    out = work / os.fsdecode(b"r\xe9sultat_\xff.jpg")
    done = _bqm(str(inp), str(out), work)
    assert done.returncode == 0, done.stderr
    assert "sortie_\\xe9/r\\xe9sultat_\\xff.jpg" in done.stdout  # shown escaped, never as raw bytes
    assert sorted(os.listdir(os.fsencode(work))) == [b"moodindex", os.fsencode(out.name)]
    read = subprocess.run([b"exiftool", b"-j", b"-XMP-lr:HierarchicalSubject", os.fsencode(out)],
                          capture_output=True, check=True)
    assert any(v.startswith("Emotion|") for v in as_list(json_first(read.stdout).get("HierarchicalSubject")))
    assert _digest(inp) != _digest(out) and inp.exists()  # the input is left as it was


def json_first(stdout: bytes) -> dict:
    import json

    return json.loads(stdout.decode("utf-8", "replace"))[0]


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


# -- what a killed run leaves: no process, and temp files the next run removes ------------------
def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting for a reaper has died)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_stay_open_exiftool_dies_with_a_killed_parent(tmp_path: Path) -> None:
    need_exiftool()
    code = ("import sys, time\nfrom indexer.export.exiftool import ExifTool\net = ExifTool()\n"
            "et.execute(['-ver'])\nprint(et._proc.pid, flush=True)\ntime.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.kill()  # SIGKILL: no clean-up code of ours runs
        parent.wait()
        for _ in range(100):
            if not _alive(child):
                break
            time.sleep(0.05)
        else:
            os.kill(child, signal.SIGKILL)
            pytest.fail("exiftool -stay_open outlived its killed parent")
    finally:
        parent.kill()
        parent.wait()


def _backdate(path: Path, seconds: float = 2 * 3600) -> Path:
    old = time.time() - seconds
    os.utime(path, (old, old), follow_symlinks=False)
    return path


def test_next_run_removes_config_folders_a_killed_run_left(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need_exiftool()
    from indexer.export import exiftool

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def leftover(name: str, *files: str, age: float = 2 * 3600) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        for f in files:
            (folder / f).write_text("%Image::ExifTool::UserDefined = ();\n")
        return _backdate(folder, age)

    stale = leftover("moodindex-exiftool-ab_12xyz", "moodindex.config")
    fresh = leftover("moodindex-exiftool-cd_34xyz", "moodindex.config", age=60)  # maybe a running command's
    crowded = leftover("moodindex-exiftool-ef_56xyz", "moodindex.config", "user-notes.txt")
    foreign = leftover("moodindex-exiftool-backup", "moodindex.config")  # not a tempfile name
    with exiftool.ExifTool() as et:
        et.execute(["-ver"])
        assert Path(et._config_dir.name).parent == tmp_path
    assert not stale.exists()
    assert fresh.exists() and crowded.exists() and foreign.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (fresh, crowded, foreign))


def test_next_tag_run_removes_temp_files_a_killed_run_left(run_cli, face_photo: Path) -> None:
    folder = face_photo.parent
    ours_stale = [folder / n for n in (".face.jpg.moodindex-0123abcd.jpg",
                                       ".face.jpg.moodindex-0123abce.jpg_exiftool_tmp",
                                       ".face.jpg.xmp.moodindex-0123abcf.xmp")]
    for p in ours_stale:
        p.write_bytes(b"half a photo")
        _backdate(p)
    kept = [folder / ".face.jpg.moodindex-0123abd0.jpg",        # ours but fresh: maybe a running command's
            folder / ".holiday.jpg",                             # hidden, but not our name
            folder / "face.jpg.moodindex-0123abd1.jpg",          # not hidden: not a name we make
            folder / ".face.jpg.moodindex-XYZ.jpg"]              # not our token
    for p in kept:
        p.write_bytes(b"someone else's")
        if p is not kept[0]:
            _backdate(p)
    res = run_cli("tag-file", face_photo, "--min-score", "0")
    assert res.exit_code == 0, res.output
    assert not any(p.exists() for p in ours_stale)
    assert all(p.read_bytes() == b"someone else's" for p in kept)
