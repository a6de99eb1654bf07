"""plugins/darktable/moodindex.lua: syntax (luac), and a Lua harness standing in for the darktable
API that runs the real actions through /bin/sh on files with hostile names."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "plugins" / "darktable" / "moodindex.lua"
HARNESS = ROOT / "plugins" / "darktable" / "tests" / "harness.lua"
HOSTILE = ["a'; touch x; '.jpg", "$(touch y).jpg", "`touch z`.jpg", "new\nline.jpg", "back\\slash \"dq\".jpg",
           "plain.jpg", "ünï cødé.jpg", os.fsdecode(b"latin1_f\xeate.jpg")]
QUERY = "it's $(touch q) `touch r` happy; touch s"

FAKE = textwrap.dedent(f"""\
    #!{sys.executable}
    # stands in for `moodindex`: logs its argv, answers like classify/query do
    import json, os, sys
    sys.path.insert(0, {str(ROOT)!r})
    from indexer.paths import path_json  # names that are not UTF-8: as the real classify writes them
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(json.dumps(sys.argv[1:]) + "\\n")
    if sys.argv[1] == "classify":
        paths = sys.argv[4:]
        print(json.dumps([{{**path_json(p), "error": None, "faces": [
            {{"box": [1, 2, 30, 30], "confidence": 0.9, "emotion": "happy",
              "scores": {{"angry": 0.01, "disgust": 0.01, "fear": 0.02, "happy": 0.9, "sad": 0.03,
                         "surprise": 0.02, "neutral": 0.01}}}},
            {{"box": [40, 2, 30, 30], "confidence": 0.8, "emotion": "sad",
              "scores": {{"angry": 0.1, "disgust": 0.1, "fear": 0.1, "happy": 0.1, "sad": 0.3,
                         "surprise": 0.2, "neutral": 0.1}}}}]}} for p in paths], indent=2))
    elif sys.argv[1] == "query":
        with open(os.environ["FAKE_MATCHES"], "rb") as matches:
            sys.stdout.buffer.write(matches.read())
    else:
        sys.exit(2)
    """)


def lua() -> str:
    for name in ("lua5.4", "lua5.3", "lua"):
        if shutil.which(name):
            return name
    pytest.skip("no Lua interpreter (apt-get install lua5.4)")


def test_plugin_compiles() -> None:
    luac = shutil.which("luac5.4") or shutil.which("luac5.3") or shutil.which("luac")
    if not luac:
        pytest.skip("luac not installed (apt-get install lua5.4)")
    for path in (PLUGIN, HARNESS):
        subprocess.run([luac, "-p", str(path)], check=True)


@pytest.mark.parametrize("mode", ["lua-scripts", "plain"])
def test_actions_quote_every_path(tmp_path: Path, mode: str) -> None:
    exe = lua()
    photos = tmp_path / "photos"
    photos.mkdir()
    paths = []
    for name in HOSTILE:
        (photos / name).write_bytes(b"\xff\xd8\xff\xd9")
        paths.append(str(photos / name))
    names = tmp_path / "names"
    names.write_bytes(b"".join(os.fsencode(p) + b"\0" for p in paths))
    fake = tmp_path / "bin dir" / "mood'index"  # the executable path needs quoting too
    fake.parent.mkdir()
    fake.write_text(FAKE)
    fake.chmod(0o755)
    log = tmp_path / "argv.log"
    work = tmp_path / "cwd"
    work.mkdir()
    matches = tmp_path / "matches"
    matches.write_bytes(b"".join(os.fsencode(p) + b"\0" for p in [*paths[:2], paths[-1]]))
    env = {**os.environ, "FAKE_LOG": str(log), "FAKE_MATCHES": str(matches), "TMPDIR": str(tmp_path)}
    done = subprocess.run([exe, str(HARNESS), str(PLUGIN), str(fake), str(names), mode, QUERY],
                          cwd=work, env=env, capture_output=True, timeout=60)
    stdout = done.stdout.decode("utf-8", "surrogateescape")  # names are bytes: the Latin-1 one too
    assert done.returncode == 0, stdout + done.stderr.decode("utf-8", "replace")
    lines = [record.split("\t") for record in stdout.split("\0") if "\t" in record]
    assert ["RESULT", "ok"] in lines
    # every call saw exactly the intended arguments: nothing split, nothing expanded
    calls = [json.loads(line) for line in log.read_text(errors="surrogateescape").splitlines()]
    classify = [c for c in calls if c[0] == "classify"]
    assert len(classify) == 2 and all(c == ["classify", "--format", "json", *paths] for c in classify)
    assert [c for c in calls if c[0] == "query"] == [["query", "--format", "paths", "--null", "--limit", "0", QUERY]]
    # tags attached through dt.tags, selection through dt.gui.selection
    tagged = {(p, t) for kind, p, t in (x for x in lines if x[0] == "TAG")}
    assert {(p, "Emotion|Happy") for p in paths} <= tagged
    assert {(p, "Emotion|Sad") for p in paths} <= tagged
    assert [x[1] for x in lines if x[0] == "SELECTED"] == [*paths[:2], paths[-1]]
    # and nothing injected ran
    for trap in "xyzqrs":
        for where in (work, photos, tmp_path, ROOT):
            assert not (where / trap).exists(), f"{trap} created in {where}"


def test_the_plugins_default_threshold_is_moodindexs() -> None:
    """The Lua plugin cannot ask Python for the default, so it repeats it: this keeps the two in step."""
    import re

    from indexer.domain import DEFAULT_TAG_MIN_SCORE

    source = PLUGIN.read_text(encoding="utf-8")
    registered = re.search(r'register\(MODULE, "min_score", "float".*?\),\s*([0-9.]+),', source, re.S)
    fallback = re.search(r'pref\("min_score", "float", ([0-9.]+)\)\) or ([0-9.]+)', source)
    assert registered and fallback
    assert {float(registered.group(1)), float(fallback.group(1)), float(fallback.group(2))} == {DEFAULT_TAG_MIN_SCORE}
