"""Read, merge and write our emotion tags in an XMP sidecar or inside the photo itself.

Merging rule: we only ever add or remove *our* values.  What we added is recorded in the same
XMP (`moodindex:Written`, entries like "lr:hierarchicalSubject=Emotion|Happy"), so re-tagging
after a model change removes exactly our old tags, `untag` removes exactly what we wrote, and a
value the user already had (even "Emotion|Happy") is never claimed or removed, and a value of ours
the user took out (in digiKam or darktable) is never put back (media.tagstate reads that removal
as a correction).  Everything else
in the file — other keywords, darktable's history, unknown namespaces — is left to exiftool,
which rewrites only the properties we name.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from indexer.export import tags as T
from indexer.export.exiftool import ExifTool, ExifToolError
from indexer.export.safety import (
    UnsafeTarget,
    check_target,
    commit,
    remove_quietly,
    sidecar_path,
    sweep_temp_files,
    temp_name,
)
from indexer.media.xmp import XMPError, read_sidecar

SIDECAR = "sidecar"
IN_FILE = "in-file"
IN_FILE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".tif", ".tiff", ".png", ".webp"}
IPTC_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".tif", ".tiff"}

# exiftool tag -> the name we record (the XMP property as the programs' docs spell it)
RECORD_NAMES = {
    T.HIERARCHICAL: "lr:hierarchicalSubject",
    T.TAGSLIST: "digiKam:TagsList",
    T.LASTKEYWORD: "MicrosoftPhoto:LastKeywordXMP",
    T.SUBJECT: "dc:subject",
    T.IPTC_KEYWORDS: "IPTC:Keywords",
}
_BY_RECORD = {v: k for k, v in RECORD_NAMES.items()}
CREATED_SIDECAR = "sidecar=created"

# outcome statuses
WRITTEN = "written"
UNCHANGED = "unchanged"
WOULD_WRITE = "would-write"
REMOVED = "removed"          # a sidecar we had created and that held nothing else was deleted
FAILED = "failed"
REFUSED = "refused"


@dataclass
class Outcome:
    photo: Path
    target: Path
    status: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status not in (FAILED, REFUSED)

    @property
    def rewrote_photo(self) -> bool:
        """The photo file itself was rewritten (in-file tags added or removed): same pixels, new
        size, mtime and hash, which the index must hear about."""
        return self.status in (WRITTEN, REMOVED) and self.target == self.photo


@dataclass
class Plan:
    """What to change in one file: per exiftool tag, values to add and to remove."""

    add: dict[str, list[str]]
    remove: dict[str, list[str]]
    record_add: list[str]
    record_remove: list[str]

    @property
    def changes(self) -> bool:
        return any(self.add.values()) or any(self.remove.values()) or bool(self.record_add or self.record_remove)

    def describe(self) -> tuple[list[str], list[str]]:
        added = [f"{RECORD_NAMES[k]}={v}" for k, vs in self.add.items() for v in vs]
        removed = [f"{RECORD_NAMES[k]}={v}" for k, vs in self.remove.items() for v in vs]
        return added, removed


class MalformedXMP(ValueError):
    """An existing sidecar that is not well-formed XMP; we leave it untouched."""


def mode_for(photo: Path, requested: str) -> str:
    """RAW and every other format exiftool should not rewrite get a sidecar, whatever was asked."""
    if requested == IN_FILE and photo.suffix.lower() in IN_FILE_SUFFIXES:
        return IN_FILE
    return SIDECAR


def check_wellformed(path: Path) -> None:
    """Parse the sidecar ourselves first, with the XMP reader `media` uses (bounded, no DOCTYPE or
    entities): exiftool may accept junk, and we must not rewrite it."""
    try:
        read_sidecar(path)
    except XMPError as exc:
        raise MalformedXMP(f"{path}: XMP sidecar left untouched: {exc}") from exc


def _arg(path: Path) -> str:
    """File names go to exiftool absolute, so none can start with "-" and pass for an option
    (exiftool's "--" cannot be used: in -stay_open mode it would swallow -execute)."""
    return os.path.abspath(path)


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def read_values(et: ExifTool, path: Path, fields: tuple[str, ...]) -> tuple[dict[str, list[str]], set[str]]:
    """Current values of `fields` and our record in `path`, read with exiftool."""
    args = ["-j", "-G1", "-charset", "UTF8", *[f"-{f}" for f in fields], f"-{T.WRITTEN}", _arg(path)]
    res = et.execute(args)
    if res.errors:
        raise ExifToolError(f"{path}: {'; '.join(res.errors)}")
    try:
        data = json.loads(res.stdout or "[{}]")[0]
    except (ValueError, IndexError) as exc:
        raise ExifToolError(f"{path}: unreadable exiftool output ({exc})") from exc
    values = {f: _as_list(data.get(f)) for f in fields}
    return values, set(_as_list(data.get(T.WRITTEN)))


def make_plan(current: dict[str, list[str]], record: set[str], desired: dict[str, list[str]]) -> Plan:
    """Pure merge logic (see the module docstring)."""
    ours_before: dict[str, set[str]] = {}
    for entry in record:
        name, sep, value = entry.partition("=")
        if sep and name in _BY_RECORD:
            ours_before.setdefault(_BY_RECORD[name], set()).add(value)
    add: dict[str, list[str]] = {}
    remove: dict[str, list[str]] = {}
    record_after: set[str] = {e for e in record if e == CREATED_SIDECAR}
    for tag in [*desired, *[t for t in ours_before if t not in desired]]:
        cur = current.get(tag, [])
        want = desired.get(tag, [])
        mine = ours_before.get(tag, set())
        remove[tag] = sorted(v for v in mine if v in cur and v not in want)
        # ours but gone: the user removed it (digiKam, darktable); never put back, and its record
        # stays while we would want it, so the next `index` reads the removal as a correction
        add[tag] = [v for v in want if v not in cur and v not in mine]
        record_after |= {f"{RECORD_NAMES[tag]}={v}" for v in want if v in mine or v not in cur}
    return Plan(add=add, remove=remove,
                record_add=sorted(record_after - record), record_remove=sorted(record - record_after))


def _write_args(plan: Plan) -> list[str]:
    args: list[str] = []
    for tag, values in plan.remove.items():
        args += [f"-{tag}-={v}" for v in values]
    for tag, values in plan.add.items():
        args += [f"-{tag}+={v}" for v in values]
    args += [f"-{T.WRITTEN}-={v}" for v in plan.record_remove]
    args += [f"-{T.WRITTEN}+={v}" for v in plan.record_add]
    return args


def _only_toolkit_left(et: ExifTool, path: Path) -> bool:
    res = et.execute(["-j", "-G1", "-XMP:all", _arg(path)])
    try:
        data = json.loads(res.stdout or "[{}]")[0]
    except (ValueError, IndexError):
        return False
    return not [k for k in data if k not in ("SourceFile", "XMP-x:XMPToolkit", T.WRITTEN)]


def _apply(et: ExifTool, photo: Path, root: Path | str | None, emotions: list[str], *, mode: str,
           prefix: str, dry_run: bool) -> Outcome:
    mode = mode_for(photo, mode)
    target = photo if mode == IN_FILE else sidecar_path(photo)
    iptc = mode == IN_FILE and photo.suffix.lower() in IPTC_SUFFIXES
    try:
        desired = T.desired_values(emotions, prefix, iptc=iptc)
        check_target(photo, root)
        check_target(target, root)
        exists = target.exists()
        if mode == IN_FILE and not exists:
            return Outcome(photo, target, FAILED, message=f"{photo}: file not found")
        if not exists and not any(desired.values()):
            return Outcome(photo, target, UNCHANGED)
        if mode == SIDECAR and exists:
            check_wellformed(target)
        fields = tuple(desired) if iptc else T.XMP_FIELDS
        if exists:
            current, record = read_values(et, target, fields)
        else:
            current, record = {f: [] for f in fields}, set()
        plan = make_plan(current, record, desired)
        if not exists:
            plan.record_add = sorted({*plan.record_add, CREATED_SIDECAR})
        added, removed = plan.describe()
        if not plan.changes:
            return Outcome(photo, target, UNCHANGED)
        if dry_run:
            return Outcome(photo, target, WOULD_WRITE, added, removed)
        return _write(et, photo, target, exists, plan, current, added, removed, record)
    except (UnsafeTarget, MalformedXMP) as exc:
        return Outcome(photo, target, REFUSED, message=str(exc))
    except T.TagError as exc:
        return Outcome(photo, target, FAILED, message=str(exc))
    except (ExifToolError, OSError) as exc:
        msg = str(exc) if isinstance(exc, ExifToolError) else f"{target}: {exc.strerror or exc}"
        return Outcome(photo, target, FAILED, message=msg)


def apply(et: ExifTool, photo: Path, root: Path | str | None, emotions: list[str], *, mode: str = SIDECAR,
          prefix: str = T.DEFAULT_PREFIX, dry_run: bool = False) -> Outcome:
    """Make `photo`'s sidecar (or the photo itself) carry exactly our tags for `emotions`
    (an empty list removes ours).  Never raises for a per-file problem: the Outcome says.

    A format this exiftool cannot rewrite gets a sidecar instead, and the Outcome's message says so."""
    outcome = _apply(et, photo, root, emotions, mode=mode, prefix=prefix, dry_run=dry_run)
    if outcome.status == FAILED and mode_for(photo, mode) == IN_FILE and "Can't write" in outcome.message:
        fallback = _apply(et, photo, root, emotions, mode=SIDECAR, prefix=prefix, dry_run=dry_run)
        note = f"this exiftool cannot write {photo.suffix} files; used the sidecar instead"
        fallback.message = f"{fallback.message}; {note}" if fallback.message else note
        return fallback
    return outcome


def _write(et: ExifTool, photo: Path, target: Path, exists: bool, plan: Plan, current: dict[str, list[str]],
           added: list[str], removed: list[str], record: set[str]) -> Outcome:
    before = os.lstat(target) if exists else None
    mode = (before.st_mode & 0o7777) if before else (os.stat(photo).st_mode & 0o666)
    sweep_temp_files(target.parent)  # what a killed run left here
    tmp = temp_name(target)
    try:
        args = _write_args(plan)
        if exists:
            # edit a byte-for-byte copy in place: exiftool's `-o NEW` cannot create some formats
            # (WebP: "Can't write RIFF files" in 12.57) that it rewrites in place without trouble
            shutil.copyfile(target, tmp)
            args += ["-overwrite_original", _arg(tmp)]
        else:
            args += [_arg(tmp)]
        res = et.execute(args)
        if res.errors or not tmp.exists():
            detail = "; ".join(res.errors) or res.stderr.strip() or "no output file"
            raise ExifToolError(f"{target}: exiftool could not write it: {detail}")
        _verify(et, tmp, plan, current)
        if (exists and CREATED_SIDECAR in record and target != photo
                and not any(v for vs in plan.add.values() for v in vs) and _only_toolkit_left(et, tmp)):
            # untag of a sidecar we created that now holds nothing: remove it rather than leave a shell
            remove_quietly(tmp)
            os.unlink(target)
            return Outcome(photo, target, REMOVED, added, removed)
        commit(tmp, target, mode, before)
        return Outcome(photo, target, WRITTEN, added, removed)
    except UnsafeTarget as exc:
        return Outcome(photo, target, REFUSED, message=str(exc))
    finally:
        remove_quietly(tmp)


def _verify(et: ExifTool, tmp: Path, plan: Plan, before: dict[str, list[str]]) -> None:
    """Read the new file back: every value we added is there, every one we removed is gone,
    and nothing else in our fields changed."""
    fields = tuple(before)
    after, _ = read_values(et, tmp, fields)
    for tag in fields:
        expected = [v for v in before[tag] if v not in plan.remove.get(tag, [])] + plan.add.get(tag, [])
        if sorted(after.get(tag, [])) != sorted(expected):
            raise ExifToolError(f"{tmp}: read-back of {tag} gave {after.get(tag)}, expected {expected}; not written")
