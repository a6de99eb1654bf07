"""Write emotion tags straight into digiKam's own SQLite database (digikam4.db).

digiKam keeps tags in `Tags` (id, pid, name; top level has pid 0), the closure table `TagsTree`
(kept by digiKam's `insert_tagstree` trigger; we add the rows ourselves if a database lacks it)
and `ImageTags` (imageid, tagid).  Images are found by album root + `Albums.relativePath` +
`Images.name`.  Which assignments are ours is recorded in digiKam's `ImageTagProperties` with
property "moodindex", so a re-sync replaces only our old tags and `--remove` takes back exactly
what we added; tags the user set by hand are never touched.

People: the faces the user named in digiKam (`ImageTagProperties` "tagRegion", a pixel rectangle,
on a person tag: one below the `People` root or with the `person` property) are read at every
sync and handed back in the report, for the index to match to its faces like XMP regions
(db/people.py); digiKam's Unknown / Unconfirmed / Ignored placeholders are no names.

Safety: refuses while a digiKam process runs (it caches tags in memory and would overwrite us)
and when SQLite's quick_check finds the database damaged (writing into a corrupt file spreads the
damage, and its backup would be corrupt too).  Only when there is something to change: copies
the database aside first (SQLite backup API, consistent even mid-WAL; the last BACKUPS_KEPT are
kept) and does all changes in one transaction.
"""

from __future__ import annotations

import configparser
import logging
import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs

from indexer.export.tagging import PhotoLike
from indexer.export.tags import DEFAULT_MIN_SCORE, DEFAULT_PREFIX, check_tag_text, emotions_for_faces, label
from indexer.media.regions import DigikamFace
from indexer.paths import path_bytes

log = logging.getLogger(__name__)

MARKER = "moodindex"
REQUIRED_TABLES = ("AlbumRoots", "Albums", "Images", "Tags", "TagsTree", "ImageTags", "ImageTagProperties")
IMAGE_VISIBLE = 1  # Images.status: 1 visible, 2 hidden, 3 trashed, 4 obsolete
BACKUPS_KEPT = 5  # backups of digikam4.db made by sync; older ones are deleted after a new one is made


class DigikamError(RuntimeError):
    """digiKam is running, the database is not digiKam's, or it could not be written."""


@dataclass
class SyncReport:
    matched: int = 0
    not_in_digikam: int = 0
    # of those, photos whose name is not UTF-8: digiKam cannot have them (`name_digikam_can_scan`)
    not_utf8: int = 0
    added: int = 0
    removed: int = 0
    unchanged: int = 0
    created_tags: list[str] = field(default_factory=list)
    unresolved_roots: list[str] = field(default_factory=list)
    backup: Path | None = None
    dry_run: bool = False
    # named face rectangles of our photos in digiKam's database, by photo path (named_faces)
    people: dict[str, list[DigikamFace]] = field(default_factory=dict)

    def line(self) -> str:
        verb = "would add" if self.dry_run else "added"
        unscannable = (f", {self.not_utf8} of them named in bytes that are not UTF-8, which digiKam cannot scan"
                       if self.not_utf8 else "")
        text = (f"{self.matched} photos matched in digiKam ({self.not_in_digikam} not in digiKam{unscannable}); "
                f"{verb} {self.added} tag assignments, {'would remove' if self.dry_run else 'removed'} "
                f"{self.removed}, {self.unchanged} photos unchanged")
        if any(self.people.values()):
            faces = sum(len(v) for v in self.people.values())
            text += f"; {faces} named faces read on {sum(bool(v) for v in self.people.values())} photos"
        if self.backup:
            text += f"; backup at {self.backup}"
        return text


def name_digikam_can_scan(path: str) -> bool:
    """False for a path whose bytes are not UTF-8 (a Latin-1 name from an old archive): digiKam's
    collection scanner lists folders with Qt's QDir::entryInfoList, and Qt 5 and 6 skip every
    directory entry whose name is not valid UTF-8 (qfilesystemiterator_unix.cpp, checkNameDecodable).
    Such a photo, or any photo in such a folder, has no row in digiKam's database to match; and a
    row could not be made to match either: Qt turns each bad byte into U+FFFD, so the name it would
    hold is lossy (caf\xe9 and caf\xe8 are both "caf\ufffd") and opens no file."""
    try:
        path_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# -- where digiKam is and whether it runs ------------------------------------------------------
