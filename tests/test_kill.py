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
from tests.procfs import alive, cmdline, descendants, survivors

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")


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
            children = descendants(run.pid)
            workers = [p for p in children if "spawn_main" in cmdline(p)]
            if len(workers) >= 2 and any("resource_tracker" in cmdline(p) for p in children):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the workers never started, or the run ended before it could be killed")
        time.sleep(1.0)  # mid-run: workers loaded and busy
        children = descendants(run.pid)
        run.send_signal(signal.SIGKILL)  # no clean-up code of ours runs
        run.wait()
        assert run.returncode == -signal.SIGKILL
        assert not survivors(children, within_s=10)
    finally:  # never leave our own debris on the machine, even when the test fails
        if run.poll() is None:
            run.kill()
            run.wait()
        for pid, start in children.items():
            if alive(pid, start):
                os.kill(pid, signal.SIGKILL)
