"""SIGTERM and Ctrl-C for a long-running command: the first asks it to stop after the current
photo, the second stops it now.

A Python signal handler runs in the main thread between two bytecodes, possibly in the middle of
`threading.Event.wait()` or `.clear()`, while that thread holds the event's internal lock.  Setting
an event from the handler takes the same lock and waits for it forever: `moodindex watch` hung that
way once under load (SIGINT never stopped it).  So the handler here takes no lock at all: it writes
the signal's number into a pipe, and a helper thread reads it and calls `on_first`, which may take
any lock it likes (the main thread releases it as soon as the handler has returned).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class GracefulStop:
    """`with GracefulStop(on_first):` calls on_first(signal name) in a helper thread on the first
    SIGTERM/SIGINT and raises KeyboardInterrupt in the main thread on the second."""

    def __init__(self, on_first: Callable[[str], None]) -> None:
        self._on_first = on_first
        self._received = 0  # a plain int: the handler must not take locks
        self._previous: dict[int, object] = {}

    def __enter__(self) -> GracefulStop:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._relay = threading.Thread(target=self._relay_first, name="moodindex-stop-signal", daemon=True)
        self._relay.start()
        self._previous = {sig: signal.signal(sig, self._on_signal) for sig in SIGNALS}
        return self

    def __exit__(self, *_exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        os.close(self._write)  # the relay's read returns b"" and it ends
        self._relay.join()
        os.close(self._read)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._received += 1
        if self._received > 1:  # asked twice: stop now
            raise KeyboardInterrupt
        try:
            os.write(self._write, bytes([signum]))
        except OSError:  # a full or closed pipe: the first signal is already on its way
            pass

    def _relay_first(self) -> None:
        data = os.read(self._read, 1)
        if data:
            self._on_first(signal.Signals(data[0]).name)
