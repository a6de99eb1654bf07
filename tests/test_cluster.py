"""`moodindex index --cluster` on a real Dask cluster on loopback (a scheduler and two worker
processes started here): every photo accounted for, even when a worker is killed mid-run; a worker
with another model is refused; the database password never travels to the workers."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from indexer.db.models import Photo
from indexer.db.session import open_db
from indexer.domain import STATUS_OK
from tests.photo_factory import compose, dev_faces, write_photo

distributed = pytest.importorskip("distributed", reason="the [cluster] extra (dask[distributed]) is not installed")

PHOTOS = 24


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """A scheduler and one nanny with two single-threaded worker processes, loopback only."""
    logs = tmp_path_factory.mktemp("dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False",
           # as the README starts workers: Dask's sampling profiler and its MALLOC_TRIM_THRESHOLD_
           # for the workers cost ~8 % of the analysis' CPU (benchmarks/cluster_bench.py, README)
           "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
           "DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON": "{'MALLOC_TRIM_THRESHOLD_': None}"}
    procs = []
    with open(logs / "scheduler.log", "wb") as log:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
             "--dashboard-address", ":0", "--no-show"], stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True))
    with open(logs / "workers.log", "wb") as log:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "2", "--nthreads", "1",
             "--host", "127.0.0.1", "--dashboard-address", ":0", "--no-dashboard", "--death-timeout", "60"],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True))
    client = distributed.Client(address, timeout=60)
    try:
        client.wait_for_workers(2, timeout=120)
        yield {"address": address, "client": client, "logs": logs}
    finally:
        client.close()
        for p in reversed(procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(p.pid, signal.SIGKILL)


@pytest.fixture()
def photos(tmp_path: Path, dev_faces_dir: Path) -> Path:
    root = tmp_path / "Archive"
    faces = dev_faces(dev_faces_dir, None, PHOTOS)
    for i in range(PHOTOS):
        img, _ = compose([faces[i]], size=(1600, 1200), face_px=300, seed=i)
        write_photo(root / f"p{i:02d}.jpg", img)
    return root


def _index(db: Path, root: Path, address: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "indexer", "--db", str(db), "index", str(root), "--cluster",
                             address, "--detector", "haar", "--format", "json", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _rows(db: Path) -> dict[str, Photo]:
    engine = open_db(db)
    try:
        with Session(engine) as s:
            return {p.path: p for p in s.scalars(select(Photo))}
    finally:
        engine.dispose()


def test_a_worker_killed_mid_run_loses_no_photo(cluster, photos: Path, tmp_path: Path) -> None:  # noqa: ANN001
    client = cluster["client"]
    db = tmp_path / "index.db"
    run = _index(db, photos, cluster["address"])
    killed: list[int] = []

    def kill_a_busy_worker() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and run.poll() is None:
            busy = [w for w, tasks in client.processing().items() if tasks]
            if busy:
                pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                os.kill(pid, signal.SIGKILL)  # the nanny starts a new one; its tasks run elsewhere
                killed.append(pid)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    out, err = run.communicate(timeout=600)
    killer.join()
    assert run.returncode == 0, err
    assert killed, "no worker was busy to kill: the run finished too fast to test this"
    summary = json.loads(out)
    rows = _rows(db)
    files = {str(p) for p in photos.glob("*.jpg")}
    assert set(rows) == files  # every photo accounted for
    # re-run elsewhere (ok), or recorded with the reason the cluster gave
    assert all(r.status == STATUS_OK or (r.error and "worker" in r.error) for r in rows.values())
    assert summary["new"] + summary["failed"] == PHOTOS
    assert sum(r.status == STATUS_OK for r in rows.values()) >= PHOTOS - 2
    client.wait_for_workers(2, timeout=120)  # the nanny's replacement, for the next test


def test_results_match_the_local_pool(cluster, photos: Path, tmp_path: Path) -> None:  # noqa: ANN001
    local_db, cluster_db = tmp_path / "local.db", tmp_path / "cluster.db"
    local = subprocess.run([sys.executable, "-m", "indexer", "--db", str(local_db), "index", str(photos), "-j", "2",
                            "--detector", "haar"], capture_output=True, text=True, timeout=600)
    assert local.returncode == 0, local.stderr
    run = _index(cluster_db, photos, cluster["address"])
    out, err = run.communicate(timeout=600)
    assert run.returncode == 0, err
    a, b = _rows(local_db), _rows(cluster_db)
    assert set(a) == set(b)
    for path in a:
        assert (a[path].face_count, a[path].model_version, a[path].detector) == (
            b[path].face_count, b[path].model_version, b[path].detector), path


def test_a_worker_with_another_model_is_refused(cluster, photos: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """This machine loads another model than the workers: each task checks its worker before it
    analyses, and the first refusal stops the run, naming the worker; nothing is stored as analysed."""
    from click.testing import CliRunner

    from indexer.cli import main
    from indexer.vision import emotion

    monkeypatch.setattr(emotion.EmotionModel, "model_id", property(lambda self: "moodindex-fer-9.9+other"))
    db = tmp_path / "index.db"
    result = CliRunner().invoke(main, ["--db", str(db), "index", str(photos), "--cluster", cluster["address"],
                                       "--detector", "haar"])
    assert result.exit_code == 1
    assert "has model moodindex-fer-" in result.output and "refused" in result.output
    assert not any(r.status == STATUS_OK for r in _rows(db).values())


def test_each_worker_loads_the_model_once_on_the_thread_that_analyses(cluster, photos: Path) -> None:  # noqa: ANN001
    """The model check runs inside the tasks: no second Analyzer on the worker's event-loop thread
    (where `client.run` would load one, blocking the worker's heartbeats while it loads)."""
    from indexer import cluster as cluster_mod
    from indexer.config import Settings
    from indexer.domain import STATUS_OK

    executor = cluster_mod.DaskExecutor(Settings(detector="haar"), threading.Event(), cluster["address"])
    client = executor._connect()
    paths = sorted(str(p) for p in photos.glob("*.jpg"))[:6]
    try:
        assert all(r.status == STATUS_OK for r in executor.results(paths, {}))

        def loaded_here() -> int:
            from indexer import worker

            return len(getattr(worker._LOCAL, "analyzers", {}))

        on_event_loops = client.run(loaded_here)  # client.run: on each worker's event-loop thread
        assert set(on_event_loops.values()) == {0}, on_event_loops
        on_task_threads = client.gather([client.submit(loaded_here, workers=[w], pure=False)
                                         for w in on_event_loops])
        assert max(on_task_threads) >= 1  # the analysing threads have theirs (one worker may have had no photo)
    finally:
        executor.close()


def test_an_unreachable_scheduler_is_one_line(tmp_path: Path, photos: Path) -> None:
    from click.testing import CliRunner

    from indexer.cli import main

    address = f"tcp://127.0.0.1:{_free_port()}"
    result = CliRunner().invoke(main, ["--db", str(tmp_path / "i.db"), "index", str(photos), "--cluster", address,
                                       "--detector", "haar"], env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"})
    assert result.exit_code == 1
    assert f"cannot reach the Dask scheduler at {address}" in result.output


def test_bounded_in_flight_and_stopping_cancels_the_rest(cluster, photos: Path) -> None:  # noqa: ANN001
    """Never more than IN_FLIGHT_PER_THREAD photos per worker thread submitted ahead (memory stays
    flat on a million files); the stop event (Ctrl-C) leaves no task of ours on the cluster."""
    from indexer import cluster as cluster_mod
    from indexer.config import Settings

    stop = threading.Event()
    executor = cluster_mod.DaskExecutor(Settings(detector="haar"), stop, cluster["address"])
    client = executor._connect()
    submitted = 0
    real_submit = client.submit

    def counting_submit(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        nonlocal submitted
        submitted += 1
        return real_submit(*args, **kwargs)

    client.submit = counting_submit
    paths = sorted(str(p) for p in photos.glob("*.jpg"))
    limit = 2 * cluster_mod.IN_FLIGHT_PER_THREAD
    received = 0
    try:
        for _ in executor.results(paths, {}):
            received += 1
            assert submitted - received <= limit
            if received == 5:
                stop.set()
        assert received == 5 and submitted < PHOTOS

        def ours(dask_scheduler) -> list[str]:  # noqa: ANN001
            return [str(k) for k, ts in dask_scheduler.tasks.items()
                    if str(k).startswith("moodindex-") and ts.state in ("processing", "queued", "waiting", "no-worker")]

        deadline = time.monotonic() + 30
        while client.run_on_scheduler(ours) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.run_on_scheduler(ours) == []
    finally:
        executor.close()


def test_a_worker_that_cannot_load_the_model_refuses_its_task(tmp_path: Path, photos: Path) -> None:
    """The check in the task, outside Dask: a model that does not load here, or another identity
    than the submitter's, raises WorkerRefused (the run stops) before any photo is analysed."""
    from indexer.config import Settings
    from indexer.worker import WorkerRefused, analyze_on_cluster

    photo = str(sorted(photos.glob("*.jpg"))[0])
    missing = Settings(detector="haar", model=tmp_path / "no-such-model.tflite")
    indexer_log = logging.getLogger("indexer")
    level = indexer_log.level  # a worker quiets moodindex's logging; this process is not one
    try:
        with pytest.raises(WorkerRefused, match="cannot load the model or detector"):
            analyze_on_cluster(missing, photo, None, {"model": "m", "detector": "d"})
        with pytest.raises(WorkerRefused, match=r"this machine moodindex-fer-9\.9\+other and .*: refused"):
            analyze_on_cluster(Settings(detector="haar"), photo, None,
                               {"model": "moodindex-fer-9.9+other", "detector": "d"})
    finally:
        indexer_log.setLevel(level)
