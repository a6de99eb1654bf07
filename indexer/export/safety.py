"""Where we may write, and how: inside the indexed root, never through a symlink, atomically.

Every write goes to a temp file in the target's own directory, is fsynced, gets the old file's
mode, and replaces the target with one rename (then the directory is fsynced), so a crash
leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import time
from pathlib import Path

from indexer.config import DEFAULT_MAX_FILE_BYTES
from indexer.fsutil import fsync_dir
from indexer.media.source import read_photo
from indexer.paths import is_under

NAME_MAX = 255  # bytes in one file name (Linux, macOS, Windows file systems)
# exiftool -overwrite_original writes FILE_exiftool_tmp beside FILE first: our temp names leave room for it
_EXIFTOOL_SUFFIX = "_exiftool_tmp"
TEMP_MARK = ".moodindex-"
# what temp_name makes: hidden, our mark, 8 hex digits, the target's extension (if any)
TEMP_NAME_RE = re.compile(r"^\..*" + re.escape(TEMP_MARK) + r"[0-9a-f]{8}(\.[^.]*)?$", re.DOTALL)
STALE_AFTER_S = 3600  # a temp file of ours this old belongs to no running command, but to a killed one
_swept: set[str] = set()


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
    """A fresh hidden name beside `target`, keeping its extension (exiftool picks the format by it).

    `.NAME.moodindex-XXXXXXXX.EXT`, with NAME shortened as needed so that the name, and exiftool's
    own NAME_exiftool_tmp beside it, fit in NAME_MAX bytes: a photo whose name is already near
    the limit can still be tagged.  `TEMP_NAME_RE` recognises these names (see `sweep_temp_files`)."""
    tail = f"{TEMP_MARK}{secrets.token_hex(4)}{target.suffix}"
    budget = NAME_MAX - len(_EXIFTOOL_SUFFIX) - 1 - len(os.fsencode(tail))
    stem = target.name
    while len(os.fsencode(stem)) > budget:  # whole characters only
        stem = stem[:-1]
    return target.with_name(f".{stem}{tail}")


def sweep_temp_files(directory: Path, now: float | None = None) -> list[Path]:
    """Delete the temp files a killed run left in `directory` (once per folder and process): regular
    files named like `temp_name`'s (or exiftool's NAME_exiftool_tmp of one), owned by us, not
    modified for STALE_AFTER_S.  Nothing else is ever touched."""
    key = os.path.realpath(directory)
    if now is None and key in _swept:
        return []
    _swept.add(key)
    now = time.time() if now is None else now
    removed = []
    try:
        entries = [e for e in os.scandir(directory) if TEMP_NAME_RE.match(e.name.removesuffix(_EXIFTOOL_SUFFIX))]
    except OSError:
        return removed
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and now - st.st_mtime >= STALE_AFTER_S:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


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


def copy_photo(src: Path, dest: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> None:
    """Copy `src` to `dest` (digiKam's $OUTPUT), refusing before anything is written when `dest` is
    a symbolic link (even a dangling one), not a regular file, or no file name at all.

    The copy is written to a fresh temp file beside `dest` (O_EXCL | O_NOFOLLOW: a link planted
    there is never followed) and renamed over `dest`, unless `dest` changed meanwhile."""
    if dest.name in ("", ".", "..") or str(dest).endswith(os.sep):
        raise UnsafeTarget(f"{str(dest)!r}: not a file name (an empty $OUTPUT?)")
    try:
        before: os.stat_result | None = os.lstat(dest)
    except FileNotFoundError:
        before = None
    if before is not None and stat.S_ISLNK(before.st_mode):
        raise UnsafeTarget(f"{dest}: is a symbolic link; refusing to write through it")
    if before is not None and not stat.S_ISREG(before.st_mode):
        raise UnsafeTarget(f"{dest}: not a regular file")
    data = read_photo(src, max_bytes)
    sweep_temp_files(dest.parent)
    tmp = temp_name(dest)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        src_st = os.stat(src)
        commit(tmp, dest, src_st.st_mode & 0o777, before)
    finally:
        remove_quietly(tmp)
    # times as `cp -p` would, set only now: a temp file with an old mtime would look stale to a sweep
    os.utime(dest, ns=(src_st.st_atime_ns, src_st.st_mtime_ns), follow_symlinks=False)
