"""Child processes die with their parent, kill -9 included: the one rule for that.

A SIGKILLed moodindex runs no clean-up code, so a child that waits on a pipe from it (a pool
worker waiting for the next photo, a `-stay_open` exiftool) would wait for ever, holding its
memory.  On Linux the child asks the kernel for SIGKILL when its parent dies (PR_SET_PDEATHSIG;
strictly, when the *thread* that started it ends, so one thread owns a pool or an ExifTool).
Elsewhere a worker watches its parent's pid from a daemon thread.  multiprocessing's resource
tracker needs nothing of its own: it exits when the last process holding its pipe (the parent
and the workers) is gone.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1
PARENT_POLL_S = 1.0  # the fallback's delay, where the kernel cannot tell us


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with_parent(parent_pid: int) -> None:
    """Called early in a child process (a pool worker's initializer): be killed when `parent_pid`
    dies; exit at once when it already has (it died before we got here)."""
    prctl = _prctl()
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    else:
        threading.Thread(target=_watch_parent, args=(parent_pid,), name="parent-watch", daemon=True).start()
    if os.getppid() != parent_pid:
        os._exit(1)


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def preexec_die_with_parent() -> Callable[[], None] | None:
    """A subprocess preexec_fn doing the same for a program we start (exiftool), or None where the
    kernel offers nothing (there, exiftool notices its closed stdin at its next read)."""
    prctl = _prctl()  # looked up here: the forked child only calls it
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # we died between fork and prctl: nobody will ever signal
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec
