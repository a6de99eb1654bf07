"""Messages that libraries print while one photo is read, caught and handed back as that photo's
warnings instead of leaking onto the terminal with no file name (and through the progress bar).

Three channels:
- Python logging: exifread's warnings ("WARNING exifread: File format not recognized."), and
- Python warnings: Pillow's (corrupt EXIF, odd chunks, ...), both caught by `capture_messages()`
  for the whole photo;
- C libraries (libjpeg "Corrupt JPEG data: ...", libpng, libtiff, OpenCV, LibRaw, libheif) write to
  file descriptor 2: inside `capture_messages()`, each `library_stderr()` block (the pipeline wraps
  decoding and face analysis in one) points fd 2 at an in-memory file (memfd) and reads back what
  landed there.  Python signal handlers are deferred to the end of the block, so a SIGTERM
  handler's log line ("finishing the current photo") is written after fd 2 is restored, not into
  the photo's warnings.  fd 2 is
  per process: another thread writing to stderr during such a block would have its text attributed
  to the photo; the pipeline runs one photo at a time per process, and the blocks hold C calls only.

Not kept: exifread saying a PNG or WebP "does not have exif data" -- a normal state of such files,
which `date_source` already tells; it is passed on to logging at debug level.

Cost: ~0.05 ms per photo when nothing is printed (`python benchmarks/warning_capture.py`).
"""

from __future__ import annotations

import logging
import os
import re
import signal
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


# signals whose Python handlers may print (watch logs "SIGTERM: finishing the current photo"):
# while fd 2 is redirected their handlers are deferred, and run once it is restored
_DEFERRED_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP")
                          if hasattr(signal, n))


def _handlers_to_defer() -> dict[int, object]:
    """The Python handlers of _DEFERRED_SIGNALS that may print, looked up once per photo.  Python's
    own SIGINT handler only raises KeyboardInterrupt, which restores fd 2 on its way out; only the
    main thread runs handlers and may change them."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    found = {}
    for sig in _DEFERRED_SIGNALS:
        handler = signal.getsignal(sig)
        if callable(handler) and handler is not signal.default_int_handler:
            found[sig] = handler
    return found


@contextmanager
def capture_messages() -> Iterator[list[str]]:
    """Catch library messages for one photo; the yielded list is filled when the block ends.
    A capture inside another one leaves the messages to the outer one."""
    result: list[str] = []
    if getattr(_local, "messages", None) is not None:
        yield result
        return
    raw: list[str] = []
    _local.messages = raw
    _local.handlers = _handlers_to_defer()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield result
    finally:
        _local.messages = None
        _local.handlers = {}
        raw.extend(f"{w.category.__name__}: {w.message}" for w in caught)
        result.extend(tidy(raw))


class library_stderr:  # noqa: N801 (used like the context-manager functions above)
    """Inside `capture_messages()`: what C code writes to fd 2 during the block joins the photo's
    messages.  Outside one it does nothing.  Signal handlers that may print are replaced for the
    block by ones that note the signal, and run when it ends (a KeyboardInterrupt still comes out,
    just after it).  A class, not a generator: it runs twice per photo, on the hot path."""

    __slots__ = ("raw", "saved_fd", "handlers", "arrived")

    def __enter__(self) -> None:
        self.raw = getattr(_local, "messages", None)
        if self.raw is None:
            return
        self.handlers = getattr(_local, "handlers", None) or {}
        self.arrived: list[int] = []
        for sig in self.handlers:
            signal.signal(sig, lambda signum, _frame: self.arrived.append(signum))
        try:
            sys.stderr.flush()
        except (AttributeError, OSError, ValueError):  # no stderr, or a closed one
            pass
        try:
            self.saved_fd = os.dup(2)
            os.dup2(_sink(), 2)
        except BaseException:  # out of file descriptors: leave everything as it was
            if hasattr(self, "saved_fd"):
                os.close(self.saved_fd)
            for sig, handler in self.handlers.items():
                signal.signal(sig, handler)
            raise

    def __exit__(self, *_exc: object) -> None:
        if self.raw is None:
            return
        sink = _sink()
        os.dup2(self.saved_fd, 2)
        os.close(self.saved_fd)
        written = os.lseek(sink, 0, os.SEEK_CUR)  # fd 2 was a dup of the sink: they share the offset
        if written:
            data = os.pread(sink, written, 0)
            os.ftruncate(sink, 0)
            os.lseek(sink, 0, os.SEEK_SET)
            self.raw.append(data.decode("utf-8", "replace"))
        for sig, handler in self.handlers.items():
            signal.signal(sig, handler)
        for signum in self.arrived:
            self.handlers[signum](signum, None)
