"""kill -9 of `moodindex index` leaves no process behind: its pool workers and multiprocessing's
resource tracker die with it (indexer.lifeline).  They used to live on, ~125 MB each, for ever."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.photo_factory import background, write_photo

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")


def _stat(pid: int) -> tuple[int, str, str] | None:
    """(parent pid, state, start time) of a live process, None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return int(fields[1]), fields[0], fields[19]


def _descendants(pid: int) -> dict[int, str]:
    """Every process below `pid`, with its start time (so a reused pid is never mistaken for it)."""
    parents: dict[int, list[int]] = {}
    starts: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            parents.setdefault(st[0], []).append(int(entry))
            starts[int(entry)] = st[2]
    found, todo = {}, [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found[child] = starts[child]
            todo.append(child)
    return found


def _alive(pid: int, start: str) -> bool:
    st = _stat(pid)
    return st is not None and st[2] == start and st[1] != "Z"  # a zombie has died


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def test_kill_9_of_index_leaves_no_worker_or_resource_tracker(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    for i in range(150):  # far more than the run can finish before it is killed
        write_photo(photos / f"p{i:03d}.jpg", background(1600, 1200, seed=i))
    config = tmp_path / "cfg.toml"
    config.write_text('detector = "haar"\n')
    run = subprocess.Popen([sys.executable, "-m", "indexer", "--db", str(tmp_path / "index.db"), "--config",
                            str(config), "index", str(photos), "-j", "2"], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and run.poll() is None:
            children = _descendants(run.pid)
            workers = [p for p in children if "spawn_main" in _cmdline(p)]
            if len(workers) >= 2 and any("resource_tracker" in _cmdline(p) for p in children):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the workers never started, or the run ended before it could be killed")
        time.sleep(1.0)  # mid-run: workers loaded and busy
        children = _descendants(run.pid)
        run.send_signal(signal.SIGKILL)  # no clean-up code of ours runs
        run.wait()
        assert run.returncode == -signal.SIGKILL
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p, s) for p, s in children.items()):
            time.sleep(0.1)
        survivors = [f"{p}: {_cmdline(p)[:120]}" for p, s in children.items() if _alive(p, s)]
        assert not survivors, survivors
    finally:  # never leave our own debris on the machine, even when the test fails
        if run.poll() is None:
            run.kill()
            run.wait()
        for pid, start in children.items():
            if _alive(pid, start):
                os.kill(pid, signal.SIGKILL)
