"""How fast does `moodindex watch` pick up a photo, and what does it cost while idle?

Starts a real `moodindex --db TMP watch TMPDIR` (inotify, default settings unless given),
then:

1. latency: drops photos into the watched folder one at a time, three ways (a copy that
   writes and closes; a rename from outside the folder, which has no close-write so the
   settle interval applies; a slow copy written in 4 chunks 0.5 s apart), and polls the index
   (read-only SQLite, every 10 ms) until the photo is there with status ok.  The photo's own
   processing time (decode + detect + classify, warm, in this process) is measured
   separately, so the watcher's overhead is latency minus processing.
2. idle: leaves the daemon alone for --idle seconds and samples the CPU time (user+sys, the
   daemon and any children) and RSS of the process tree, and its context switches (a
   busy-polling loop would show hundreds per second).

    python benchmarks/watch_latency.py [--photos 8] [--idle 60] [--settle 2] [--json out.json]

Needs ../shared/data/facial_expressions_dev/images (real face photos).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FACES = ROOT.parent / "shared" / "data" / "facial_expressions_dev" / "images"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """pid and all its descendants (pool workers), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def usage(pid: int) -> dict[str, float]:
    """CPU seconds, RSS (MiB) and context switches of the process tree at this moment."""
    cpu = rss = switches = 0.0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1]) / 1024
            for task in os.listdir(f"/proc/{p}/task"):
                for line in Path(f"/proc/{p}/task/{task}/status").read_text().splitlines():
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        switches += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return {"cpu_s": cpu, "rss_mib": rss, "switches": switches}


def indexed(db: Path, path: str) -> bool:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    except sqlite3.OperationalError:
        return False
    try:
        row = con.execute("SELECT status FROM photos WHERE path = ?", (path,)).fetchone()
    except sqlite3.OperationalError:  # not created yet
        return False
    finally:
        con.close()
    return row is not None and row[0] == "ok"


def wait_indexed(db: Path, path: str, timeout: float = 60.0) -> float:
    end = time.monotonic() + timeout
    while not indexed(db, path):
        if time.monotonic() > end:
            raise SystemExit(f"timed out waiting for {path}")
        time.sleep(0.01)
    return time.monotonic()


def processing_seconds(photos: list[Path]) -> float:
    """Median warm analysis time of these photos, in this process (what the watcher adds on top)."""
    sys.path.insert(0, str(ROOT))
    from indexer.pipeline import Analyzer

    analyzer = Analyzer("auto")
    analyzer.analyze(photos[0])
    times = []
    for p in photos:
        t = time.perf_counter()
        analyzer.analyze(p)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=8, help="photos per drop method")
    ap.add_argument("--idle", type=float, default=60.0, help="seconds to watch the idle daemon")
    ap.add_argument("--settle", type=float, default=None, help="pass --settle to the watcher")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    photos = sorted(FACES.glob("*.jpg"))[: args.photos * 3]
    if len(photos) < args.photos * 3:
        raise SystemExit(f"need {args.photos * 3} photos in {FACES}")

    with tempfile.TemporaryDirectory(prefix="moodindex-bench-") as tmp:
        tmp_path = Path(tmp)
        root, outside, db = tmp_path / "watched", tmp_path / "outside", tmp_path / "index.db"
        root.mkdir()
        outside.mkdir()
        cmd = [sys.executable, "-m", "indexer", "--db", str(db), "watch", str(root)]
        if args.settle is not None:
            cmd += ["--settle", str(args.settle)]
        log = tmp_path / "watch.log"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with open(log, "wb") as err:
            proc = subprocess.Popen(cmd, stderr=err, stdout=subprocess.DEVNULL, env=env, start_new_session=True)
        try:
            end = time.monotonic() + 60
            while "start-up reconcile" not in log.read_text() and "with inotify" not in log.read_text():
                if proc.poll() is not None or time.monotonic() > end:
                    raise SystemExit(f"watcher did not start:\n{log.read_text()}")
                time.sleep(0.05)
            time.sleep(0.5)
            results: dict[str, list[float]] = {"copy": [], "rename_in": [], "slow_copy": []}
            for i in range(args.photos):
                src = photos[i]
                dest = root / f"copy{i}.jpg"
                t0 = time.monotonic()
                shutil.copy(src, dest)
                results["copy"].append(wait_indexed(db, str(dest)) - t0)

                src = photos[args.photos + i]
                staged, dest = outside / f"r{i}.jpg", root / f"renamed{i}.jpg"
                shutil.copy(src, staged)
                t0 = time.monotonic()
                os.rename(staged, dest)
                results["rename_in"].append(wait_indexed(db, str(dest)) - t0)

                src = photos[2 * args.photos + i]
                dest = root / f"slow{i}.jpg"
                data = src.read_bytes()
                step = len(data) // 4 + 1
                with open(dest, "wb") as f:
                    for k in range(0, len(data), step):
                        f.write(data[k:k + step])
                        f.flush()
                        time.sleep(0.5)
                t0 = time.monotonic()  # from the moment the file is complete
                results["slow_copy"].append(wait_indexed(db, str(dest)) - t0)

            time.sleep(3)  # let the last batch's bookkeeping finish
            before = usage(proc.pid)
            samples = [before["rss_mib"]]
            t0 = time.monotonic()
            while time.monotonic() - t0 < args.idle:
                time.sleep(min(5.0, args.idle))
                samples.append(usage(proc.pid)["rss_mib"])
            after = usage(proc.pid)
            idle_seconds = time.monotonic() - t0
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(60)

        processing = processing_seconds(photos[: args.photos])
        figures = {
            "photos_per_method": args.photos,
            "settle_s": args.settle if args.settle is not None else 2.0,
            "processing_median_s": round(processing, 4),
            "latency_s": {k: {"median": round(statistics.median(v), 3), "max": round(max(v), 3)}
                          for k, v in results.items()},
            "idle": {"seconds": round(idle_seconds, 1),
                     "cpu_s": round(after["cpu_s"] - before["cpu_s"], 3),
                     "cpu_percent": round(100 * (after["cpu_s"] - before["cpu_s"]) / idle_seconds, 3),
                     "context_switches_per_s": round((after["switches"] - before["switches"]) / idle_seconds, 2),
                     "rss_mib_start": round(samples[0], 1), "rss_mib_end": round(samples[-1], 1),
                     "rss_mib_max": round(max(samples), 1)},
            "sigterm_exit_code": code,
        }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
