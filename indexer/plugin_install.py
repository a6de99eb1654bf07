"""Install the darktable and digiKam plugins that ship inside the package, pointed at this moodindex.

A darktable or digiKam started from the desktop does not see the PATH of the shell that installed
moodindex into a venv or with pipx, so each installed plugin carries the absolute path of the
`moodindex` executable that installed it, written into one marked line of the script:
- darktable: `local INSTALLED_MOODINDEX = "..."` (a Lua string literal, every unusual byte escaped);
- digiKam:   `installed_moodindex='...'` (POSIX single quotes).
Files are written atomically; running the command again updates them in place.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from indexer.config import data_dir
from indexer.fsutil import atomic_write

LUA_MARKER = re.compile(r'^local INSTALLED_MOODINDEX = "moodindex"$', re.MULTILINE)
SH_MARKER = re.compile(r"^installed_moodindex=moodindex$", re.MULTILINE)
DARKTABLE_MODULE = "contrib/moodindex"
REQUIRE_LINE = f'require "{DARKTABLE_MODULE}"'
_REQUIRED = re.compile(r"""^\s*require\s*\(?\s*["']contrib/moodindex["']""", re.MULTILINE)


class PluginInstallError(Exception):
    """The plugin cannot be installed; str() says why and what to do."""


@dataclass
class Installed:
    files: list[Path]
    steps: list[str] = field(default_factory=list)  # what is left for the user to do


def plugin_source(*parts: str) -> str:
    """A plugin file as shipped inside the package (`indexer.bundled_plugins`, from plugins/)."""
    return resources.files("indexer.bundled_plugins").joinpath(*parts).read_text(encoding="utf-8")


def moodindex_executable() -> Path:
    """The `moodindex` console script of this installation: beside this Python in a venv or a pipx
    venv, else the command that is running, else the one on PATH."""
    beside = Path(sys.executable).parent / "moodindex"  # not resolved: a venv's python is a symlink
    candidates = [beside]
    if Path(sys.argv[0]).name == "moodindex":
        candidates.append(Path(sys.argv[0]))
    if on_path := shutil.which("moodindex"):
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return Path(os.path.abspath(candidate))
    raise PluginInstallError("cannot find the moodindex executable of this installation; "
                             "give it with --executable PATH")


def lua_string(text: str) -> str:
    """A Lua string literal that reads back as exactly `text` (its UTF-8 bytes): quotes, backslashes,
    newlines and every byte outside printable ASCII are written as decimal escapes."""
    out = []
    for byte in text.encode("utf-8", "surrogateescape"):
        ch = chr(byte)
        out.append(ch if 0x20 <= byte < 0x7F and ch not in '"\\' else f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def _with_executable(source: str, marker: re.Pattern[str], line: str, what: str) -> str:
    if len(marker.findall(source)) != 1:
        raise PluginInstallError(f"the shipped {what} has no single line to write the moodindex path into")
    return marker.sub(lambda _m: line, source)


def darktable_config_dir() -> Path:
    """darktable's configuration folder: $XDG_CONFIG_HOME/darktable (~/.config/darktable)."""
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    if not os.path.isabs(base):  # the XDG spec: a relative value is ignored
        base = os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "darktable"


def _add_require(luarc: Path) -> bool:
    """Append the require line to luarc unless it is there; a luarc that is a link (dotfiles) is
    edited where it points.  True when luarc changed."""
    target = Path(os.path.realpath(luarc))
    try:
        text = target.read_text(encoding="utf-8") if target.exists() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise PluginInstallError(f"cannot read {luarc}: {exc}") from exc
    if _REQUIRED.search(text):
        return False
    mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
    prefix = text if not text or text.endswith("\n") else text + "\n"
    atomic_write(target, f"{prefix}{REQUIRE_LINE}  -- added by `moodindex plugins install darktable`\n", mode)
    return True


def install_darktable(config_dir: Path | None = None, executable: Path | None = None) -> Installed:
    """The Lua script into <darktable config>/lua/contrib/, luarc's require line, this moodindex's path."""
    config_dir = config_dir or darktable_config_dir()
    exe = Path(os.path.abspath(executable)) if executable else moodindex_executable()
    script = _with_executable(plugin_source("darktable", "moodindex.lua"), LUA_MARKER,
                              f"local INSTALLED_MOODINDEX = {lua_string(str(exe))}", "darktable script")
    dest = config_dir / "lua" / "contrib" / "moodindex.lua"
    luarc = config_dir / "luarc"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(dest, script, 0o644)
        added = _add_require(luarc)
    except OSError as exc:
        raise PluginInstallError(f"cannot install the darktable plugin: {exc.strerror or exc}") from exc
    steps = [f"it runs {exe}",
             "restart darktable: the moodindex panel is on the right of the lighttable, and "
             "'detect emotions' in the selected images module"]
    if not added:
        steps.insert(1, f"{luarc} already loads it")
    return Installed([dest, luarc] if added else [dest], steps)


def digikam_script_dir() -> Path:
    return data_dir() / "plugins" / "digikam"


def install_digikam(dest_dir: Path | None = None, executable: Path | None = None) -> Installed:
    """The Batch Queue Manager script into moodindex's data folder, with this moodindex's path."""
    dest_dir = dest_dir or digikam_script_dir()
    exe = Path(os.path.abspath(executable)) if executable else moodindex_executable()
    script = _with_executable(plugin_source("digikam", "moodindex-bqm.sh"), SH_MARKER,
                              f"installed_moodindex={shlex.quote(str(exe))}", "digiKam script")
    dest = dest_dir / "moodindex-bqm.sh"
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(dest, script, 0o755)
    except OSError as exc:
        raise PluginInstallError(f"cannot install the digiKam script: {exc.strerror or exc}") from exc
    steps = [
        "in digiKam: Tools > Batch Queue Manager, add the photos to a queue",
        "Base Tools > Custom Tools > User Shell Script; Output Image Type: Same as input",
        f'script text, one line: {shlex.quote(str(dest))} "$INPUT" "$OUTPUT"',
        f"run the queue: each output is a copy of its photo with Emotion tags embedded (it runs {exe})",
    ]
    return Installed([dest], steps)
