"""How long `status`, `query`, `show`, `list` and `errors` take on an existing index, against
`moodindex --help` timed in the same run (the cost of starting Python and click).

Builds a SQLite index of --rows synthetic photos (faces with emotions, dates, a few errors) in a
temporary folder, opens it once so that it is migrated, then runs each command --runs times as a
fresh process (`python -m indexer`, wall time from subprocess start to exit), interleaved so
that machine noise hits them all alike, and prints the median of each with its ratio to --help.
Each command is timed twice: alone (`MOODINDEX_WARM=0`: the whole start-up in its own process)
and warm (answered by the warm-start server, `indexer/warm`, which the first call starts; the
server is started before timing, in a private runtime folder, and stopped after).
Also timed, as floors: the bare interpreter, and importing SQLAlchemy's ORM (which every command
that reads the index needs).  Each is reported as wall time and as CPU time (user + system): on a
loaded machine the wall times grow, the CPU times much less, and an idle machine's wall time is
close to the CPU time.  The load average and CPU flags are printed with the figures.

    python benchmarks/startup.py [--rows 300] [--runs 9]
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer.db.models import Face, Photo  # noqa: E402
from indexer.db.session import open_db, session_scope  # noqa: E402
from indexer.domain import CLASSES  # noqa: E402
from indexer.warm.protocol import server_pids  # noqa: E402


def build_index(db: Path, rows: int) -> str:
    """`rows` photos, two faces on most; returns the path of one for `show`."""
    engine = open_db(db)
    start = datetime(2015, 1, 1, 12)
    with session_scope(engine) as s:
        for i in range(rows):
            status = "error" if i % 50 == 49 else "ok"
            photo = Photo(path=f"/photos/{2015 + i % 8}/img_{i:05d}.jpg", root="/photos", size=2_000_000 + i,
                          mtime_ns=i, content_hash=f"{i:064x}", taken_at=start + timedelta(days=3 * i),
                          date_source="exif" if i % 4 else "file", status=status,
                          error="cannot decode: damaged" if status == "error" else None,
                          face_count=0, width=4000, height=3000, orientation=1, indexed_at=datetime.now(),
                          model_version="moodindex-fer-1.1+00000000", detector="haar-frontalface-default/opencv")
            if status == "ok":
                for k in range(i % 3):
                    top = CLASSES[(i + k) % len(CLASSES)]
                    scores = {c: (0.7 if c == top else 0.05) for c in CLASSES}
                    photo.faces.append(Face(idx=k, x=100 + 600 * k, y=800, w=500, h=500, confidence=0.9,
                                            emotion=top, score=0.7, **scores))
                photo.face_count = len(photo.faces)
            s.add(photo)
    engine.dispose()
    return "/photos/2016/img_00001.jpg"


def cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "?")
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    has = {name: name in flags for name in ("avx2", "avx512f", "avx512_vnni", "avx_vnni")}
    return f"{model}; " + ", ".join(f"{'' if on else 'no '}{name}" for name, on in has.items()) + \
        f"; {os.cpu_count()} CPUs"


def time_once(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds of one fresh process.  The CPU time (user + system, from the kernel's
    accounting of the child) hardly grows with the machine's load, unlike the wall time: on an idle
    machine a single-threaded start-up takes about its CPU time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def start_warm_server(cli: list[str], env: dict[str, str], run_dir: Path) -> None:
    """The first quick call starts the server; wait until it listens."""
    subprocess.run([*cli, "status"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
    deadline = time.monotonic() + 120
    while not list(run_dir.glob("moodindex/warm-*.sock")):
        if time.monotonic() > deadline:
            raise SystemExit("the warm-start server did not come up")
        time.sleep(0.1)


def stop_warm_server(run_dir: Path) -> None:
    for pid in server_pids(run_dir / "moodindex"):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=300)
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "index.db"
        shown = build_index(db, args.rows)
        cli = [sys.executable, "-m", "indexer", "--db", str(db)]
        run_dir = Path(tmp) / "run"
        run_dir.mkdir(mode=0o700)
        alone = {**os.environ, "MOODINDEX_WARM": "0"}
        warm = {**os.environ, "MOODINDEX_WARM": "1", "XDG_RUNTIME_DIR": str(run_dir)}
        quick = {
            "status": ["status"],
            "query happy": ["query", "happy"],
            "query the 20 happiest of 2019": ["query", "the 20 happiest of 2019"],
            f"show {shown}": ["show", shown],
            "list": ["list"],
            "errors": ["errors"],
        }
        commands: dict[str, tuple[list[str], dict[str, str]]] = {
            "python -c pass (floor)": ([sys.executable, "-c", "pass"], alone),
            "import sqlalchemy.orm (floor)": ([sys.executable, "-c", "import sqlalchemy.orm"], alone),
            "moodindex --help (baseline)": ([sys.executable, "-m", "indexer", "--help"], alone),
        }
        for name, argv in quick.items():
            commands[name] = ([*cli, *argv], alone)
            commands[f"{name} (warm)"] = ([*cli, *argv], warm)
        env_note = "MOODINDEX_CONFIG" in os.environ
        try:
            start_warm_server(cli, warm, run_dir)
            for argv, env in commands.values():  # warm the page cache and the bytecode caches
                time_once(argv, env)
            load_before = os.getloadavg()
            wall: dict[str, list[float]] = {name: [] for name in commands}
            cpu: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(args.runs):
                for name, (argv, env) in commands.items():
                    w, c = time_once(argv, env)
                    wall[name].append(w)
                    cpu[name].append(c)
            load_after = os.getloadavg()
        finally:
            stop_warm_server(run_dir)

    base_wall = statistics.median(wall["moodindex --help (baseline)"])
    base_cpu = statistics.median(cpu["moodindex --help (baseline)"])
    print(f"CPU: {cpu_flags()}")
    print(f"load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f}"
          f"{' (MOODINDEX_CONFIG set)' if env_note else ''}")
    print(f"index: {args.rows} photos (SQLite); median of {args.runs} runs of a fresh process each; "
          "CPU time is the calling process's only (a warm call's work is done by the server's child)")
    print(f"{'command':38} {'wall s':>7} {'x --help':>9} {'CPU s':>7} {'x --help':>9}")
    for name in commands:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        print(f"{name:38} {w:7.3f} {w / base_wall:9.2f} {c:7.3f} {c / base_cpu:9.2f}")


if __name__ == "__main__":
    main()
