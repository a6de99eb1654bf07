"""indexer/cli/stop_signals.py: SIGTERM/Ctrl-C reach a long-running command without deadlocking it."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from indexer.cli.stop_signals import GracefulStop


def test_a_signal_while_the_main_thread_holds_the_events_lock_still_stops() -> None:
    """The hang seen once in CI: the signal lands while the main thread is inside Event.wait/clear,
    holding the event's lock; a handler that set the event itself would wait for that lock forever."""
    stop = threading.Event()
    names: list[str] = []

    def on_first(name: str) -> None:
        names.append(name)
        stop.set()

    with GracefulStop(on_first):
        with stop._cond:  # what Event.wait()/clear() hold for an instant
            os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, in this thread
            assert not stop.is_set()
        assert stop.wait(10), "the first signal never reached on_first"
    assert names == ["SIGTERM"]


def test_the_second_signal_stops_now_and_handlers_are_restored() -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    stop = threading.Event()
    with pytest.raises(KeyboardInterrupt), GracefulStop(lambda _name: stop.set()):
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.wait(10)
        os.kill(os.getpid(), signal.SIGINT)
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_no_signal_leaves_nothing_behind() -> None:
    called: list[str] = []
    threads = threading.active_count()
    with GracefulStop(called.append):
        pass
    assert called == [] and threading.active_count() == threads
