"""What the warm-start client and server agree on: which commands go through the server, where its
socket lives, how a request and the replies are framed, and the fingerprint that keeps a server
from answering for code other than the caller's.  Standard library only: the client imports it on
every call."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import struct
import sys
from pathlib import Path

#: Quick read-only commands worth a server.  Long or writing commands (index, watch, tag, ...) run
#: in the caller's own process: their start-up does not matter and they own signals and children.
WARM_COMMANDS = frozenset({"status", "query", "show", "list", "errors"})

#: "0" turns warm start off (the command then always runs in its own process).
SWITCH_ENV = "MOODINDEX_WARM"
#: Seconds an idle server waits for the next call before it exits.
IDLE_ENV = "MOODINDEX_WARM_IDLE_S"
DEFAULT_IDLE_S = 600.0

_GLOBAL_OPTIONS_WITH_VALUE = frozenset({"--db", "--config"})
_HEADER = struct.Struct("!I")  # length of the JSON request that follows the fds
_REPLY = struct.Struct("!ci")  # (kind, value): b"P" child pid, b"X" exit code
STDIO_FDS = (0, 1, 2)


def enabled(env: os._Environ[str] | dict[str, str] | None = None) -> bool:
    """Warm start needs fork and fd passing over Unix sockets (Linux, macOS, the BSDs)."""
    env = os.environ if env is None else env
    return (env.get(SWITCH_ENV, "1") != "0" and hasattr(os, "fork") and hasattr(socket, "AF_UNIX")
            and hasattr(socket, "send_fds"))


def command_name(args: list[str]) -> str | None:
    """The subcommand in `args` (the arguments after the program name), skipping the group's own
    options; None when there is none or when the group itself answers (--help, --version)."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in _GLOBAL_OPTIONS_WITH_VALUE:
            skip = True
        elif arg in ("--help", "-h", "--version", "--"):
            return None
        elif not arg.startswith("-"):
            return arg
    return None


def runtime_dir() -> Path | None:
    """A folder only this user can enter, for the socket: $XDG_RUNTIME_DIR/moodindex, else
    /tmp/moodindex-UID.  None (no warm start) when it cannot be made or is not private."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    folder = Path(base) / "moodindex" if base and os.path.isdir(base) else \
        Path(os.environ.get("TMPDIR") or "/tmp") / f"moodindex-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()
    except OSError:
        return None
    private = stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077
    return folder if private else None


def fingerprint() -> str:
    """Changes when this interpreter, moodindex's own files or any installed package change, so
    that a server started before an upgrade or an edit never answers for the new code (each
    fingerprint has its own socket; an outdated server just idles out)."""
    import indexer

    package = Path(indexer.__file__).resolve().parent
    digest = hashlib.sha256()
    digest.update(f"{sys.executable}\0{sys.version}\0{package}\0".encode())
    for folder, _dirs, files in sorted(os.walk(package)):
        for name in sorted(files):
            if name.endswith(".py"):
                info = os.stat(os.path.join(folder, name))
                digest.update(f"{name}\0{info.st_mtime_ns}\0{info.st_size}\0".encode())
    for entry in sys.path[1:]:  # [0] is the script's folder or the working directory
        try:
            digest.update(f"{entry}\0{os.stat(entry).st_mtime_ns}\0".encode())  # pip install touches it
        except OSError:
            digest.update(f"{entry}\0-\0".encode())
    return digest.hexdigest()[:16]


def socket_path(folder: Path, print_: str) -> Path:
    return folder / f"warm-{print_}.sock"


def log_path(folder: Path, print_: str) -> Path:
    """The server's log, also its lock: one server per fingerprint."""
    return folder / f"warm-{print_}.log"


def started_line(pid: int, python: str, idle_s: float) -> str:
    """The log line a server writes first: `server_pids` reads the pid back from it."""
    return f"process {pid} starting for {python}, idle timeout {idle_s:g} s"


def server_pids(folder: Path) -> list[int]:
    """Pids of the servers that logged into `folder` (to stop them, in tests and benchmarks)."""
    pids = []
    for log in folder.glob("warm-*.log"):
        try:
            lines = log.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            words = line.split()
            if len(words) > 3 and words[1] == "process" and words[3] == "starting" and words[2].isdigit():
                pids.append(int(words[2]))
    return pids


def send_request(sock: socket.socket, request: dict, fds: list[int]) -> None:
    body = json.dumps(request).encode("utf-8", "surrogateescape")
    socket.send_fds(sock, [_HEADER.pack(len(body))], fds)
    sock.sendall(body)


def receive_request(sock: socket.socket) -> tuple[dict, list[int]]:
    header, fds, _flags, _addr = socket.recv_fds(sock, _HEADER.size, len(STDIO_FDS))
    if len(header) != _HEADER.size or len(fds) != len(STDIO_FDS):
        for fd in fds:
            os.close(fd)
        raise ConnectionError("incomplete warm-start request")
    (length,) = _HEADER.unpack(header)
    return json.loads(_receive_exactly(sock, length).decode("utf-8", "surrogateescape")), fds


def send_reply(sock: socket.socket, kind: bytes, value: int) -> None:
    sock.sendall(_REPLY.pack(kind, value))


def receive_reply(sock: socket.socket) -> tuple[bytes, int] | None:
    """The next reply, or None when the server side closed the connection."""
    try:
        data = _receive_exactly(sock, _REPLY.size)
    except ConnectionError:
        return None
    return _REPLY.unpack(data)


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed")
        chunks += chunk
    return bytes(chunks)
