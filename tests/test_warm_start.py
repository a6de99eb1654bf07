"""Warm start (indexer/warm): the quick read commands answered by a background server give the
same output and exit code as run in their own process, for the caller's environment, folder and
terminal; the server is private, follows the code it was started for, and goes away when idle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from indexer.warm import protocol

pytestmark = pytest.mark.skipif(not protocol.enabled({}), reason="warm start needs fork and Unix sockets")

ROOT = Path(__file__).resolve().parents[1]


def make_index(db: Path, root: Path, names: list[str]) -> None:
    """A small index with one happy face per photo: enough for every warm command to answer."""
    from indexer.db.models import Face, Photo
    from indexer.db.session import open_db, session_scope
    from indexer.domain import CLASSES

    engine = open_db(db)
    with session_scope(engine) as s:
        for i, name in enumerate(names):
            photo = Photo(path=str(root / name), root=str(root), size=1000 + i, mtime_ns=i, content_hash=f"{i:064x}",
                          taken_at=datetime(2019, 6, 1 + i, 12), date_source="exif", status="ok", face_count=1,
                          width=640, height=480, orientation=1, indexed_at=datetime.now(),
                          model_version="moodindex-fer-2.0+00000000", detector="haar-frontalface-default/opencv")
            scores = {c: (0.8 if c == "happy" else 0.2 / 6) for c in CLASSES}
            photo.faces.append(Face(idx=0, x=10, y=10, w=100, h=100, confidence=0.9, emotion="happy", score=0.8,
                                    **scores))
            s.add(photo)
    engine.dispose()


@pytest.fixture()
def warm(tmp_path: Path):  # noqa: ANN201 - yields a runner
    """Runs `python -m indexer ARGS` as a process with warm start on, in a private runtime folder;
    stops the server it started at the end."""
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    env = {**os.environ, "MOODINDEX_WARM": "1", "XDG_RUNTIME_DIR": str(run_dir), protocol.IDLE_ENV: "120"}

    class Runner:
        folder = run_dir / "moodindex"

        def __call__(self, *args: str, cwd: Path = ROOT, **extra: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "indexer", *args], capture_output=True, text=True,
                                  cwd=cwd, env={**env, **extra}, timeout=120)

        def log(self) -> str:
            return "".join(p.read_text() for p in self.folder.glob("warm-*.log"))

        def wait_for_server(self) -> None:
            deadline = time.monotonic() + 60
            while not list(self.folder.glob("warm-*.sock")):
                assert time.monotonic() < deadline, f"no warm server came up; log: {self.log()!r}"
                time.sleep(0.1)

        def server_pids(self) -> list[int]:
            return protocol.server_pids(self.folder)

    runner = Runner()
    yield runner
    for pid in runner.server_pids():
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def test_served_calls_match_calls_run_in_their_own_process(warm, tmp_path: Path) -> None:
    db = tmp_path / "index.db"
    make_index(db, tmp_path / "photos", ["a.jpg", "b.jpg"])
    first = warm("--db", str(db), "status")  # runs here, then starts the server
    assert first.returncode == 0, first.stderr
    warm.wait_for_server()
    calls = [["status"], ["query", "happy"], ["query", "the", "2", "happiest"], ["list"], ["errors"],
             ["show", str(tmp_path / "photos" / "a.jpg")], ["query", "blorp", "xyz"],
             ["show", str(tmp_path / "nope.jpg")], ["query", "happy", "--format", "json"]]
    for args in calls:
        served = warm("--db", str(db), *args)
        alone = warm("--db", str(db), *args, MOODINDEX_WARM="0")
        assert (served.returncode, served.stdout, served.stderr) == (alone.returncode, alone.stdout, alone.stderr), args
    assert warm.log().count("call handed to process") == len(calls)
    assert warm("--db", str(db), "query", "blorp", "xyz").returncode == 2  # a usage error stays one
    rows = json.loads(warm("--db", str(db), "query", "happy", "--format", "json").stdout)
    assert sorted(Path(row["path"]).name for row in rows) == ["a.jpg", "b.jpg"]


def test_each_call_gets_its_own_environment_and_folder(warm, tmp_path: Path) -> None:
    one, two = tmp_path / "one.db", tmp_path / "two.db"
    make_index(one, tmp_path / "p1", ["x.jpg"])
    make_index(two, tmp_path / "p2", ["y.jpg", "z.jpg"])
    assert warm("list", MOODINDEX_DB=str(one)).returncode == 0
    warm.wait_for_server()
    assert warm("list", MOODINDEX_DB=str(two)).stdout.split() == [str(tmp_path / "p2" / n) for n in ("y.jpg", "z.jpg")]
    assert warm("list", MOODINDEX_DB=str(one)).stdout.split() == [str(tmp_path / "p1" / "x.jpg")]
    (tmp_path / "p1").mkdir()
    shown = warm("show", "x.jpg", cwd=tmp_path / "p1", MOODINDEX_DB=str(one))  # relative to the caller's folder
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == str(tmp_path / "p1" / "x.jpg")
    assert warm.log().count("call handed to process") == 3


def test_commands_that_write_or_run_long_never_start_a_server(warm, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert warm("--db", str(tmp_path / "i.db"), "index", str(tmp_path / "empty")).returncode == 0
    assert warm("--help").returncode == 0
    assert not warm.folder.exists() or not list(warm.folder.glob("warm-*"))


def test_switched_off_it_runs_alone(warm, tmp_path: Path) -> None:
    make_index(tmp_path / "i.db", tmp_path, ["a.jpg"])
    assert warm("--db", str(tmp_path / "i.db"), "status", MOODINDEX_WARM="0").returncode == 0
    assert not warm.folder.exists() or not list(warm.folder.glob("warm-*"))


def test_an_idle_server_exits_and_removes_its_socket(warm, tmp_path: Path) -> None:
    make_index(tmp_path / "i.db", tmp_path, ["a.jpg"])
    assert warm("--db", str(tmp_path / "i.db"), "status", **{protocol.IDLE_ENV: "1"}).returncode == 0
    warm.wait_for_server()
    deadline = time.monotonic() + 60
    while list(warm.folder.glob("warm-*.sock")):
        assert time.monotonic() < deadline, warm.log()
        time.sleep(0.2)
    assert "idle: exiting" in warm.log()
    again = warm("--db", str(tmp_path / "i.db"), "status")  # no server: runs alone, starts another
    assert again.returncode == 0, again.stderr


def test_a_folder_others_can_enter_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "moodindex").mkdir(mode=0o755)
    os.chmod(tmp_path / "moodindex", 0o755)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert protocol.runtime_dir() is None
    os.chmod(tmp_path / "moodindex", 0o700)
    assert protocol.runtime_dir() == tmp_path / "moodindex"


def test_the_fingerprint_follows_installed_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.setattr(sys, "path", [*sys.path, str(site)])
    before = protocol.fingerprint()
    assert protocol.fingerprint() == before
    (site / "new_package-1.0.dist-info").mkdir()  # what `pip install` does to site-packages
    os.utime(site, ns=(time.time_ns(), time.time_ns() + 10_000_000))
    assert protocol.fingerprint() != before


@pytest.mark.parametrize(("args", "command"), [
    (["status"], "status"),
    (["--db", "x.db", "query", "happy"], "query"),
    (["--db", "status", "list"], "list"),  # an index file named "status"
    (["-v", "-q", "--config", "c.toml", "show", "a.jpg"], "show"),
    (["--db=x.db", "errors"], "errors"),
    (["--help"], None),
    (["--version", "status"], None),
    ([], None),
])
def test_the_command_is_found_past_the_global_options(args: list[str], command: str | None) -> None:
    assert protocol.command_name(args) == command


PRELOAD_PROBE = """
import json, sys
from click.testing import CliRunner
from indexer.cli import main
for args in (["status"], ["query", "the 5 happiest of 2019"], ["list"], ["errors"], ["show", "/x.jpg"]):
    CliRunner().invoke(main, ["--db", sys.argv[1], *args])