def digikam_running(proc: Path = Path("/proc")) -> list[int]:
    """PIDs of running digiKam processes (by /proc/PID/comm or the executable's name)."""
    pids = []
    for entry in proc.iterdir() if proc.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            argv0 = (entry / "cmdline").read_bytes().split(b"\0", 1)[0].decode("utf-8", "replace")
        except OSError:
            continue
        if comm.lower() == "digikam" or os.path.basename(argv0).lower() in ("digikam", "digikam.appimage"):
            pids.append(int(entry.name))
    return pids


def default_database(home: Path | None = None) -> Path:
    """digiKam's database from ~/.config/digikamrc ([Database Settings] Database Name), else ~/Pictures."""
    home = home or Path.home()
    rc = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "digikamrc"
    if rc.is_file():
        parser = configparser.RawConfigParser(strict=False, interpolation=None)
        try:
            parser.read(rc, encoding="utf-8")
            name = parser.get("Database Settings", "Database Name", fallback="")
        except (configparser.Error, UnicodeDecodeError):
            name = ""
        if name:
            path = Path(os.path.expanduser(name))
            return path / "digikam4.db" if path.suffix != ".db" else path
    return home / "Pictures" / "digikam4.db"


# -- album roots -------------------------------------------------------------------------------
def _mount_point_of(device: str, mounts: Path = Path("/proc/self/mounts")) -> str | None:
    try:
        for line in mounts.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and os.path.realpath(parts[0].replace("\\040", " ")) == device:
                return parts[1].replace("\\040", " ")
    except OSError:
        return None
    return None


def resolve_album_root(identifier: str | None, specific_path: str | None) -> str | None:
    """The absolute folder of an album root, from digiKam's identifier URL:
    `volumeid:?path=/abs`, `volumeid:?uuid=U` (+ specificPath below that volume's mount point),
    or `networkshareid:?mountpath=/mnt/x`."""
    ident = identifier or ""
    scheme, _, query = ident.partition(":?")
    params = parse_qs(query)
    specific = (specific_path or "").strip("/")
    if scheme == "volumeid" and "path" in params:
        return os.path.normpath(params["path"][0])
    if scheme == "volumeid" and "uuid" in params:
        dev = Path("/dev/disk/by-uuid") / params["uuid"][0]
        mount = _mount_point_of(os.path.realpath(dev)) if dev.exists() else None
        if mount:
            return os.path.normpath(os.path.join(mount, specific))
        fallback = "/" + specific  # a volume mounted at / (the usual single-disk case)
        return fallback if os.path.isdir(fallback) else None
    if scheme == "networkshareid" and "mountpath" in params:
        for mount in params["mountpath"]:
            if os.path.isdir(mount):
                return os.path.normpath(mount)
        return os.path.normpath(params["mountpath"][0])
    return None


# -- the sync ----------------------------------------------------------------------------------
def _check_schema(conn: sqlite3.Connection, db: Path) -> None:
    have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    missing = [t for t in REQUIRED_TABLES if t not in have]
    if missing:
        raise DigikamError(f"{db} is not a digiKam database (missing tables {', '.join(missing)})")


def _image_index(conn: sqlite3.Connection, report: SyncReport) -> dict[str, int]:
    roots: dict[int, str] = {}
    for rid, ident, spath, rlabel in conn.execute("SELECT id, identifier, specificPath, label FROM AlbumRoots"):
        path = resolve_album_root(ident, spath)
        if path is None:
            report.unresolved_roots.append(f"{rlabel or rid}: {ident} {spath or ''}".strip())
        else:
            roots[rid] = path
    index: dict[str, int] = {}
    rows = conn.execute(
        "SELECT Images.id, Images.name, Albums.albumRoot, Albums.relativePath FROM Images "
        "JOIN Albums ON Albums.id = Images.album WHERE Images.status = ?", (IMAGE_VISIBLE,))
    for image_id, name, root_id, rel in rows:
        if root_id in roots:
            full = os.path.normpath(os.path.join(roots[root_id], (rel or "/").lstrip("/"), name))
            index[full] = image_id
    return index


def _tag_id(conn: sqlite3.Connection, pid: int, name: str, create: bool, report: SyncReport) -> int | None:
    row = conn.execute("SELECT id FROM Tags WHERE pid = ? AND name = ?", (pid, name)).fetchone()
    if row:
        return int(row[0])
    if not create:
        return None
    cur = conn.execute("INSERT INTO Tags (pid, name) VALUES (?, ?)", (pid, name))
    tag_id = int(cur.lastrowid)
    # digiKam's insert_tagstree trigger does this; keep the closure table right without it too.
    if not conn.execute("SELECT 1 FROM TagsTree WHERE id = ? AND pid = ?", (tag_id, pid)).fetchone():
        conn.execute("INSERT OR IGNORE INTO TagsTree (id, pid) VALUES (?, ?)", (tag_id, pid))
        conn.execute("INSERT OR IGNORE INTO TagsTree (id, pid) SELECT ?, pid FROM TagsTree WHERE id = ?",
                     (tag_id, pid))
    report.created_tags.append(name)
    return tag_id


def check_integrity(conn: sqlite3.Connection, db: Path) -> None:
    """Refuse a damaged database (PRAGMA quick_check: every page and b-tree, without comparing
    indexes to tables: seconds, not minutes, on a large digikam4.db)."""
    try:
        problems = [line for r in conn.execute("PRAGMA quick_check(5)") for line in str(r[0]).splitlines()
                    if not line.startswith("*** in database")]
    except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
        problems = [str(exc)]
    if problems != ["ok"]:
        raise DigikamError(f"{db} is damaged (SQLite quick_check: {'; '.join(problems)[:300]}); nothing was "
                           "written. Let digiKam repair it (Tools > Maintenance) or restore a backup first")


def _backup_pattern(db: Path) -> re.Pattern[str]:
    return re.compile(re.escape(db.name) + r"\.moodindex-backup-\d{8}-\d{6}(-\d+)?")


def rotate_backups(db: Path, keep: int = BACKUPS_KEPT) -> list[Path]:
    """Delete all but the newest `keep` of our backups of `db` (only names backup_database makes)."""
    pattern = _backup_pattern(db)
    ours = [p for p in db.parent.iterdir() if pattern.fullmatch(p.name) and p.is_file() and not p.is_symlink()]
    ours.sort(key=lambda p: (p.stat().st_mtime_ns, p.name))
    old = ours[:-keep] if keep > 0 else ours
    for p in old:
        p.unlink(missing_ok=True)
    return old


