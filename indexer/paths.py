"""The one rule for "is this path under that folder", and the one way paths are normalised.

Paths are compared as strings, by whole components: /a/bc is not under /a/b.  Every layer that
asks (the scan, the watcher, the export safety checks, the SQL range over `photos.path`) uses
these, so they can never disagree about what a root contains."""

from __future__ import annotations

import os
from pathlib import Path


def normalise_path(path: str | Path) -> str:
    """Absolute, user-expanded, symlinks kept (the path the user knows)."""
    return os.path.normpath(os.path.abspath(os.path.expanduser(str(path))))


def stat_or_none(path: str) -> os.stat_result | None:
    """os.stat, or None for a path that is gone or unreadable (a race with a delete is normal)."""
    try:
        return os.stat(path)
    except OSError:
        return None


def folder_prefix(folder: str) -> str:
    """What every path strictly below `folder` starts with."""
    return folder.rstrip("/") + "/"


def is_under(path: str, folder: str, *, strict: bool = False) -> bool:
    """`path` is `folder` itself (unless `strict`) or somewhere below it."""
    if path == folder:
        return not strict
    return path.startswith(folder_prefix(folder))