print(json.dumps(sorted(m for m in sys.modules if m.startswith("indexer"))))
"""


def test_the_server_preloads_everything_the_warm_commands_import(tmp_path: Path) -> None:
    make_index(tmp_path / "i.db", tmp_path, ["a.jpg"])
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    used = subprocess.run([sys.executable, "-c", PRELOAD_PROBE, str(tmp_path / "i.db")], capture_output=True,
                          text=True, check=True, cwd=ROOT, env=env).stdout
    code = ("import json, sys; from indexer.warm.server import preload; preload(); "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('indexer'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                            env=env).stdout
    missing = set(json.loads(used.splitlines()[-1])) - set(json.loads(loaded.splitlines()[-1]))
    assert not missing, f"add to indexer.warm.server.PRELOAD: {sorted(missing)}"


FORWARD_PROBE = """
import socket, subprocess, sys, threading
from indexer.warm import client, protocol
ours, theirs = socket.socketpair()
forwarder = client._SignalForwarder()
print("ready", flush=True)  # a signal from now on must reach the command, even before its pid is known
sys.stdin.readline()
child = subprocess.Popen(["sleep", "60"])  # stands in for the server's child running a command
protocol.send_reply(theirs, b"P", child.pid)
def report_exit():
    code = child.wait()
    if sys.argv[1] == "answer":
        protocol.send_reply(theirs, b"X", 128 - code)  # -2 (killed by SIGINT) -> 130, as the CLI exits
    theirs.close()
