"""The second executor: the per-photo analysis as tasks on an existing Dask cluster.

The scan walks and diffs the roots here, as for a local run, then hands paths to `DaskExecutor`,
which keeps a bounded number of photos in flight (memory stays flat on a million files) and yields
each result as it arrives, for the scan to store.  The workers run the same `pipeline.Analyzer`
(`worker.analyze_on_cluster`); they must see the photos at the same paths (shared storage) and
load the same model and detector, which every task checks on its worker before it analyses
(`worker.analyze_on_cluster`): a worker with another model, or none, stops the run with a clear error.
A worker that dies mid-photo: Dask re-runs its tasks elsewhere; a photo that kills workers again
and again (Dask's KilledWorker) is recorded as an error with that reason.  Stopping (Ctrl-C, the
stop event) cancels every pending task: finished photos are stored, the next run does the rest.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from indexer.config import Settings
from indexer.domain import STATUS_ERROR
from indexer.media.fingerprint import KnownPhoto
from indexer.worker import WorkerRefused, analyze_on_cluster, analyzer_identity

if TYPE_CHECKING:
    from indexer.results import PhotoResult

log = logging.getLogger(__name__)

IN_FLIGHT_PER_THREAD = 4  # photos submitted ahead per worker thread: enough that none idles
CONNECT_TIMEOUT_S = 20
CLUSTER_EXTRA_HINT = ("Dask support is not installed: install moodindex's [cluster] extra "
                      "(pip install 'moodindex[cluster]', which brings dask[distributed])")


class ClusterError(RuntimeError):
    """The cluster cannot be used for this run (unreachable, no workers, another model); says why."""


class DaskExecutor:
    """Photos analysed on the Dask cluster at `address` (tcp://HOST:PORT)."""

    def __init__(self, settings: Settings, stop: threading.Event, address: str) -> None:
        # what the workers get: the analysis settings, never the database location (a URL may
        # hold a password, and task arguments travel to the scheduler, the workers and their logs)
        self.settings = replace(settings, db=Path(os.devnull), cluster=None)
        self.stop = stop
        self.address = address
        self._client = None

    # -- the Executor interface -------------------------------------------------------------------
    def results(self, paths: Sequence[str], known: Mapping[str, KnownPhoto],
                isolate: AbstractSet[str] = frozenset()) -> Iterator[PhotoResult]:
        """(`isolate` needs nothing more here: Dask already retries a task whose worker died on a
        fresh worker, and reports KilledWorker when that one dies too.)"""
        client = self._connect()
        expected = self._expected_identity(client)
        from distributed import as_completed

        run = uuid.uuid4().hex[:12]
        queue = iter(enumerate(paths))
        in_flight: dict = {}

        def submit_next():  # noqa: ANN202 - the new future, or None when nothing is left (or stopping)
            item = next(queue, None)
            if item is None or self.stop.is_set():
                return None
            i, path = item
            fut = client.submit(analyze_on_cluster, self.settings, path, known.get(path), expected,
                                key=f"moodindex-{run}-{i}", pure=False)
            in_flight[fut] = path
            return fut

        limit = max(1, self._threads(client) * IN_FLIGHT_PER_THREAD)  # backpressure: never more in flight
        while len(in_flight) < limit and submit_next() is not None:
            pass
        stream = as_completed(list(in_flight))
        try:
            for fut in stream:
                path = in_flight.pop(fut)
                yield self._result_of(fut, path)
                if self.stop.is_set():
                    return
                if (fut := submit_next()) is not None:
                    stream.add(fut)
        finally:
            if in_flight:  # stopped or interrupted: nothing left running on the cluster for us
                client.cancel(list(in_flight), force=True)
                in_flight.clear()

    def warm_up(self) -> None:
        """Nothing: the cluster's workers load the model with their first photo."""

    def release_idle(self) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- helpers ----------------------------------------------------------------------------------
    def _connect(self):  # noqa: ANN202 (distributed.Client)
        if self._client is not None:
            return self._client
        try:
            from distributed import Client
        except ImportError as exc:
            raise ClusterError(CLUSTER_EXTRA_HINT) from exc
        try:
            self._client = Client(self.address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {self.address}: {exc}") from None
        return self._client

    @staticmethod
    def _threads(client) -> int:  # noqa: ANN001
        return sum(client.nthreads().values())

    def _expected_identity(self, client) -> dict[str, str]:  # noqa: ANN001
        """The model and detector this machine loads, which every task checks its worker against.
        Loaded here, so that settings this machine cannot load fail here, clearly, not on the cluster."""
        from indexer.pipeline import Analyzer

        if not client.nthreads():
            raise ClusterError(f"the Dask scheduler at {self.address} has no workers: "
                               f"start some with `dask worker {self.address}`")
        return analyzer_identity(Analyzer.from_settings(self.settings))

    @staticmethod
    def _result_of(fut, path: str) -> PhotoResult:  # noqa: ANN001
        """The photo's result, or an error result naming why the cluster could not produce one.
        A refused worker, or one that cannot import moodindex, stops the run (ClusterError): every
        photo it was given would fail the same way, and none is analysed by another model."""
        from indexer.results import PhotoResult

        try:
            return fut.result()
        except WorkerRefused as exc:
            raise ClusterError(str(exc)) from None
        except ImportError as exc:  # unpickling the task on a worker without moodindex or its libraries
            raise ClusterError(f"a Dask worker cannot run moodindex's tasks: {exc} (install the same "
                               "moodindex, with its [cluster] extra, on every worker)") from None
        except Exception as exc:  # noqa: BLE001
            from distributed import KilledWorker

            reason = ("workers died while analysing this file (Dask KilledWorker)" if isinstance(exc, KilledWorker)
                      else f"the cluster task failed: {type(exc).__name__}: {exc}")
            log.error("%s: %s", path, reason)
            try:
                st = os.stat(path)
                size, mtime = st.st_size, st.st_mtime_ns
            except OSError:
                size, mtime = 0, 0
            return PhotoResult(path, size, mtime, STATUS_ERROR, reason, crashed=isinstance(exc, KilledWorker))
