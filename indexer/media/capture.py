"""Messages that libraries print while one photo is read, caught and handed back as that photo's
warnings instead of leaking onto the terminal with no file name (and through the progress bar).

Three channels, all caught by `capture_messages()`:
- C libraries (libjpeg "Corrupt JPEG data: ...", libpng, libtiff, OpenCV, LibRaw, libheif) write to
  file descriptor 2.  For the duration of the block fd 2 points at an in-memory file (memfd), and
  whatever landed there is read back.  This is per process: a thread that writes to stderr during
  the block has its text attributed to the photo (the pipeline runs one photo at a time per process,
  in the worker processes, or in the CLI's only working thread).
- Python logging: exifread's warnings ("WARNING exifread: File format not recognized.").
- Python warnings: Pillow's (corrupt EXIF, odd chunks, ...).

Not kept: exifread saying a PNG or WebP "does not have exif data" -- a normal state of such files,
which `date_source` already tells; it is passed on to logging at debug level.

Cost: a few system calls per photo, ~15-25 us when nothing is printed, ~50 us with a message
(`python benchmarks/warning_capture.py`).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

MAX_MESSAGES = 20      # per photo; a badly damaged JPEG can repeat itself hundreds of times
MAX_MESSAGE_CHARS = 200
CAPTURED_LOGGERS = ("exifread",)
# OpenCV's log prefix: "[ WARN:0@0.048] global grfmt_tiff.cpp:122 " (the thread, the clock, its source file)
_OPENCV_PREFIX = re.compile(r"^\[\s*[A-Z]+:[^\]]*\]\s+(global\s+)?\S+\.cpp:\d+\s+")
_NOT_WORTH_KEEPING = re.compile(r"^(PNG|Webp|WEBP|HEIC|JPEG|TIFF) file does not have exif data\.?$", re.IGNORECASE)

log = logging.getLogger(__name__)
_local = threading.local()
_sink_fd: int | None = None
_sink_pid: int | None = None
_sink_lock = threading.Lock()


class _ToCurrentPhoto(logging.Filter):
    """On a library's logger: while a photo is being read in this thread, its warnings go to that
    photo's list and not on to the handlers."""

    def filter(self, record: logging.LogRecord) -> bool:
        sink = getattr(_local, "messages", None)
        if sink is None or record.levelno < logging.WARNING:
            return True
        message = record.getMessage()
        if _NOT_WORTH_KEEPING.match(message.strip()):
            log.debug("%s: %s", record.name, message)
            return False
        sink.append(f"{record.name}: {message}")
        return False


_FILTER = _ToCurrentPhoto()
for _name in CAPTURED_LOGGERS:
    logging.getLogger(_name).addFilter(_FILTER)


def _sink() -> int:
    """The in-memory file fd 2 is pointed at, one per process (made after a fork, too)."""
    global _sink_fd, _sink_pid
    with _sink_lock:
        if _sink_fd is None or _sink_pid != os.getpid():
            if hasattr(os, "memfd_create"):
                _sink_fd = os.memfd_create("moodindex-stderr", os.MFD_CLOEXEC)
            else:  # not Linux: an unlinked temp file
                fd, name = tempfile.mkstemp(prefix="moodindex-stderr-")
                os.unlink(name)
                _sink_fd = fd
            _sink_pid = os.getpid()
        return _sink_fd


def tidy(raw: list[str]) -> list[str]:
    """Short, distinct lines in the order they came; a repeated line once, with its count."""
    counts: dict[str, int] = {}
    for text in raw:
        for line in text.splitlines():
            line = _OPENCV_PREFIX.sub("", " ".join(line.split()))
            if not line or _NOT_WORTH_KEEPING.match(line):
                continue
            if len(line) > MAX_MESSAGE_CHARS:
                line = line[:MAX_MESSAGE_CHARS - 1] + "…"
            counts[line] = counts.get(line, 0) + 1
    out = [line if n == 1 else f"{line} (x{n})" for line, n in counts.items()]
    if len(out) > MAX_MESSAGES:
        out = out[:MAX_MESSAGES - 1] + [f"... and {len(out) - MAX_MESSAGES + 1} more messages"]
    return out


@contextmanager
def capture_messages() -> Iterator[list[str]]:
    """Catch what libraries print during the block; the yielded list is filled when it ends."""
    result: list[str] = []
    if getattr(_local, "messages", None) is not None:  # inside another capture: that one collects
        yield result
        return
    raw: list[str] = []
    _local.messages = raw
    sink = _sink()
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):  # no stderr, or a closed one
        pass
    saved = os.dup(2)
    os.dup2(sink, 2)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield result
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        _local.messages = None
        written = os.lseek(sink, 0, os.SEEK_CUR)  # fd 2 was a dup of the sink: they share the offset
        if written:
            data = os.pread(sink, written, 0)
            os.ftruncate(sink, 0)
            os.lseek(sink, 0, os.SEEK_SET)
            raw.insert(0, data.decode("utf-8", "replace"))
        raw.extend(f"{w.category.__name__}: {w.message}" for w in caught)
        result.extend(tidy(raw))