def backup_database(db: Path) -> Path:
    """A consistent copy beside the database, readable by its owner only."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    dest = db.with_name(f"{db.name}.moodindex-backup-{stamp}")
    n = 1
    while dest.exists():
        n += 1
        dest = db.with_name(f"{db.name}.moodindex-backup-{stamp}-{n}")
    fd = os.open(dest, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    dst = sqlite3.connect(dest)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    return dest


def sync(db: Path, photos: Iterable[PhotoLike], *, min_score: float = DEFAULT_MIN_SCORE,
         prefix: str = DEFAULT_PREFIX, remove_only: bool = False, dry_run: bool = False,
         running: Callable[[], Sequence[int]] | None = None) -> SyncReport:
    """Make digiKam's tags for our photos match their faces (or, with remove_only, take ours back)."""
    prefix = check_tag_text(prefix, "prefix")
    db = Path(db).expanduser()
    if not db.is_file():
        raise DigikamError(f"digiKam database not found at {db} (give --digikam-db PATH)")
    pids = (running or digikam_running)()
    if pids:
        raise DigikamError(f"digiKam is running (pid {', '.join(map(str, pids))}); close it first, "
                           "it keeps tags in memory and would overwrite the database")
    report = SyncReport(dry_run=dry_run)
    try:
        conn = sqlite3.connect(f"file:{db}?mode={'ro' if dry_run else 'rw'}", uri=True, timeout=5,
                               isolation_level=None)
    except sqlite3.Error as exc:
        raise DigikamError(f"cannot open {db}: {exc}") from exc
    try:
        check_integrity(conn, db)
        _check_schema(conn, db)
        if not dry_run:
            conn.execute("BEGIN IMMEDIATE")  # held from the count to the commit: nobody writes in between
        photos = list(photos)  # walked twice: to count, then to write
        _sync_rows(conn, photos, min_score, prefix, remove_only, True, report)
        people = named_faces(conn, {os.path.normpath(p.path) for p in photos})
        report.people = people
        if dry_run or not (report.added or report.removed):
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return report  # nothing to change: no tag created, no backup made
        report = SyncReport(people=people)
        report.backup = backup_database(db)
        _sync_rows(conn, photos, min_score, prefix, remove_only, False, report)
        conn.execute("COMMIT")
        try:
            rotate_backups(db)
        except OSError as exc:  # the sync itself is done; an old backup left behind is no failure
            log.warning("could not delete old digiKam backups beside %s: %s", db, exc.strerror or exc)
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise DigikamError(f"{db}: {exc}; nothing was changed") from exc
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
    return report


def _sync_rows(conn: sqlite3.Connection, photos: Iterable[PhotoLike], min_score: float, prefix: str,
               remove_only: bool, dry_run: bool, report: SyncReport) -> None:
    index = _image_index(conn, report)
    # every assignment we made earlier, whatever prefix or model produced it
    ours: dict[int, set[int]] = {}
    for image_id, tag_id in conn.execute(
            "SELECT P.imageid, P.tagid FROM ImageTagProperties P JOIN ImageTags T "
            "ON T.imageid = P.imageid AND T.tagid = P.tagid WHERE P.property = ?", (MARKER,)):
        ours.setdefault(image_id, set()).add(tag_id)
    parent = None if remove_only else _tag_id(conn, 0, prefix, not dry_run, report)
    label_ids: dict[str, int | None] = {}
    wanted_by_image: dict[int, set[int]] = {}
    visited: set[int] = set()
    for photo in photos:
        image_id = index.get(os.path.normpath(photo.path))
        if image_id is None:
            report.not_in_digikam += 1
            report.not_utf8 += not name_digikam_can_scan(photo.path)
            continue
        report.matched += 1
        visited.add(image_id)
        want: set[int] = set()
        if not remove_only:
            for emotion in emotions_for_faces(photo.faces, min_score):
                name = label(emotion)
                if name not in label_ids:
                    label_ids[name] = (_tag_id(conn, parent, name, not dry_run, report)
                                       if parent is not None else None)
                    if label_ids[name] is None:  # dry run, tag not yet there
                        label_ids[name] = -len(label_ids)
                want.add(label_ids[name])  # type: ignore[arg-type]
        wanted_by_image[image_id] = want
    targets = visited | set(ours) if remove_only else visited
    for image_id in sorted(targets):
        want = wanted_by_image.get(image_id, set())
        present = {r[0] for r in conn.execute("SELECT tagid FROM ImageTags WHERE imageid = ?", (image_id,))}
        mine = ours.get(image_id, set())
        to_add = sorted(t for t in want if t not in present)
        to_remove = sorted(t for t in mine if t not in want)
        if not to_add and not to_remove:
            report.unchanged += 1
            continue
        report.added += len(to_add)
        report.removed += len(to_remove)
        if dry_run:
            continue
        for tag_id in to_add:
            conn.execute("INSERT INTO ImageTags (imageid, tagid) VALUES (?, ?)", (image_id, tag_id))
            conn.execute("DELETE FROM ImageTagProperties WHERE imageid = ? AND tagid = ? AND property = ?",
                         (image_id, tag_id, MARKER))  # a stale marker left after the user removed the tag
            conn.execute("INSERT INTO ImageTagProperties (imageid, tagid, property, value) VALUES (?, ?, ?, ?)",
                         (image_id, tag_id, MARKER, "1"))
        for tag_id in to_remove:
            conn.execute("DELETE FROM ImageTags WHERE imageid = ? AND tagid = ?", (image_id, tag_id))
            conn.execute("DELETE FROM ImageTagProperties WHERE imageid = ? AND tagid = ? AND property = ?",
                         (image_id, tag_id, MARKER))


