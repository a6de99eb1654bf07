"""Processes as /proc shows them (Linux): what a test needs to prove that none was left behind."""

from __future__ import annotations

import os
import time
from pathlib import Path


def _stat(pid: int) -> tuple[int, str, str] | None:
    """(parent pid, state, start time) of a live process, None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return int(fields[1]), fields[0], fields[19]


def descendants(pid: int) -> dict[int, str]:
    """Every process below `pid`, with its start time (so a reused pid is never mistaken for it)."""
    parents: dict[int, list[int]] = {}
    starts: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            parents.setdefault(st[0], []).append(int(entry))
            starts[int(entry)] = st[2]
    found, todo = {}, [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found[child] = starts[child]
            todo.append(child)
    return found


def alive(pid: int, start: str) -> bool:
    st = _stat(pid)
    return st is not None and st[2] == start and st[1] != "Z"  # a zombie has died


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def survivors(processes: dict[int, str], within_s: float = 10.0) -> list[str]:
    """Those of `processes` (pid -> start time, from `descendants`) still alive after `within_s`."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline and any(alive(p, s) for p, s in processes.items()):
        time.sleep(0.1)
    return [f"{p}: {cmdline(p)[:120]}" for p, s in processes.items() if alive(p, s)]
