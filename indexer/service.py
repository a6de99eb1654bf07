"""The systemd user unit that runs `moodindex watch` in the background.

Why these settings:
- ExecStart runs this very interpreter (`sys.executable -m indexer`, the venv's path kept
  as is, not resolved), so the service uses the installation that wrote it, whatever PATH
  the user manager has; every word is quoted per systemd.syntax(7) (spaces, quotes,
  backslashes, `%` specifiers and `$` variables in paths stay literal).
- The config file and index are passed explicitly: the service sees the same ones as the
  shell that installed it, even with a custom --config/--db or XDG_CONFIG_HOME.
- KillMode=mixed: SIGTERM goes to the watcher only, which finishes the current photo and
  stops its own workers (exit 0); whatever is left gets SIGKILL after TimeoutStopSec.
- Restart=on-failure, but not for usage errors (exit 2: no roots, bad config) that a
  restart cannot fix.  Nice and idle I/O keep it out of the user's way.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from indexer.fsutil import atomic_write

UNIT_NAME = "moodindex-watch.service"
ENABLE_COMMAND = f"systemctl --user daemon-reload && systemctl --user enable --now {UNIT_NAME}"
STOP_COMMAND = f"systemctl --user stop {UNIT_NAME}; systemctl --user daemon-reload"
ENV = "/usr/bin/env"
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@+=:,./-")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\a": "\\a", "\b": "\\b",
            "\f": "\\f", "\v": "\\v"}


class ServiceError(RuntimeError):
    """The unit cannot be written or removed; the message says why."""


def user_unit_dir(env: dict[str, str] | None = None) -> Path:
    """$XDG_CONFIG_HOME/systemd/user (default ~/.config/systemd/user): where systemd looks for user units."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or ""
    if not os.path.isabs(base):  # the XDG spec: a relative value is invalid and ignored
        base = os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "systemd" / "user"


def unit_path(env: dict[str, str] | None = None) -> Path:
    return user_unit_dir(env) / UNIT_NAME


def launcher() -> list[str]:
    """How to start this installation of moodindex, independent of PATH."""
    return [os.path.abspath(sys.executable), "-m", "indexer"]


def quote(word: str, executable: bool = False) -> str:
    """One command-line word for ExecStart=, read back by systemd exactly as `word`.

    The executable (first word) differs: systemd expands no variables in it, and refuses
    quotes, backslashes and control characters in it altogether (ServiceError)."""
    try:
        word.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ServiceError(f"{word!r}: not valid UTF-8, which a unit file cannot hold; rename it") from exc
    if executable and any(c in "\\\"'" or ord(c) < 0x20 or ord(c) == 0x7F for c in word):
        raise ServiceError(f"{word!r}: systemd refuses this executable name")
    if word and all(c in _SAFE for c in word):
        return word
    out = []
    for c in word:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif c == "%":
            out.append("%%")      # specifiers are expanded before unquoting
        elif c == "$" and not executable:
            out.append("$$")      # so are environment variables, in arguments
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def unit_text(argv: list[str], config_file: Path, db: Path | str) -> str:
    """The unit: `ARGV --config CONFIG --db DB watch`, roots read from CONFIG at every start.
    A server URL goes in as it is, but never one with a password: a unit file is no place for it
    (libpq reads ~/.pgpass or PGPASSWORD instead)."""
    config = os.path.abspath(os.path.expanduser(str(config_file)))
    from indexer.db.location import is_server, secret_of

    if is_server(db):
        if secret_of(db):
            raise ServiceError("the database URL holds a password, which a unit file would keep in plain "
                               "text: drop it from the URL and put it in ~/.pgpass (libpq reads it there)")
        database = str(db)
    else:
        database = os.path.abspath(os.path.expanduser(str(db)))
    command = [*argv, "--config", config, "--db", database, "watch"]
    try:
        first = quote(command[0], executable=True)
    except ServiceError:  # e.g. a quote in the venv's path: let env(1) start it, as an argument
        first, command = ENV, command
    else:
        command = command[1:]
    exec_start = " ".join([first, *(quote(w) for w in command)])
    return f"""\
# Written by `moodindex service install`; remove with `moodindex service uninstall`.
# The folders watched are the roots in the config file named below: edit it, then
# `systemctl --user restart {UNIT_NAME}`.
[Unit]
Description=moodindex: keep the photo emotion index in step with the photo folders

[Service]
Type=simple
ExecStart={exec_start}
Restart=on-failure
RestartSec=10
RestartPreventExitStatus=2
KillMode=mixed
KillSignal=SIGTERM
TimeoutStopSec=60
Nice=10
IOSchedulingClass=idle

[Install]
WantedBy=default.target
"""


def install(text: str, path: Path) -> bool:
    """Write the unit atomically (temp + fsync + rename); False when it was already identical."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text, mode=0o644)
    except OSError as exc:
        raise ServiceError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return True


def uninstall(path: Path) -> list[Path]:
    """Remove the unit and the `*.wants/` links `systemctl enable` made to it; returns what was removed."""
    removed: list[Path] = []
    try:
        for wants in sorted(path.parent.glob("*.wants")):
            link = wants / path.name
            if link.is_symlink():
                link.unlink()
                removed.append(link)
        if path.exists() or path.is_symlink():
            path.unlink()
            removed.append(path)
    except OSError as exc:
        raise ServiceError(f"cannot remove {exc.filename or path}: {exc.strerror or exc}") from exc
    return removed
