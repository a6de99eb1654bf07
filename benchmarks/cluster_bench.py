"""Dask overhead on one machine: the same photos indexed by the local pool (N worker processes)
and through a Dask cluster on loopback (a scheduler and N single-threaded worker processes), in
the same run, alternating, so that the machine's load weighs on both alike.

    python benchmarks/cluster_bench.py [--photos 48] [--workers 2] [--rounds 2] [--detector haar]
        [--worker-env NAME=VALUE[,NAME=VALUE]]...   # a second cluster with other Dask settings
        [--photos-dir DIR]                          # build the photos once, reuse them

Uses index_bench's photo builder (8-12 MP JPEGs with 1-3 labelled faces from ../shared in real
scenes).  Each timing is a fresh `moodindex index` process into a fresh SQLite index (start-up,
model load and writes included); the cluster's own start-up is not (it is started once, as a user
would).  Prints the seconds of each round and the median ratio cluster / local, and where the CPU
time went: the `moodindex index` process with its pool, and the scheduler, the nanny and the
workers of the cluster (read from /proc through psutil, which dask[distributed] brings).
"""

from __future__ import annotations

import argparse
import os
import resource
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


def start_cluster(workers: int, logs: Path, env: dict[str, str] | None = None) -> tuple[str, list[subprocess.Popen]]:
    """A scheduler and `workers` single-threaded worker processes on loopback, with `env` added to
    their environment (Dask reads its settings from DASK_* variables).  Each in a process group of
    its own (to be stopped as one) but in this session, like the local pool: Linux with autogroup
    scheduling shares the CPU between sessions first, so a cluster in sessions of its own would meet
    the machine's other jobs on other terms than the pool, and the ratio would weigh the load too."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, **(env or {})}
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--dashboard-address", ":0", "--no-show"],
                              stdout=open(logs / f"scheduler-{port}.log", "wb"), stderr=subprocess.STDOUT,
                              preexec_fn=os.setpgrp, env=env),
             subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers",
                               str(workers), "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"],
                              stdout=open(logs / f"workers-{port}.log", "wb"), stderr=subprocess.STDOUT,
                              preexec_fn=os.setpgrp, env=env)]
    try:
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)
    except BaseException:  # not started (or stopped meanwhile): leave nothing running
        stop_cluster(procs)
        raise
    return address, procs


def stop_cluster(procs: list[subprocess.Popen]) -> None:
    for p in reversed(procs):
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(30)


def cluster_cpu(procs: list[subprocess.Popen]) -> dict[str, float]:
    """CPU seconds so far of the scheduler, the nanny (the `dask worker` process) and its workers."""
    import psutil

    scheduler, nanny = (psutil.Process(p.pid) for p in procs)
    out = {"scheduler": 0.0, "nanny": 0.0, "workers": 0.0}
    for role, proc in [("scheduler", scheduler), ("nanny", nanny),
                       *(("workers", c) for c in nanny.children(recursive=True))]:
        try:
            t = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        out[role] += t.user + t.system
    return out


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)  # waited-for children, and theirs (the pool)
    return r.ru_utime + r.ru_stime


def timed_index(root: Path, db: Path, detector: str, *extra: str) -> tuple[float, float]:
    """Seconds of one `moodindex index`, and the CPU seconds of it and its worker processes."""
    started, cpu = time.perf_counter(), children_cpu()
    subprocess.run([sys.executable, "-m", "indexer", "-q", "--db", str(db), "index", str(root), "--detector", detector,
                    *extra], check=True)
    return time.perf_counter() - started, children_cpu() - cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=48)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--detector", default="haar")
    ap.add_argument("--scenes", default="photos")
    ap.add_argument("--photos-dir", type=Path, help="build the photos there once and reuse them (a run "
                    "that times only the indexing, e.g. with the machine's other jobs paused)")
    ap.add_argument("--worker-env", action="append", default=[], metavar="NAME=VALUE[,NAME=VALUE]",
                    help="also time a second cluster whose processes have these variables, in the same "
                         "rounds (repeatable: one cluster each), e.g. DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=True")
    args = ap.parse_args()
    # a SIGTERM (`timeout`) must still stop the clusters below (their own process groups)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    variants = {"cluster": {}}
    for spec in args.worker_env:
        variants[f"cluster {spec}"] = dict(kv.split("=", 1) for kv in spec.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        root = args.photos_dir or tmp_path / "photos"
        if len(list(root.glob("**/*.jpg"))) != args.photos:
            build_photos(root, args.photos, scene_files(args.scenes))
        clusters: dict[str, tuple[str, list[subprocess.Popen]]] = {}
        seconds: dict[str, list[float]] = {"local": [], **{name: [] for name in variants}}
        try:
            for name, env in variants.items():
                clusters[name] = start_cluster(args.workers, tmp_path, env)
            for r in range(args.rounds):
                took, cpu = timed_index(root, tmp_path / f"local{r}.db", args.detector, "-j", str(args.workers))
                seconds["local"].append(took)
                print(f"round {r + 1}: local pool {took:.1f} s (CPU: index + pool {cpu:.1f} s)", flush=True)
                for i, (name, (address, procs)) in enumerate(clusters.items()):
                    before = cluster_cpu(procs)
                    took, cpu = timed_index(root, tmp_path / f"cluster{r}-{i}.db", args.detector, "--cluster", address)
                    seconds[name].append(took)
                    used = {k: v - before[k] for k, v in cluster_cpu(procs).items()}
                    print(f"round {r + 1}: {name} {took:.1f} s (CPU: index {cpu:.1f} s, "
                          + ", ".join(f"{k} {v:.1f} s" for k, v in used.items()) + ")", flush=True)
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the clean-up short
            for _, procs in clusters.values():
                stop_cluster(procs)
    local = seconds.pop("local")
    print(f"{args.photos} photos, {args.workers} workers each; local {args.photos / statistics.median(local):.1f} "
          f"photos/s; load average at the end {os.getloadavg()[0]:.1f}")
    for name, times in seconds.items():
        ratios = [c / loc for c, loc in zip(times, local, strict=True)]
        print(f"{name} / local: median {statistics.median(ratios):.2f} (rounds: "
              f"{', '.join(f'{x:.2f}' for x in ratios)}); {args.photos / statistics.median(times):.1f} photos/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
