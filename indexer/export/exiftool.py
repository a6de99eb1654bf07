"""A small, safe wrapper around Phil Harvey's exiftool (Debian: libimage-exiftool-perl).

Why exiftool: it is the best-kept metadata writer there is; it edits JPEG, TIFF, PNG and WebP
without touching the pixel data, keeps every tag it does not change (unknown XMP namespaces
and darktable's history included) and escapes XML itself.

Arguments always go to exiftool as a list, never through a shell.  One persistent process
(`-stay_open True -@ -`) serves many files, because starting Perl costs ~0.1 s per call.  The
argument-file protocol is line based, so a command with an argument that cannot be written as
a plain line (a newline, surrounding white space, a leading `#`) runs in a one-shot process
instead; exiftool's `#[CSTR]` escape is not used because 12.x mangles `$` and `@` in it.

A killed moodindex (kill -9) must not leave exiftool behind: a `-stay_open` exiftool does not
exit when its stdin closes.  It dies with its parent as our pool workers do (indexer.lifeline:
PR_SET_PDEATHSIG on Linux; one thread owns an ExifTool).  The temp folder holding our exiftool
config, which a killed run cannot remove, is removed by the next run once it is STALE_AFTER_S old.
"""

from __future__ import annotations

import logging
import os
import re
import selectors
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from indexer.lifeline import preexec_die_with_parent
from indexer.media.tagstate import NS_MOODINDEX

log = logging.getLogger(__name__)

NAMESPACE_URI = NS_MOODINDEX
"""Our own XMP namespace; `moodindex:Written` records exactly which values we added (media.tagstate reads it)."""

# exiftool user-defined tags for our namespace (perl, loaded with -config).
_CONFIG = f"""
%Image::ExifTool::UserDefined = (
    'Image::ExifTool::XMP::Main' => {{
        moodindex => {{ SubDirectory => {{ TagTable => 'Image::ExifTool::UserDefined::moodindex' }} }},
    }},
);
%Image::ExifTool::UserDefined::moodindex = (
    GROUPS => {{ 0 => 'XMP', 1 => 'XMP-moodindex', 2 => 'Image' }},
    NAMESPACE => {{ 'moodindex' => '{NAMESPACE_URI}' }},
    WRITABLE => 'string',
    Written => {{ List => 'Bag' }},
);
1;
"""

CONFIG_DIR_PREFIX = "moodindex-exiftool-"
CONFIG_NAME = "moodindex.config"
STALE_AFTER_S = 3600  # a temp file or folder of ours this old belongs to no running command: a killed run's
_CONFIG_DIR_RE = re.compile(re.escape(CONFIG_DIR_PREFIX) + r"[a-z0-9_]{8}")  # tempfile's 8 random characters

INSTALL_HINT = "install exiftool (Debian/Ubuntu: apt-get install libimage-exiftool-perl) or set MOODINDEX_EXIFTOOL"
TIMEOUT_S = 120.0


class ExifToolError(RuntimeError):
    """exiftool is missing, died, or refused a file; the message says why."""


@dataclass(frozen=True)
class Result:
    stdout: str
    stderr: str

    @property
    def errors(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("Error")]

    @property
    def warnings(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("Warning")]


def find_exiftool() -> str:
    """The exiftool executable: $MOODINDEX_EXIFTOOL, else the one on PATH."""
    exe = os.environ.get("MOODINDEX_EXIFTOOL") or shutil.which("exiftool")
    if not exe:
        raise ExifToolError(f"exiftool not found; {INSTALL_HINT}")
    return exe


def sweep_config_dirs(tmp: Path | None = None, now: float | None = None) -> list[Path]:
    """Remove the config folders that killed runs left in the temp folder: only folders named like
    ours, owned by us, holding nothing but our config, and older than STALE_AFTER_S."""
    tmp = Path(tmp or tempfile.gettempdir())
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(tmp))
    except OSError:
        return removed
    for entry in entries:
        if not _CONFIG_DIR_RE.fullmatch(entry.name):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if (not entry.is_dir(follow_symlinks=False) or st.st_uid != os.geteuid()
                    or now - st.st_mtime < STALE_AFTER_S or not set(os.listdir(entry.path)) <= {CONFIG_NAME}):
                continue
            Path(entry.path, CONFIG_NAME).unlink(missing_ok=True)
            os.rmdir(entry.path)
            removed.append(Path(entry.path))
        except OSError:  # another run sweeping at the same time, or not ours to remove after all
            continue
    return removed