threading.Thread(target=report_exit, daemon=True).start()
print(client._wait_for_exit(ours, forwarder), flush=True)
"""


@pytest.mark.parametrize(("mode", "signum", "code"), [("answer", signal.SIGINT, 130), ("vanish", signal.SIGKILL, 1)])
def test_ctrl_c_reaches_the_command_and_a_killed_command_is_reported(mode: str, signum: int, code: int) -> None:
    """The terminal's Ctrl-C goes to the calling process; it must reach the process running the
    command.  A command killed outright (no exit status) is an error, not a silent success."""
    probe = subprocess.Popen([sys.executable, "-c", FORWARD_PROBE, mode], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert probe.stdout.readline().strip() == "ready"
    if signum == signal.SIGINT:
        probe.send_signal(signal.SIGINT)  # as the terminal would: to the caller only, before the pid is known
        time.sleep(0.5)
        probe.stdin.write("go\n")
        probe.stdin.flush()
    else:
        probe.stdin.write("go\n")
        probe.stdin.flush()
        deadline = time.monotonic() + 30
        while subprocess.run(["pkill", "-KILL", "-P", str(probe.pid), "sleep"], check=False).returncode:
            assert time.monotonic() < deadline, "the stand-in command never started"
            time.sleep(0.1)
    out, err = probe.communicate(timeout=30)
    assert out.strip() == str(code), err
    if mode == "vanish":
        assert "ended without an exit status" in err


def test_server_pids_reads_back_the_line_a_server_starts_with(tmp_path: Path) -> None:
    log = tmp_path / "warm-abc.log"
    log.write_text(f"2026-11-30T22:00:00 {protocol.started_line(4242, '/usr/bin/python3', 600)}\n"
                   "2026-11-30T22:00:01 process crashed: not a pid line\n"
                   "2026-11-30T22:00:02 call from process 17\n")
    (tmp_path / "other.log").write_text(f"x {protocol.started_line(99, 'py', 1)}\n")  # not a warm log
    assert protocol.server_pids(tmp_path) == [4242]
