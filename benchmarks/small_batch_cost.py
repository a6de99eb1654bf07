"""What it costs that `-j 1` and small batches are analysed in a worker process, never in moodindex
itself (a decoder that segfaults must not take the run or the watcher with it).

Times this tree against a baseline revision (default: main, extracted with `git archive` into a
temporary folder and put first on PYTHONPATH), in the same run, interleaved:

1. `moodindex index` of 1 and of 3 new photos (real JPEGs from the dev set) into a fresh index:
   wall time from start to exit, and CPU time (user + system, the command and its workers);
   median of --runs.
2. the watcher's per-event latency: a real `moodindex watch` on an empty folder; --events photos
   are copied in one at a time, START_S after it started, each timed from the copy to its ok row
   in the index.  The first event is reported apart from the later, warm ones: the baseline loads
   the model with the first photo, this tree's watcher loads its worker as it starts.  Then the
   resident memory of the watcher and its worker process together (the worker stays between
   events).

Both trees use one isolated user data folder, so the same detector: YuNet (--yunet, default the
shared test weights, installed with `model add yunet`), or the Haar fallback with --yunet none.

    python benchmarks/small_batch_cost.py [--baseline main] [--runs 5] [--events 6] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from watch_latency import indexed  # noqa: E402  (the row-is-stored check, one copy)

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT.parent / "shared" / "data" / "facial_expressions_dev" / "images"
YUNET = ROOT.parent / "shared" / "models" / "face_detection_yunet_2026may.onnx"
START_S = 5.0  # after "watching ... with inotify": the watcher has finished starting (loaded its worker)


def extract(rev: str, into: Path) -> Path:
    """The package as it is at `rev` (a plain copy: nothing installed)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "indexer"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def cpu_flags() -> str:
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return "?"
    have = set(flags.split())
    return ", ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avxvnni") if f in have) or "none of avx2/avx512"


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall, cpu) seconds of a command and its children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and its descendants (the watcher and its worker), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


def watch_latencies(env: dict[str, str], tmp: Path, photos: list[Path], tag: str) -> tuple[list[float], float]:
    """Per-event latencies, and the watcher's memory (with its worker) once they are done."""
    root, db, log = tmp / f"watched-{tag}", tmp / f"watch-{tag}.db", tmp / f"watch-{tag}.log"
    root.mkdir()
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "indexer", "--db", str(db), "watch", str(root)],
                                stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=tmp, start_new_session=True)
    latencies = []
    try:
        end = time.monotonic() + 120
        while "with inotify" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > end:
                raise SystemExit(f"watcher did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)
        time.sleep(START_S)
        for i, src in enumerate(photos):
            dest = root / f"e{i}.jpg"
            t0 = time.monotonic()
            shutil.copy(src, dest)
            end = t0 + 120
            while not indexed(db, str(dest)):
                if proc.poll() is not None or time.monotonic() > end:
                    raise SystemExit(f"{dest} not indexed:\n{log.read_text(errors='replace')}")
                time.sleep(0.01)
            latencies.append(time.monotonic() - t0)
            time.sleep(0.3)
        rss = tree_rss_mib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    return latencies, rss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", default="main", help="git revision to compare with (default: main)")
    ap.add_argument("--runs", type=int, default=5, help="index runs per tree and batch size")
    ap.add_argument("--events", type=int, default=6, help="photos dropped into each watcher")
    ap.add_argument("--rounds", type=int, default=2, help="watchers started per tree")
    ap.add_argument("--yunet", default=str(YUNET), help="YuNet weights to install, or 'none' for Haar")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    photos = sorted(FACES.glob("*.jpg"))
    if len(photos) < 3 + args.events:
        raise SystemExit(f"need {3 + args.events} photos in {FACES}")

    with tempfile.TemporaryDirectory(prefix="moodindex-smallbatch-") as tmp_name:
        tmp = Path(tmp_name)
        home = tmp / "home"
        base_env = {**os.environ, "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"),
                    "XDG_CACHE_HOME": str(home / "cache")}
        base_env.pop("MOODINDEX_DB", None)
        base_env.pop("MOODINDEX_CONFIG", None)
        (tmp / "baseline").mkdir()
        trees = {"baseline": extract(args.baseline, tmp / "baseline"), "this tree": ROOT}
        envs = {name: {**base_env, "PYTHONPATH": str(path)} for name, path in trees.items()}
        # every command runs in `tmp`: `python -m` puts the working folder first on sys.path
        for name, env in envs.items():  # each really runs its own code
            where = subprocess.run([sys.executable, "-c", "import indexer; print(indexer.__file__)"], env=env,
                                   cwd=tmp, capture_output=True, text=True, check=True).stdout.strip()
            assert where.startswith(str(trees[name])), (name, where)
        detector = "haar"
        if args.yunet != "none":
            subprocess.run([sys.executable, "-m", "indexer", "model", "add", "yunet", args.yunet],
                           env=envs["this tree"], cwd=tmp, check=True, capture_output=True)
            detector = "yunet"

        index_times: dict[str, dict[int, list[tuple[float, float]]]] = {n: {1: [], 3: []} for n in trees}
        for run in range(args.runs):
            order = list(trees) if run % 2 == 0 else list(reversed(trees))
            for count in (1, 3):
                for name in order:
                    lib, db = tmp / f"lib-{run}-{count}-{name[0]}", tmp / f"index-{run}-{count}-{name[0]}.db"
                    lib.mkdir()
                    for src in photos[:count]:
                        shutil.copy(src, lib)
                    index_times[name][count].append(timed(
                        [sys.executable, "-m", "indexer", "--db", str(db), "index", str(lib), "--detector", detector],
                        envs[name], tmp))

        watch: dict[str, list[tuple[list[float], float]]] = {n: [] for n in trees}
        for rnd in range(args.rounds):
            order = list(trees) if rnd % 2 == 0 else list(reversed(trees))
            for name in order:
                watch[name].append(watch_latencies(envs[name], tmp, photos[3:3 + args.events],
                                                   f"{rnd}-{name[0]}"))

    def med(values: list[float]) -> float:
        return round(statistics.median(values), 3)

    figures: dict = {"baseline": args.baseline, "detector": detector, "runs": args.runs,
                     "load_average": [round(x, 2) for x in os.getloadavg()], "cpu_flags": cpu_flags(),
                     "index": {}, "watch": {}}
    for count in (1, 3):
        row = {name: {"wall_s": med([w for w, _ in index_times[name][count]]),
                      "cpu_s": med([c for _, c in index_times[name][count]])} for name in trees}
        row["ratio_wall"] = round(row["this tree"]["wall_s"] / row["baseline"]["wall_s"], 2)
        row["ratio_cpu"] = round(row["this tree"]["cpu_s"] / row["baseline"]["cpu_s"], 2)
        figures["index"][f"{count} photo{'s' if count > 1 else ''}"] = row
    for name in trees:
        first = [lat[0] for lat, _ in watch[name]]
        warm = [x for lat, _ in watch[name] for x in lat[1:]]
        figures["watch"][name] = {"first_event_s": med(first), "warm_event_median_s": med(warm),
                                  "warm_event_max_s": round(max(warm), 3),
                                  "rss_mib_after_events": round(max(rss for _, rss in watch[name]), 1)}
    b, t = figures["watch"]["baseline"], figures["watch"]["this tree"]
    figures["watch"]["ratio_first"] = round(t["first_event_s"] / b["first_event_s"], 2)
    figures["watch"]["ratio_warm"] = round(t["warm_event_median_s"] / b["warm_event_median_s"], 2)
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
