"""Find the photos under a root: supported extensions, no hidden files or folders, nothing
a `.moodignore` excludes (gitignore syntax, applying to its folder and below, like
.gitignore), symlinked folders followed once (loops cut), unreadable folders reported."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from indexer.media.formats import SUPPORTED_EXTENSIONS

log = logging.getLogger(__name__)
IGNORE_FILE = ".moodignore"


@dataclass
class WalkProblems:
    """Folders and entries that could not be read, with the reason (for `errors`)."""

    items: list[tuple[str, str]] = field(default_factory=list)

    def add(self, path: str, reason: str) -> None:
        log.warning("%s: %s", path, reason)
        self.items.append((path, reason))


def is_photo_name(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in SUPPORTED_EXTENSIONS


def is_sidecar_name(name: str) -> bool:
    """An XMP sidecar (`photo.jpg.xmp`, `photo.xmp`): not indexed itself, but its photo's names and
    tags are read again when it changes."""
    return name.lower().endswith(".xmp") and not name.startswith(".")


def _load_ignore(directory: str, problems: WalkProblems) -> pathspec.GitIgnoreSpec | None:
    path = os.path.join(directory, IGNORE_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            return pathspec.GitIgnoreSpec.from_lines(f)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        problems.add(path, f"unreadable ignore file: {exc}")
        return None


def walk_photos(root: str, problems: WalkProblems) -> Iterator[tuple[str, os.stat_result]]:
    """Yield (absolute path, stat) for every photo below `root` (a folder)."""
    visited: set[tuple[int, int]] = set()
    # stack of (directory, [(ignore base dir, spec), ...] in force there)
    stack: list[tuple[str, list[tuple[str, pathspec.GitIgnoreSpec]]]] = [(root, [])]
    while stack:
        directory, specs = stack.pop()
        try:
            st = os.stat(directory)
        except OSError as exc:
            problems.add(directory, f"unreadable folder: {exc.strerror or exc}")
            continue
        key = (st.st_dev, st.st_ino)
        if key in visited:
            problems.add(directory, "symlink loop or folder linked twice: skipped")
            continue
        visited.add(key)
        spec = _load_ignore(directory, problems)
        if spec is not None:
            specs = [*specs, (directory, spec)]
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError as exc:
            problems.add(directory, f"unreadable folder: {exc.strerror or exc}")
            continue
        subdirs = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()  # follows symlinks
            except OSError as exc:
                problems.add(entry.path, f"unreadable: {exc.strerror or exc}")
                continue
            if _ignored(entry.path, is_dir, specs):
                continue
            if is_dir:
                subdirs.append(entry.path)
            elif is_photo_name(entry.name):
                try:
                    yield entry.path, entry.stat()
                except OSError as exc:  # dangling or looping symlink, vanished meanwhile
                    problems.add(entry.path, f"unreadable: {exc.strerror or exc}")
        stack.extend((d, specs) for d in sorted(subdirs, reverse=True))


def _ignored(path: str, is_dir: bool, specs: list[tuple[str, pathspec.GitIgnoreSpec]]) -> bool:
    for base, spec in specs:
        rel = Path(os.path.relpath(path, base)).as_posix() + ("/" if is_dir else "")
        if spec.match_file(rel):
            return True
    return False


def _parts_below(path: str, root: str) -> list[str] | None:
    """The components of `path` below `root`, [] for the root itself, None when outside it."""
    rel = os.path.relpath(path, root)
    if rel == ".":
        return []
    parts = rel.split(os.sep)
    return None if parts[0] == ".." else parts


def hidden_or_outside(path: str, root: str) -> bool:
    """The cheap half of `excluded`: outside `root`, or a hidden file or folder on the way (no file reads)."""
    parts = _parts_below(path, root)
    return parts is None or any(p.startswith(".") for p in parts)


def may_be_indexed(path: str, root: str) -> bool:
    """A photo's name, below `root`, not hidden: what a file event must be to be worth waiting for
    (`.moodignore` is checked by `excluded` when the file is due)."""
    return is_photo_name(os.path.basename(path)) and not hidden_or_outside(path, root)


def excluded(path: str, root: str, is_dir: bool = False) -> bool:
    """True when a walk of `root` would skip `path` (hidden, `.moodignore`d, or not below `root`).

    The watcher's check for one event path, so that live events and `index` agree on what is indexed;
    whether the name is a photo's is `is_photo_name`'s business."""
    if hidden_or_outside(path, root):
        return True
    parts = _parts_below(path, root) or []
    problems = WalkProblems()
    specs: list = []
    directory = root
    for i, part in enumerate(parts):
        spec = _load_ignore(directory, problems)
        if spec is not None:
            specs.append((directory, spec))
        directory = os.path.join(directory, part)
        if _ignored(directory, is_dir or i < len(parts) - 1, specs):
            return True
    return False
