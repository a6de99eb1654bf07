"""The warm server: imports what the quick commands need once, then forks a child per call that
takes over the caller's terminal, environment and working folder and runs the ordinary click
command.  Started by `indexer.warm.client`; one per user and fingerprint (its log file is its
lock); exits after `MOODINDEX_WARM_IDLE_S` seconds without a call.

    python -m indexer.warm.server RUNTIME_DIR FINGERPRINT
"""

from __future__ import annotations

import fcntl
import importlib
import io
import os
import signal
import socket
import struct
import sys
import time
import traceback
from datetime import datetime
from pathlib import Path

from indexer.warm import protocol

#: Everything the warm commands import, loaded before the first call.  A test runs each command
#: and checks that it needs nothing more.
PRELOAD = (
    "indexer.bundled_models",
    "indexer.cli",
    "indexer.db.corrections",
    "indexer.db.location",
    "indexer.db.people",
    "indexer.db.photos",
    "indexer.db.read",
    "indexer.db.runs",
    "indexer.db.schema_version",
    "indexer.db.session",
    "indexer.domain",
    "indexer.paths",
    "indexer.query",
    "indexer.query.explain",
    "indexer.summary",
    "indexer.vision.identity",
    "sqlalchemy.dialects.sqlite",
    "sqlalchemy.orm",
)
#: Loaded when installed: the PostgreSQL driver (the `[postgres]` extra).
PRELOAD_IF_INSTALLED = ("sqlalchemy.dialects.postgresql", "psycopg")


def preload() -> None:
    for name in PRELOAD:
        importlib.import_module(name)
    for name in PRELOAD_IF_INSTALLED:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    from sqlalchemy.orm import configure_mappers

    configure_mappers()  # otherwise done, at a cost, by every child's first query


def serve(folder: Path, print_: str, idle_s: float) -> None:
    fd = os.open(protocol.log_path(folder, print_), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    log = open(fd, "a")  # noqa: SIM115 - held, and locked, for the server's life
    try:
        fcntl.flock(log, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another server for this code is already up
    log.truncate(0)
    path = protocol.socket_path(folder, print_)
    _note(log, protocol.started_line(os.getpid(), sys.executable, idle_s))
    preload()
    path.unlink(missing_ok=True)  # left by a server that was killed
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        listener.bind(str(path))
    finally:
        os.umask(old_umask)
    listener.listen(16)
    listener.settimeout(idle_s)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    _note(log, f"listening on {path}")
    bound = path.stat().st_ino
    try:
        while True:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                break
            conn.settimeout(None)
            if not _same_user(conn):
                _note(log, "refused a connection from another user")
                conn.close()
                continue
            pid = os.fork()
            if pid == 0:
                listener.close()
                _run_child(conn, log)  # never returns
            conn.close()
            _note(log, f"call handed to process {pid}")
    finally:
        try:
            if path.stat().st_ino == bound:
                path.unlink()
        except OSError:
            pass
        _note(log, "idle: exiting")


def _same_user(conn: socket.socket) -> bool:
    """The folder is private already; on Linux also ask the kernel who is calling."""
    if not hasattr(socket, "SO_PEERCRED"):
        return True
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == os.getuid()


def _run_child(conn: socket.socket, log: io.TextIOBase) -> None:
    code = 1
    try:
        request, fds = protocol.receive_request(conn)
        protocol.send_reply(conn, b"P", os.getpid())
        _take_over(request, fds)
        log.close()
        code = _run_command(request["argv"])
    except BaseException:  # noqa: BLE001 - a child must always answer and exit
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        try:
            protocol.send_reply(conn, b"X", code)
        except OSError:
            pass
        os._exit(code)


def _take_over(request: dict, fds: list[int]) -> None:
    """Become the caller: its terminal as fds 0-2, its environment, folder, umask and time zone,
    and the signal handling of a freshly started Python."""
    for target, fd in zip(protocol.STDIO_FDS, fds, strict=True):
        if fd != target:
            os.dup2(fd, target)
            os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    streams = request.get("streams") or {}
    sys.stdin = sys.__stdin__ = _text_stream(0, "r", streams.get("stdin"))
    sys.stdout = sys.__stdout__ = _text_stream(1, "w", streams.get("stdout"))
    sys.stderr = sys.__stderr__ = _text_stream(2, "w", streams.get("stderr"))


def _text_stream(fd: int, mode: str, encoding: list[str] | None) -> io.TextIOWrapper:
    """As Python would have opened it in the caller: line-buffered on a terminal (and always for
    stderr), the caller's encoding and error handler."""
    enc, errors = encoding or (None, None)
    line = fd == 2 or os.isatty(fd)
    return open(fd, mode, buffering=1 if line else -1, encoding=enc, errors=errors,  # noqa: SIM115
                closefd=False)


def _run_command(argv: list[str]) -> int:
    from indexer.cli import main as cli

    sys.argv = ["moodindex", *argv]
    try:
        cli(args=argv, prog_name="moodindex")
    except SystemExit as exc:
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code
        print(exc.code, file=sys.stderr)
        return 1
    return 0


def _note(log: io.TextIOBase, text: str) -> None:
    try:
        log.write(f"{datetime.now().isoformat(timespec='seconds')} {text}\n")
        log.flush()
    except (OSError, ValueError):
        pass


def main() -> None:
    folder, print_ = Path(sys.argv[1]), sys.argv[2]
    try:
        idle_s = float(os.environ.get(protocol.IDLE_ENV) or protocol.DEFAULT_IDLE_S)
    except ValueError:
        idle_s = protocol.DEFAULT_IDLE_S
    serve(folder, print_, idle_s)


if __name__ == "__main__":
    main()
