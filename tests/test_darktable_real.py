"""The plugin and our sidecars inside Debian's real darktable (4.2), under Xvfb with an in-memory
library.  Skips where darktable or xvfb-run is not installed (apt-get install darktable xvfb)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from fixtures.darktable import run_darktable
from fixtures.tagkit import DARKTABLE_SIDECAR, make_photo, need_exiftool
from test_darktable_plugin import FAKE, PLUGIN

# How the test's luarc gets the plugin: a copy loaded from the repository with the program set in
# the preferences, or what `moodindex plugins install darktable` wrote (its luarc line already
# loaded the script, which runs the program whose path the installer wrote into it).
LOAD_COPY = """
  dt.preferences.write("moodindex", "executable", "file", os.getenv("FAKE_EXE"))
  package.path = os.getenv("PLUGIN_DIR") .. "/?.lua;" .. package.path
  local plugin = require "moodindex"
"""
LOAD_INSTALLED = """
  local plugin = assert(package.loaded["contrib/moodindex"], "the installed luarc line did not load the plugin")
"""

LUARC = """
local dt = require "darktable"
local out = io.open(os.getenv("DT_OUT"), "w")
local function say(...) out:write(table.concat({...}, "\\t"), "\\0"); out:flush() end
local ok, err = pcall(function()
  dt.preferences.write("moodindex", "min_score", "float", 0.5)
  LOAD_PLUGIN
  say("API", dt.configuration.api_version_string)
  local images = {}
  for path in io.open(os.getenv("DT_NAMES"), "rb"):read("a"):gmatch("([^%z]+)") do
    images[#images + 1] = dt.database.import(path)
  end
  for _, image in ipairs(images) do
    for _, tag in ipairs(dt.tags.get_tags(image)) do say("BEFORE", image.path .. "/" .. image.filename, tag.name) end
  end
  local tagged, failed = plugin.api.detect(images)
  say("DETECT", tostring(tagged), tostring(failed))
  for _, image in ipairs(images) do
    for _, tag in ipairs(dt.tags.get_tags(image)) do
      say("TAG", image.path .. "/" .. image.filename, tag.name)
    end
    say("META", image.filename, tostring(image.rating), tostring(image.title))
  end
  for _, image in ipairs(plugin.api.select_matching("happy")) do say("PICKED", image.filename) end
  for _, image in ipairs(dt.gui.selection()) do say("SELECTED", image.filename) end
end)
say("DONE", tostring(ok), tostring(err))
out:close()
"""


@pytest.mark.slow
@pytest.mark.parametrize("how", ["copy", "installed"])
def test_plugin_and_sidecars_in_real_darktable(tmp_path: Path, how: str) -> None:
    if not (shutil.which("darktable") and shutil.which("xvfb-run")):
        pytest.skip("darktable and xvfb-run not installed (apt-get install darktable xvfb xauth)")
    need_exiftool()
    from indexer.export import xmp
    from indexer.export.exiftool import ExifTool

    photos = tmp_path / "photos"
    photos.mkdir()
    hostile = make_photo(photos / "a'; touch x; '$(id).jpg", seed=1)
    merged = make_photo(photos / "beach.jpg", seed=2)
    # a darktable-written sidecar with our tags merged in by `moodindex tag`: darktable must read it
    shutil.copy(DARKTABLE_SIDECAR, photos / "beach.jpg.xmp")
    with ExifTool() as et:
        assert xmp.apply(et, merged, photos, ["surprise"]).status == xmp.WRITTEN
    names = tmp_path / "names"
    names.write_bytes(b"".join(str(p).encode() + b"\0" for p in (hostile, merged)))
    fake = tmp_path / ("moodindex" if how == "copy" else "venv 'x' \"dq\" $(touch x)/bin/moodindex")
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_text(FAKE)
    fake.chmod(0o755)
    matches = tmp_path / "matches"
    matches.write_bytes(str(hostile).encode() + b"\0")
    conf = tmp_path / "conf"
    conf.mkdir()
    if how == "copy":
        (conf / "luarc").write_text(LUARC.replace("LOAD_PLUGIN", LOAD_COPY))
    else:
        from indexer.plugin_install import install_darktable

        install_darktable(conf, fake)  # writes conf/lua/contrib/moodindex.lua and luarc's require line
        with open(conf / "luarc", "a") as luarc:
            luarc.write(LUARC.replace("LOAD_PLUGIN", LOAD_INSTALLED))
    out = tmp_path / "out"
    env = {**os.environ, "DT_OUT": str(out), "FAKE_EXE": str(fake), "PLUGIN_DIR": str(PLUGIN.parent),
           "DT_NAMES": str(names), "FAKE_LOG": str(tmp_path / "argv.log"), "FAKE_MATCHES": str(matches)}
    command = ["xvfb-run", "-a", "darktable", "--configdir", str(conf), "--library", ":memory:",
               "--cachedir", str(tmp_path / "cache")]
    for _ in range(2):  # once more only if darktable never reached our Lua at all (a cold first start)
        run_darktable(command, tmp_path, env, out)
        if out.exists():
            break
    records = [r.split("\t") for r in out.read_bytes().decode().split("\0") if r]
    assert ["DONE", "true", "nil"] in records, records
    assert ["DETECT", "2", "0"] in records
    tags = {(r[1], r[2]) for r in records if r[0] == "TAG"}
    assert (str(hostile), "Emotion|Happy") in tags
    assert (str(merged), "Emotion|Happy") in tags
    # darktable read the merged sidecar on import: the user's tags and our Surprise tag are all there
    before = {(r[1], r[2]) for r in records if r[0] == "BEFORE"}
    assert {(str(merged), t) for t in ("places|beach", "events|holiday 2023", "Happy", "Emotion|Surprise")} <= before
    # detection replaced the plugin's emotion tags only (the fake classifier says happy)
    assert {(str(merged), t) for t in ("places|beach", "events|holiday 2023", "Happy")} <= tags
    assert (str(merged), "Emotion|Surprise") not in tags
    assert ["META", "beach.jpg", "3", "Beach day"] in records
    assert [r[1] for r in records if r[0] == "SELECTED"] == [hostile.name]
    assert not (tmp_path / "x").exists() and not (photos / "x").exists()
    # darktable wrote the plugin's tags into its own sidecar, history intact
    side = (photos / "beach.jpg.xmp").read_text()
    assert "Emotion|Happy" in side and 'darktable:operation="colorin"' in side