# -- people: the faces the user named in digiKam -------------------------------------------------
PEOPLE_ROOT = "People"
REGION_PROPERTY = "tagRegion"          # a confirmed face: ImageTagProperties(imageid, person tag, rect)
PERSON_PROPERTY = "person"             # TagProperties: this tag is a person (value: the full name)
NOT_A_NAME = ("unknownPerson", "unconfirmedPerson", "ignoredPerson")  # digiKam's placeholder tags
_RECT_ATTR = re.compile(r'\b(x|y|width|height)\s*=\s*"(-?\d+)"')


def parse_rect(value: str) -> tuple[int, int, int, int] | None:
    """digiKam's `<rect x="120" y="80" width="200" height="240"/>` -> (x, y, w, h); None if not one."""
    if not value.lstrip().startswith("<rect"):
        return None
    found = dict(_RECT_ATTR.findall(value))
    if len(found) != 4:
        return None
    x, y, w, h = (int(found[k]) for k in ("x", "y", "width", "height"))
    return (x, y, w, h) if w > 0 and h > 0 else None


def _people_tags(conn: sqlite3.Connection) -> dict[int, str]:
    """Person tag id -> name: tags below the `People` root or marked `person`, without digiKam's
    Unknown / Unconfirmed / Ignored placeholders."""
    tags = {tid: (pid, name) for tid, pid, name in conn.execute("SELECT id, pid, name FROM Tags")}
    props: dict[int, dict[str, str]] = {}
    for tid, prop, value in conn.execute("SELECT tagid, property, value FROM TagProperties"):
        props.setdefault(tid, {})[prop] = value or ""
    roots = {tid for tid, (pid, name) in tags.items() if pid == 0 and name == PEOPLE_ROOT}

    def under_people(tid: int) -> bool:
        seen: set[int] = set()
        cur = tags.get(tid, (0, ""))[0]
        while cur and cur not in seen:
            if cur in roots:
                return True
            seen.add(cur)
            cur = tags.get(cur, (0, ""))[0]
        return False

    out = {}
    for tid, (_pid, name) in tags.items():
        p = props.get(tid, {})
        if any(k in p for k in NOT_A_NAME) or tid in roots:
            continue
        if PERSON_PROPERTY in p or under_people(tid):
            out[tid] = p.get(PERSON_PROPERTY) or name
    return out


def named_faces(conn: sqlite3.Connection, paths: set[str]) -> dict[str, list[DigikamFace]]:
    """The confirmed, named face rectangles digiKam holds for the photos at `paths`: every one of
    them digiKam knows has an entry, empty when it names nobody there (so a name the user took
    away in digiKam goes at the next sync)."""
    people = _people_tags(conn)
    by_image = {image_id: path for path, image_id in _image_index(conn, SyncReport()).items() if path in paths}
    out: dict[str, list[DigikamFace]] = {path: [] for path in by_image.values()}
    if not people:
        return out
    rows = conn.execute(
        "SELECT P.imageid, P.tagid, P.value, I.width, I.height FROM ImageTagProperties P "
        "LEFT JOIN ImageInformation I ON I.imageid = P.imageid WHERE P.property = ? ORDER BY P.rowid",
        (REGION_PROPERTY,))
    for image_id, tag_id, value, width, height in rows:
        path, name = by_image.get(image_id), people.get(tag_id)
        rect = parse_rect(value or "")
        if path is None or name is None or rect is None:
            continue
        drawn_on = (int(width), int(height)) if width and height else None
        out[path].append(DigikamFace(name, rect, drawn_on))
    return out
