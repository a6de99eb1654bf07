"""Where we may write, and how: inside the indexed root, never through a symlink, atomically.

Every write goes to a temp file in the target's own directory, is fsynced, gets the old file's
mode, and replaces the target with one rename (then the directory is fsynced), so a crash
leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from indexer.fsutil import fsync_dir
from indexer.paths import is_under


class UnsafeTarget(ValueError):
    """We refuse to write this path; the message says why."""


def sidecar_path(photo: Path) -> Path:
    """darktable's and digiKam's default sidecar name: NAME.EXT.xmp beside the photo."""
    return photo.with_name(photo.name + ".xmp")


def check_target(target: Path, root: Path | str | None) -> None:
    """Refuse symlinks, non-regular files and anything whose real location is outside `root`."""
    if root is None or not str(root):
        raise UnsafeTarget(f"{target}: no indexed root recorded for this photo")
    real_root = os.path.realpath(root)
    if not is_under(os.path.abspath(target), os.path.abspath(root)):
        raise UnsafeTarget(f"{target}: outside the indexed root {root}")
    if os.path.islink(target):
        raise UnsafeTarget(f"{target}: is a symbolic link; refusing to write through it")
    if os.path.lexists(target) and not stat.S_ISREG(os.lstat(target).st_mode):
        raise UnsafeTarget(f"{target}: not a regular file")
    real_parent = os.path.realpath(target.parent)
    if not is_under(real_parent, real_root):
        raise UnsafeTarget(f"{target}: its folder resolves to {real_parent}, outside the indexed root {root}")


def temp_name(target: Path) -> Path:
    """A fresh hidden name beside `target`, keeping its extension (exiftool picks the format by it)."""
    token = secrets.token_hex(4)
    return target.with_name(f".{target.name}.moodindex-{token}{target.suffix}")


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(tmp: Path, target: Path, mode: int, expect: os.stat_result | None) -> None:
    """fsync `tmp`, give it `mode`, and rename it over `target` — unless `target` changed since
    `expect` was taken (someone else wrote it meanwhile), in which case nothing is replaced."""
    os.chmod(tmp, mode)
    fsync_file(tmp)
    if expect is not None:
        now = os.lstat(target)
        if (now.st_mtime_ns, now.st_size, now.st_ino) != (expect.st_mtime_ns, expect.st_size, expect.st_ino):
            raise UnsafeTarget(f"{target}: changed while we were writing it; left as it is")
    elif os.path.lexists(target):
        raise UnsafeTarget(f"{target}: appeared while we were writing it; left as it is")
    os.replace(tmp, target)
    fsync_dir(target.parent)


def remove_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
