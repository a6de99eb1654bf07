"""The watchdog side: which events to ask for, the handler that runs in watchdog's threads, and
the hooks that turn watchdog's silent failures (a queue overflow it only logs, a reader thread
that dies) into calls the watcher can act on."""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog import events as wd_events
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from indexer.walk import IGNORE_FILE, is_photo_name, is_sidecar_name

# The events worth waking up for.  Leaving out IN_OPEN and IN_CLOSE_NOWRITE matters: the
# indexer's own reads of a photo would otherwise wake the watcher for every photo it reads.
EVENT_TYPES: list[type[FileSystemEvent]] = [
    cls for cls in (getattr(wd_events, name, None) for name in (
        "FileCreatedEvent", "FileModifiedEvent", "FileAttribEvent", "FileClosedEvent", "FileDeletedEvent",
        "FileMovedEvent", "DirCreatedEvent", "DirDeletedEvent", "DirMovedEvent"))
    if cls is not None
]
WATCH_LIMIT_HINT = ("raise it with `sudo sysctl fs.inotify.max_user_watches=524288` "
                    "(and in /etc/sysctl.d/ to keep it)")
WATCHDOG_LOGGERS = ("watchdog.observers.inotify_c", "watchdog.observers.inotify")


def make_observer(poll: float | None) -> BaseObserver:
    """inotify (the platform default) or, with `poll`, watchdog's PollingObserver."""
    return PollingObserver(timeout=poll) if poll else Observer()


def reports_close_write(observer: BaseObserver) -> bool:
    return "inotify" in type(observer).__name__.lower()


class EventHandler(FileSystemEventHandler):
    """Runs in watchdog's thread: drop what can never matter, pass the rest on (cheap: name checks only)."""

    def __init__(self, post: Callable[[FileSystemEvent], None]) -> None:
        self._post = post

    def dispatch(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            if event.event_type in ("created", "deleted", "moved"):
                self._post(event)
            return
        names = [os.path.basename(os.fsdecode(event.src_path))]
        if event.event_type == "moved":
            names.append(os.path.basename(os.fsdecode(event.dest_path)))
        if any(is_photo_name(n) or n == IGNORE_FILE or is_sidecar_name(n) for n in names):
            self._post(event)


class _OverflowFilter(logging.Filter):
    """watchdog reports a kernel queue overflow only as a log record: turn it into a call."""

    def __init__(self, on_overflow: Callable[[], None]) -> None:
        super().__init__()
        self._on_overflow = on_overflow

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "overflow" in message.lower():
            self._on_overflow()
            return False  # the watcher logs its own single line
        return "called when the thread is inactive" not in message  # a harmless race when a root is paused


class WatchdogHooks:
    """Installed for the watcher's lifetime: the overflow log filter and a thread excepthook that
    reports a dead watchdog thread (e.g. the watch limit hit on a new folder) instead of printing."""

    def __init__(self, on_overflow: Callable[[], None], on_thread_failure: Callable[[str], None]) -> None:
        self._filter = _OverflowFilter(on_overflow)
        self._on_thread_failure = on_thread_failure
        self._loggers: list[logging.Logger] = []
        self._old_excepthook = threading.excepthook

    def install(self) -> None:
        for name in WATCHDOG_LOGGERS:
            lg = logging.getLogger(name)
            lg.addFilter(self._filter)
            if lg.getEffectiveLevel() > logging.WARNING:
                lg.setLevel(logging.WARNING)  # with -q the overflow warning must still be seen by the filter
            self._loggers.append(lg)
        self._old_excepthook = threading.excepthook
        threading.excepthook = self._excepthook

    def remove(self) -> None:
        for lg in self._loggers:
            lg.removeFilter(self._filter)
        self._loggers.clear()
        threading.excepthook = self._old_excepthook

    def _excepthook(self, args: threading.ExceptHookArgs) -> None:
        thread_module = type(args.thread).__module__ if args.thread is not None else ""
        if thread_module.startswith("watchdog") and args.exc_value is not None:
            exc = args.exc_value
            self._on_thread_failure(watch_failure(exc) if isinstance(exc, OSError)
                                    else f"file watching stopped ({type(exc).__name__}: {exc})")
            return
        self._old_excepthook(args)


def watch_failure(exc: BaseException) -> str:
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC:
        try:
            limit = Path("/proc/sys/fs/inotify/max_user_watches").read_text().strip()
        except OSError:
            limit = "?"
        return f"inotify watch limit reached (fs.inotify.max_user_watches = {limit})"
    if code == errno.EMFILE:
        return "inotify instance limit reached (fs.inotify.max_user_instances)"
    return f"file watching failed ({exc})"
