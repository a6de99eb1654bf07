"""The `moodindex` entry point.  A quick read command is handed to the warm server when one runs
for this exact code (see `indexer.warm`); otherwise the command runs here, as it always did, and a
quick one then starts the server for the calls that follow.  Anything unexpected on the warm path
falls back to running here: the warm start may make a call faster, never make it fail."""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path

from indexer.warm import protocol

KILLED_EXIT = 1


def main() -> None:
    args = sys.argv[1:]
    warm = protocol.command_name(args) in protocol.WARM_COMMANDS and protocol.enabled()
    folder = protocol.runtime_dir() if warm else None
    if folder is None:
        run_here(args)
        return
    print_ = protocol.fingerprint()
    code = run_on_server(protocol.socket_path(folder, print_), args)
    if code is not None:
        sys.exit(code)
    try:
        run_here(args)
    finally:
        start_server(folder, print_)


def run_here(args: list[str]) -> None:
    from indexer.cli import main as cli

    cli(args=args, prog_name="moodindex")


def run_on_server(path: Path, args: list[str]) -> int | None:
    """The command's exit code, or None when no server took it (then nothing has run)."""
    try:
        cwd = os.getcwd()
    except OSError:  # the working folder was deleted: let the command say so itself
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    forwarder = _SignalForwarder()  # before connecting: a Ctrl-C from now on is never lost
    try:
        sock.connect(str(path))
        with _stdio_fds() as fds:
            protocol.send_request(sock, _request(args, cwd), fds)
        code = _wait_for_exit(sock, forwarder)
    except OSError:
        code = None
    finally:
        sock.close()
        forwarder.restore()
    if code is None and forwarder.pending:  # interrupted before any command started
        print("moodindex: interrupted", file=sys.stderr)
        return 130
    return code


def _request(args: list[str], cwd: str) -> dict:
    umask = os.umask(0o077)
    os.umask(umask)
    streams = {name: [getattr(sys, name).encoding, getattr(sys, name).errors] if getattr(sys, name) else None
               for name in ("stdin", "stdout", "stderr")}
    return {"argv": args, "cwd": cwd, "env": dict(os.environ), "umask": umask, "streams": streams}


class _stdio_fds:
    """Our fds 0-2 to pass on; /dev/null in place of any that is closed."""

    def __enter__(self) -> list[int]:
        self._opened: list[int] = []
        fds = []
        for fd in protocol.STDIO_FDS:
            try:
                os.fstat(fd)
                fds.append(fd)
            except OSError:
                fds.append(os.open(os.devnull, os.O_RDWR))
                self._opened.append(fds[-1])
        return fds

    def __exit__(self, *exc: object) -> None:
        for fd in self._opened:
            os.close(fd)


class _SignalForwarder:
    """Ctrl-C and kill reach this process (it is the one in the terminal's foreground): pass them
    on to the child that runs the command, also those that come before its pid is known."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.child = 0
        self.pending: list[int] = []
        self._previous = {signum: signal.signal(signum, self._forward) for signum in self.SIGNALS}

    def _forward(self, signum: int, _frame: object) -> None:
        if self.child:
            self._kill(signum)
        else:
            self.pending.append(signum)

    def started(self, child: int) -> None:
        self.child = child
        while self.pending:
            self._kill(self.pending.pop(0))

    def _kill(self, signum: int) -> None:
        try:
            os.kill(self.child, signum)
        except ProcessLookupError:
            pass

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def _wait_for_exit(sock: socket.socket, forwarder: _SignalForwarder) -> int | None:
    """The exit code the child reports; None if the server closed without starting one."""
    while (reply := protocol.receive_reply(sock)) is not None:
        kind, value = reply
        if kind == b"P":
            forwarder.started(value)
        elif kind == b"X":
            return value
    if not forwarder.child:
        return None  # the server went away before starting anything: run it here
    print("moodindex: the command's process ended without an exit status (killed?)", file=sys.stderr)
    return KILLED_EXIT


def start_server(folder: Path, print_: str) -> None:
    """In the background, in its own session, outliving this process; it exits by itself when idle."""
    import subprocess

    import indexer

    package_parent = str(Path(indexer.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    try:
        subprocess.Popen([sys.executable, "-m", "indexer.warm.server", str(folder), print_], env=env, cwd="/",
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True, close_fds=True)
    except OSError:
        pass
