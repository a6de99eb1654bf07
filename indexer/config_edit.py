"""Changing the `roots` setting in the TOML config file for `moodindex roots add|remove`, so nobody
has to edit TOML by hand: the rest of the file (comments, other settings, their layout) is kept as
it was, only the `roots = ...` assignment is rewritten, and the file is replaced atomically.

No TOML writer is needed: the current value is read with tomllib, the text that assigns it is
found (the `roots =` line and as many following lines as its value spans), and the new file is
parsed again before it replaces the old one; anything unexpected is refused, never half-written."""

from __future__ import annotations

import re
import stat
from pathlib import Path

from indexer.config import ConfigError, read_config, tomllib
from indexer.fsutil import atomic_write

_ROOTS_LINE = re.compile(r"^\s*(roots|\"roots\"|'roots')\s*=")


def toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def render_roots(roots: list[str]) -> str:
    if not roots:
        return "roots = []\n"
    return "roots = [\n" + "".join(f"    {toml_string(r)},\n" for r in roots) + "]\n"


def _roots_span(lines: list[str], current: object) -> tuple[int, int] | None:
    """(first, end) line indexes of the `roots = ...` assignment, or None when the file has none."""
    for first, line in enumerate(lines):
        if not _ROOTS_LINE.match(line):
            continue
        for end in range(first + 1, len(lines) + 1):
            try:
                if tomllib.loads("".join(lines[first:end])).get("roots") == current:
                    return first, end
            except tomllib.TOMLDecodeError:
                continue
        break
    return None


def configured_roots(path: Path) -> list[str]:
    """The roots as written in the file (not expanded); [] when the file or the key is absent."""
    if not path.exists():
        return []
    value = read_config(path).get("roots", [])
    return [value] if isinstance(value, str) else [str(v) for v in value]


def write_roots(path: Path, roots: list[str]) -> None:
    """Set `roots` in the config file at `path` (created if missing), keeping everything else."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    before = read_config(path) if path.exists() else {}
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    if "roots" in before:
        span = _roots_span(lines, before["roots"])
        if span is None:
            raise ConfigError(f"{path}: cannot find where `roots` is set (a dotted key or table?); "
                              "edit it by hand")
        lines[span[0]:span[1]] = [render_roots(roots)]
    else:
        lines.append(render_roots(roots))
    new_text = "".join(lines)
    try:
        after = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as exc:  # pragma: no cover - render_roots writes valid TOML
        raise ConfigError(f"{path}: the edited file would not be valid TOML ({exc}); left unchanged") from exc
    expected = {**before, "roots": roots}
    if after != expected:
        raise ConfigError(f"{path}: editing `roots` would change other settings; left unchanged")
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, new_text, mode=mode)


def same_root(a: str, b: str) -> bool:
    """Two spellings of one folder (`~/Pictures` and `/home/me/Pictures/`)."""
    from indexer.paths import normalise_path

    return normalise_path(a) == normalise_path(b)



