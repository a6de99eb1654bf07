"""The one rule for "is this path under that folder", the one way paths are normalised, and the
one text form of a name that is not UTF-8 (stored, shown and put in JSON; see escape_path).

Paths are compared as strings, by whole components: /a/bc is not under /a/b.  Every layer that
asks (the scan, the watcher, the export safety checks, the SQL range over `photos.path`) uses
these, so they can never disagree about what a root contains."""

from __future__ import annotations

import codecs
import os
from pathlib import Path


def normalise_path(path: str | Path) -> str:
    """Absolute, user-expanded, symlinks kept (the path the user knows)."""
    return os.path.normpath(os.path.abspath(os.path.expanduser(str(path))))


def stat_or_none(path: str) -> os.stat_result | None:
    """os.stat, or None for a path that is gone or unreadable (a race with a delete is normal)."""
    try:
        return os.stat(path)
    except OSError:
        return None


def folder_prefix(folder: str) -> str:
    """What every path strictly below `folder` starts with."""
    return folder.rstrip("/") + "/"


def is_under(path: str, folder: str, *, strict: bool = False) -> bool:
    """`path` is `folder` itself (unless `strict`) or somewhere below it."""
    if path == folder:
        return not strict
    return path.startswith(folder_prefix(folder))


# -- names that are not UTF-8 ------------------------------------------------------------------
# On POSIX a file name is bytes.  Python hands us those that are not valid UTF-8 with each bad
# byte as a lone surrogate (U+DC80..U+DCFF, PEP 383 "surrogateescape"), which neither SQLite's
# driver, PostgreSQL's `text`, a terminal nor JSON can take.  THE one text form of a path, used
# to store it (photos.path and photos.root, see db.models.PathText) and to show it, is:
#
#     each byte that is not UTF-8  ->  \xNN (two lower-case hex digits)
#     a backslash                   ->  \\
#     every other character         ->  itself
#
# It is reversible (`unescape_path`), maps '/' to '/' and is a prefix code, so "is below this
# folder" is the same question on the escaped text (the SQL range in db.photos.under) as on the
# name.  Names without a backslash or a bad byte (nearly all) are unchanged.  JSON output gives
# the escaped form in "path" and, for such names only, the exact bytes in "path_bytes_base64".

def escape_path(path: str) -> str:
    """The stored and shown text of `path` (see above); plain names come back unchanged."""
    if "\\" not in path and (path.isascii() or not _has_surrogate(path)):
        return path
    out = []
    for ch in path:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:  # not from surrogateescape: no byte to give back; keep it visible
            out.append(f"\\x{{{code:04x}}}")
        else:
            out.append(ch)
    return "".join(out)


def unescape_path(text: str) -> str:
    """`escape_path` undone: the name as os functions take it (surrogateescape'd str)."""
    if "\\" not in text:
        return text
    out = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and text.startswith("\\\\", i):
            out.append("\\")
            i += 2
        elif text.startswith("\\x", i) and _is_hex(text[i + 2:i + 4]):
            out.append(chr(0xDC00 + int(text[i + 2:i + 4], 16)))
            i += 4
        else:  # not written by escape_path (hand-made text): kept as it is
            out.append(ch)
            i += 1
    return "".join(out)


def display_path(path: str | Path) -> str:
    """How a path is printed for people: the escaped text (never raises on a terminal)."""
    return escape_path(str(path))


def path_needs_escape(path: str) -> bool:
    return escape_path(path) != path


def path_bytes(path: str | Path) -> bytes:
    """The name's exact bytes (for `--format paths`, NUL-separated lists and JSON)."""
    try:
        return os.fsencode(str(path))
    except UnicodeEncodeError:  # a surrogate no os call gave us: its UTF-8-like bytes
        return str(path).encode("utf-8", "surrogatepass")


def path_json(path: str, key: str = "path") -> dict[str, str]:
    """A JSON record's path field(s): {key: escaped text}, plus {key_bytes_base64: exact bytes}
    when the escaped text is not the name itself."""
    import base64

    shown = escape_path(path)
    if shown == path:
        return {key: path}
    return {key: shown, f"{key}_bytes_base64": base64.b64encode(path_bytes(path)).decode("ascii")}


ESCAPE_ERRORS = "moodindex-escape"


def _escape_unencodable(exc: UnicodeError) -> tuple[str, int]:
    """Codec error handler for our stdout/stderr: a byte that is not UTF-8 is written `\\xNN`, as
    `escape_path` writes it, in any message that quotes a name (a log line, an OSError)."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    bad = exc.object[exc.start:exc.end]
    return escape_path(bad), exc.end  # only the unencodable characters: no backslash among them


codecs.register_error(ESCAPE_ERRORS, _escape_unencodable)


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _is_hex(two: str) -> bool:
    return len(two) == 2 and all(c in "0123456789abcdef" for c in two)
