"""Dask overhead on one machine: the same photos indexed by the local pool (N worker processes)
and through a Dask cluster on loopback (a scheduler and N single-threaded worker processes), in
the same run, alternating, so that the machine's load weighs on both alike.

    python benchmarks/cluster_bench.py [--photos 48] [--workers 2] [--rounds 2] [--detector haar]

Uses index_bench's photo builder (8-12 MP JPEGs with 1-3 labelled faces from ../shared in real
scenes).  Each timing is a fresh `moodindex index` process into a fresh SQLite index (start-up,
model load and writes included); the cluster's own start-up is not (it is started once, as a user
would).  Prints the seconds of each round and the median ratio cluster / local.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from index_bench import build_photos, scene_files  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cluster(workers: int, logs: Path) -> tuple[str, list[subprocess.Popen]]:
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--dashboard-address", ":0", "--no-show"],
                              stdout=open(logs / "scheduler.log", "wb"), stderr=subprocess.STDOUT,
                              start_new_session=True),
             subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers",
                               str(workers), "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"],
                              stdout=open(logs / "workers.log", "wb"), stderr=subprocess.STDOUT,
                              start_new_session=True)]
    from distributed import Client

    with Client(address, timeout=60) as client:
        client.wait_for_workers(workers, timeout=120)
    return address, procs


def timed_index(root: Path, db: Path, detector: str, *extra: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "indexer", "-q", "--db", str(db), "index", str(root), "--detector", detector,
                    *extra], check=True)
    return time.perf_counter() - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=48)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--detector", default="haar")
    ap.add_argument("--scenes", default="photos")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        root = tmp_path / "photos"
        build_photos(root, args.photos, scene_files(args.scenes))
        address, procs = start_cluster(args.workers, tmp_path)
        try:
            local, cluster = [], []
            for r in range(args.rounds):
                local.append(timed_index(root, tmp_path / f"local{r}.db", args.detector, "-j", str(args.workers)))
                cluster.append(timed_index(root, tmp_path / f"cluster{r}.db", args.detector, "--cluster", address))
                print(f"round {r + 1}: local pool {local[-1]:.1f} s, cluster {cluster[-1]:.1f} s "
                      f"({args.photos} photos, {args.workers} workers each)", flush=True)
        finally:
            for p in reversed(procs):
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(30)
    ratios = [c / loc for c, loc in zip(cluster, local, strict=True)]
    print(f"cluster / local: median {statistics.median(ratios):.2f} "
          f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)}); "
          f"local {args.photos / statistics.median(local):.1f} photos/s, "
          f"cluster {args.photos / statistics.median(cluster):.1f} photos/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