def _line_safe(arg: str) -> bool:
    return bool(arg) and arg == arg.strip() and not arg.startswith("#") and "\n" not in arg and "\r" not in arg


def _encode(arg: str) -> bytes:
    # File names are bytes on POSIX; surrogateescape round-trips names that are not UTF-8.
    return arg.encode("utf-8", "surrogateescape")


class ExifTool:
    """`with ExifTool() as et: et.execute([...])`; one process for the whole run."""

    def __init__(self, executable: str | None = None) -> None:
        self.executable = executable or find_exiftool()
        self._proc: subprocess.Popen[bytes] | None = None
        self._counter = 0
        for old in sweep_config_dirs():
            log.info("removed %s, left by a killed run", old)
        self._config_dir = tempfile.TemporaryDirectory(prefix=CONFIG_DIR_PREFIX)
        self.config = Path(self._config_dir.name) / CONFIG_NAME
        self.config.write_text(_CONFIG, encoding="utf-8")

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> ExifTool:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            try:
                self._proc = subprocess.Popen(
                    [self.executable, "-config", str(self.config), "-stay_open", "True", "-@", "-"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    preexec_fn=preexec_die_with_parent(),  # only prctl runs in the child
                )
            except OSError as exc:
                raise ExifToolError(f"cannot run {self.executable}: {exc.strerror or exc}; {INSTALL_HINT}") from exc
        return self._proc

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                assert proc.stdin is not None
                proc.stdin.write(b"-stay_open\nFalse\n")
                proc.stdin.flush()
                proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr) if proc else ():
            if stream:
                stream.close()
        self._config_dir.cleanup()

    # -- commands --------------------------------------------------------------------------
    def execute(self, args: list[str]) -> Result:
        """Run one exiftool command (options and file names, no shell) and return its output."""
        if all(_line_safe(a) for a in args):
            return self._execute_stay_open(args)
        return self._execute_once(args)

    def _execute_once(self, args: list[str]) -> Result:
        try:
            done = subprocess.run(
                [self.executable, "-config", str(self.config), *args],
                capture_output=True, timeout=TIMEOUT_S, check=False,
                preexec_fn=preexec_die_with_parent(),
            )
        except OSError as exc:
            raise ExifToolError(f"cannot run {self.executable}: {exc.strerror or exc}; {INSTALL_HINT}") from exc
        except subprocess.TimeoutExpired as exc:
            raise ExifToolError(f"exiftool timed out after {TIMEOUT_S:.0f} s") from exc
        return Result(done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace"))

    def _execute_stay_open(self, args: list[str]) -> Result:
        proc = self._start()
        assert proc.stdin and proc.stdout and proc.stderr
        self._counter += 1
        marker = f"{{ready{self._counter}}}"
        payload = b"".join(_encode(a) + b"\n" for a in args)
        payload += b"-echo4\n" + marker.encode() + b"\n" + f"-execute{self._counter}\n".encode()
        try:
            proc.stdin.write(payload)
            proc.stdin.flush()
        except OSError as exc:
            self.close()
            raise ExifToolError(f"exiftool stopped unexpectedly: {exc}") from exc
        out, err = self._read_until(proc, marker.encode())
        return Result(out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))

    def _read_until(self, proc: subprocess.Popen[bytes], marker: bytes) -> tuple[bytes, bytes]:
        """Read stdout and stderr until both end with the command's marker line."""
        assert proc.stdout and proc.stderr
        buffers = {proc.stdout: bytearray(), proc.stderr: bytearray()}
        done = {proc.stdout: False, proc.stderr: False}
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            sel.register(proc.stderr, selectors.EVENT_READ)
            while not all(done.values()):
                events = sel.select(timeout=TIMEOUT_S)
                if not events:
                    self.close()
                    raise ExifToolError(f"exiftool did not answer within {TIMEOUT_S:.0f} s")
                for key, _ in events:
                    stream = key.fileobj
                    chunk = os.read(stream.fileno(), 65536)  # type: ignore[union-attr]
                    if not chunk:
                        self.close()
                        raise ExifToolError("exiftool stopped unexpectedly")
                    buf = buffers[stream]  # type: ignore[index]
                    buf.extend(chunk)
                    if buf.endswith(marker + b"\n") and (len(buf) == len(marker) + 1
                                                         or buf[-len(marker) - 2:-len(marker) - 1] == b"\n"):
                        done[stream] = True  # type: ignore[index]
                        sel.unregister(stream)
        out = bytes(buffers[proc.stdout])[: -len(marker) - 1]
        err = bytes(buffers[proc.stderr])[: -len(marker) - 1]
        return out, err
