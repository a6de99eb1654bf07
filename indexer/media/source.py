"""Open a photo safely and read it bounded: the one way every module reads a photo's bytes.

A name ending in .jpg can be anything: a FIFO (opening it blocks forever), a socket, a device
(`ln -s /dev/zero z.jpg` never ends), or a multi-gigabyte junk file.  So:
- the file (after symlinks) must be a regular file, checked with stat() *before* it is opened,
  and again on the open descriptor (it could have been swapped meanwhile); the open itself is
  non-blocking, so even a FIFO swapped in between cannot hang us;
- it is never read past `max_bytes` (the `max_file_bytes` setting), whatever its size claims.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager

from indexer.config import DEFAULT_MAX_FILE_BYTES

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


class UnreadablePhoto(OSError):
    """The file is not read; str() is the reason recorded for the user.  `skipped` tells a file we
    chose not to read (not a regular file, over the size limit) from one that failed to read.
    An OSError, so that every caller already handling unreadable files handles these too."""

    def __init__(self, reason: str, skipped: bool = False) -> None:
        super().__init__(reason)
        self.skipped = skipped


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), f"file type {stat.S_IFMT(mode):o}")


def _size_text(n: int) -> str:
    for unit, name in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= unit:
            return f"{n / unit:.1f} {name}"
    return f"{n} bytes"


def too_large(size: int, max_bytes: int) -> UnreadablePhoto:
    return UnreadablePhoto(f"file too large: {_size_text(size)}, over the max_file_bytes limit of "
                           f"{_size_text(max_bytes)}", skipped=True)


def check_regular(st: os.stat_result, max_bytes: int) -> None:
    """Raise UnreadablePhoto unless `st` is a regular file within the size limit."""
    if not stat.S_ISREG(st.st_mode):
        raise UnreadablePhoto(f"not a regular file but {_kind(st.st_mode)}: never opened", skipped=True)
    if st.st_size > max_bytes:
        raise too_large(st.st_size, max_bytes)


class BoundedReader(io.RawIOBase):
    """A read-only, seekable view of an open file that raises UnreadablePhoto instead of returning
    a byte past `max_bytes` (a file that grows while we read it, a /proc-like file lying about its size)."""

    def __init__(self, raw: io.FileIO, max_bytes: int) -> None:
        super().__init__()
        self._raw = raw
        self._max = max_bytes

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def readinto(self, buffer) -> int:  # noqa: ANN001 (any writable buffer)
        view = memoryview(buffer).cast("B")
        room = self._max + 1 - self._raw.tell()  # one byte more than allowed tells "too large"
        n = self._raw.readinto(view[:max(0, min(len(view), room))]) or 0
        if self._raw.tell() > self._max:
            raise UnreadablePhoto(f"file too large: more than the max_file_bytes limit of {_size_text(self._max)} "
                                  "(it grew while being read, or its size was not known)", skipped=True)
        return n

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        return super().read(size) or b""

    def readall(self) -> bytes:
        """The rest of the file, in one allocation sized from fstat (no second copy of a big photo)."""
        expected = min(os.fstat(self._raw.fileno()).st_size, self._max) - self._raw.tell()
        data = self._raw.read(expected) or b"" if expected > 0 else b""  # within the limit by construction
        if more := self.read(1 << 20):  # longer than fstat said: read on, still bounded
            pieces = [data, more]
            while piece := self.read(1 << 20):
                pieces.append(piece)
            data = b"".join(pieces)
        return data

    def close(self) -> None:
        self._raw.close()
        super().close()


@contextmanager
def open_photo(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Iterator[BoundedReader]:
    """A regular file opened for bounded reading; UnreadablePhoto (never a hang) for anything else.

    The file is checked with stat() before it is opened (a device is never opened), and again on
    the descriptor we read from, which the non-blocking open makes safe to get even for a FIFO
    swapped in between."""
    try:
        check_regular(os.stat(path), max_bytes)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except UnreadablePhoto:
        raise
    except OSError as exc:
        raise UnreadablePhoto(f"cannot read file: {exc.strerror or exc}") from exc
    try:
        check_regular(os.fstat(fd), max_bytes)  # what we opened, not what the name pointed at before
        os.set_blocking(fd, True)
        raw = io.FileIO(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise
    reader = BoundedReader(raw, max_bytes)
    try:
        yield reader
    except UnreadablePhoto:
        raise
    except OSError as exc:
        raise UnreadablePhoto(f"cannot read file: {exc.strerror or exc}") from exc
    finally:
        reader.close()


def read_photo(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> bytes:
    """All bytes of a photo, read through `open_photo`'s checks."""
    with open_photo(path, max_bytes) as f:
        return f.readall()

