"""Bounded waits for tests of asynchronous things (the watcher): poll, never sleep blindly."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest


def wait_for(check: Callable[[], object], what: str, timeout: float = 30.0) -> object:
    """Poll `check` until it returns something truthy; fail with `what` at the deadline."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)
