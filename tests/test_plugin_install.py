"""`moodindex plugins install darktable|digikam`: the shipped plugin files, put where the host looks,
running this moodindex by an absolute path that survives any characters in it."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from indexer.plugin_install import REQUIRE_LINE, lua_string
from tests.test_darktable_plugin import FAKE, HARNESS, HOSTILE, QUERY, lua

ROOT = Path(__file__).resolve().parents[1]
# a moodindex installed in a folder whose name needs quoting in Lua and in the shell
ODD_DIR = "venv \"dq\" \\bs 'sq' $(touch x) ]] ünï"


def _fake_moodindex(tmp_path: Path) -> Path:
    exe = tmp_path / ODD_DIR / "bin" / "moodindex"
    exe.parent.mkdir(parents=True)
    exe.write_text(FAKE)
    exe.chmod(0o755)
    return exe


def _darktable_dir() -> Path:
    return Path(os.environ["XDG_CONFIG_HOME"]) / "darktable"  # isolated per test by conftest


def test_darktable_install_writes_script_luarc_and_the_absolute_path(run_cli, tmp_path: Path) -> None:
    exe = _fake_moodindex(tmp_path)
    conf = _darktable_dir()
    conf.mkdir(parents=True)
    (conf / "luarc").write_text('require "tools/script_manager"')  # no newline at the end
    res = run_cli("plugins", "install", "darktable", "--executable", exe)
    assert res.exit_code == 0, res.output
    script = conf / "lua" / "contrib" / "moodindex.lua"
    text = script.read_text()
    assert f"local INSTALLED_MOODINDEX = {lua_string(str(exe))}\n" in text
    assert f"wrote {script}" in res.output and str(exe) in res.output
    assert (conf / "luarc").read_text().splitlines() == [
        'require "tools/script_manager"', f"{REQUIRE_LINE}  -- added by `moodindex plugins install darktable`"]
    # a second install updates the script and leaves luarc alone
    res = run_cli("plugins", "install", "darktable", "--executable", exe)
    assert res.exit_code == 0 and "already loads it" in res.output
    assert (conf / "luarc").read_text().count("contrib/moodindex") == 1
    # Lua reads the literal back as exactly the path
    line = next(x for x in text.splitlines() if x.startswith("local INSTALLED_MOODINDEX = "))
    check = subprocess.run([lua(), "-e", f"{line}\nio.write(INSTALLED_MOODINDEX)"], capture_output=True, timeout=30)
    assert check.returncode == 0 and check.stdout == str(exe).encode()
    assert not (tmp_path / "x").exists() and not Path("x").exists()


@pytest.mark.parametrize("mode", ["lua-scripts", "plain"])
def test_installed_darktable_script_runs_the_installed_moodindex(run_cli, tmp_path: Path, mode: str) -> None:
    """The harness of test_darktable_plugin with the preference unset: the installed path is what runs."""
    exe = _fake_moodindex(tmp_path)
    assert run_cli("plugins", "install", "darktable", "--executable", exe).exit_code == 0
    script = _darktable_dir() / "lua" / "contrib" / "moodindex.lua"
    photos = tmp_path / "photos"
    photos.mkdir()
    paths = [str(photos / name) for name in HOSTILE[:3]]
    for p in paths:
        Path(p).write_bytes(b"\xff\xd8\xff\xd9")
    names = tmp_path / "names"
    names.write_bytes(b"".join(p.encode() + b"\0" for p in paths))
    matches = tmp_path / "matches"
    matches.write_bytes(paths[0].encode() + b"\0")
    log = tmp_path / "argv.log"
    env = {**os.environ, "FAKE_LOG": str(log), "FAKE_MATCHES": str(matches), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([lua(), str(HARNESS), str(script), "", str(names), mode, QUERY], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert ["RESULT", "ok"] in [r.split("\t") for r in done.stdout.split("\0")]
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert ["classify", "--format", "json", *paths] in calls
    assert ["query", "--format", "paths", "--null", "--limit", "0", QUERY] in calls
    assert not (tmp_path / "x").exists()


def test_darktable_luarc_that_is_a_link_is_edited_where_it_points(run_cli, tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    (dotfiles / "luarc").write_text("-- mine\n")
    conf = _darktable_dir()
    conf.mkdir(parents=True)
    (conf / "luarc").symlink_to(dotfiles / "luarc")
    assert run_cli("plugins", "install", "darktable", "--executable", _fake_moodindex(tmp_path)).exit_code == 0
    assert (conf / "luarc").is_symlink()
    assert (dotfiles / "luarc").read_text().startswith("-- mine\nrequire \"contrib/moodindex\"")


def test_default_executable_is_the_moodindex_of_this_installation(run_cli, tmp_path: Path) -> None:
    beside = Path(sys.executable).parent / "moodindex"
    if not beside.is_file():
        pytest.skip(f"no moodindex console script beside {sys.executable} (pip install -e .)")
    conf = tmp_path / "dt"
    res = run_cli("plugins", "install", "darktable", "--config-dir", conf)
    assert res.exit_code == 0, res.output
    text = (conf / "lua" / "contrib" / "moodindex.lua").read_text()
    assert f"local INSTALLED_MOODINDEX = {lua_string(os.path.abspath(beside))}\n" in text


def test_digikam_install_writes_an_executable_script_and_prints_the_steps(run_cli, tmp_path: Path) -> None:
    exe = _fake_moodindex(tmp_path)
    res = run_cli("plugins", "install", "digikam", "--executable", exe)
    assert res.exit_code == 0, res.output
    script = Path(os.environ["XDG_DATA_HOME"]) / "moodindex" / "plugins" / "digikam" / "moodindex-bqm.sh"
    assert os.stat(script).st_mode & 0o777 == 0o755
    assert f"installed_moodindex={shlex.quote(str(exe))}\n" in script.read_text()
    line = f'{shlex.quote(str(script))} "$INPUT" "$OUTPUT"'
    assert "User Shell Script" in res.output and line in res.output
    # digiKam runs the script text with bash, INPUT/OUTPUT set, MOODINDEX not: the installed path runs
    album = tmp_path / "album"
    album.mkdir()
    inp, out = album / "a'; touch y; '.jpg", album / "$(touch z).jpg"
    inp.write_bytes(b"\xff\xd8\xff\xd9")
    log = tmp_path / "argv.log"
    env = {k: v for k, v in os.environ.items() if k != "MOODINDEX"} | {
        "INPUT": str(inp), "OUTPUT": str(out), "FAKE_LOG": str(log), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(["/bin/bash", "-c", line], cwd=album, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2  # the fake answers 2 to anything but classify/query: it was reached
    assert json.loads(log.read_text()) == ["tag-file", "--output", str(out), "--in-file", "--prefix", "Emotion",
                                           "--", str(inp)]
    assert not [p for p in album.iterdir() if p.name in ("y", "z")] and not (tmp_path / "x").exists()


def test_options_belong_to_their_host(run_cli, tmp_path: Path) -> None:
    res = run_cli("plugins", "install", "digikam", "--config-dir", tmp_path)
    assert res.exit_code == 2 and "--config-dir is for darktable" in res.stderr


@pytest.mark.slow
def test_wheel_ships_the_plugins(tmp_path: Path) -> None:
    """The plugin files are package data: in the wheel, without the repository's plugin tests."""
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                          capture_output=True, text=True, timeout=600)
    offline = ("No matching distribution", "Could not find a version")
    if done.returncode != 0 and any(text in done.stderr for text in offline):
        pytest.skip("building a wheel needs setuptools and wheel from a package index, which is not reachable")
    assert done.returncode == 0, done.stderr[-2000:]
    wheel = next(tmp_path.glob("moodindex-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("darktable/moodindex.lua", "darktable/README.md", "digikam/moodindex-bqm.sh",
                    "digikam/README.md", "__init__.py"):
        assert f"indexer/bundled_plugins/{shipped}" in names
    assert not [n for n in names if "harness" in n]


def test_plugin_header_readme_and_installer_agree_on_the_require_line() -> None:
    """The script lives in lua/contrib/, so every instruction must say `require "contrib/moodindex"`."""
    import re

    header = (ROOT / "plugins" / "darktable" / "moodindex.lua").read_text().split("]]", 1)[0]
    readme = (ROOT / "plugins" / "darktable" / "README.md").read_text()
    for text in (header, readme):
        found = set(re.findall(r'require "([^"]+)"', text))
        assert found == {"contrib/moodindex"}, found
    assert REQUIRE_LINE == 'require "contrib/moodindex"'
