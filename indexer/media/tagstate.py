"""What the user did to the emotion tags in digiKam, darktable or Lightroom: tags they removed from
those moodindex wrote, and emotion tags of their own.

moodindex records every value it writes in the same XMP (`moodindex:Written`, entries such as
"lr:hierarchicalSubject=Emotion|Happy"; export/xmp.py).  Photo managers keep properties they do
not know when they rewrite a sidecar or a file (darktable 4.2 does, as tests/test_tag_corrections.py
shows with the real program; digiKam writes through the same Exiv2), so the record survives their
edits, and comparing it with what the hierarchical keyword fields hold now tells:

* **removed**: an emotion we recorded writing to a field that no longer holds it.  Each field is
  looked at on its own: darktable rewrites `lr:hierarchicalSubject` (and `dc:subject`) but leaves
  digiKam's `TagsList` as it was, so one field losing the tag is enough.
* **added**: an emotion tag (`PREFIX|Label` or `PREFIX/Label`, PREFIX "Emotion" or one we wrote)
  that no record, in any of the photo's packets, says is ours.

Flat keywords (`dc:subject`, IPTC Keywords) are left out: "Happy" there may be any keyword.
An emotion that is both added and removed (two packets disagreeing) is left out: it says nothing
clear.  Packets are every `.xmp` sidecar of the photo and its own embedded XMP.

`sidecar_signature(s)`: what the scan compares to notice an edit to a sidecar alone."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass

from indexer.domain import CLASSES
from indexer.media.xmp import XMPError, XmpPacket, embedded_xmp, read_sidecar, sidecar_candidates

# our own XMP namespace; `export.exiftool` declares it to exiftool with this URI
NS_MOODINDEX = "http://moodindex.invalid/xmp/1.0/"
NS_LIGHTROOM = "http://ns.adobe.com/lightroom/1.0/"
NS_DIGIKAM = "http://www.digikam.org/ns/1.0/"
# exiftool writes Microsoft's namespace without the trailing slash, Exiv2 (digiKam, darktable) with it
NS_MICROSOFT_PHOTO = ("http://ns.microsoft.com/photo/1.0", "http://ns.microsoft.com/photo/1.0/")

DEFAULT_PREFIX = "Emotion"
# record name (as `moodindex:Written` spells the field) -> (namespaces, property, level separator)
HIERARCHICAL_FIELDS = {
    "lr:hierarchicalSubject": ((NS_LIGHTROOM,), "hierarchicalSubject", "|"),
    "digiKam:TagsList": ((NS_DIGIKAM,), "TagsList", "/"),
    "MicrosoftPhoto:LastKeywordXMP": (NS_MICROSOFT_PHOTO, "LastKeywordXMP", "/"),
}
_BY_LABEL = {c.casefold(): c for c in CLASSES}


@dataclass(frozen=True)
class TagVerdicts:
    """Emotions the user tagged themselves, and emotions of ours they removed (CLASSES words)."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)


def _split(value: str, separator: str) -> tuple[str, str] | None:
    parts = value.split(separator)
    return (parts[0].strip(), parts[1].strip()) if len(parts) == 2 else None


def _emotion(value: str, separator: str, prefixes: set[str]) -> str | None:
    """'Emotion|Happy' -> 'happy' when the prefix is one of ours and the label a class."""
    split = _split(value, separator)
    if split is None or split[0].casefold() not in prefixes:
        return None
    return _BY_LABEL.get(split[1].casefold())


def _values(packet: XmpPacket, namespaces: tuple[str, ...], prop: str) -> list[str]:
    return [v for ns in namespaces for v in packet.values(ns, prop)]


def verdicts(packets: list[XmpPacket]) -> TagVerdicts:
    """Compare each packet's record with its fields (see the module docstring)."""
    records = []  # (packet, field name, value) we wrote
    for packet in packets:
        for entry in packet.values(NS_MOODINDEX, "Written"):
            name, sep, value = entry.partition("=")
            if sep and name in HIERARCHICAL_FIELDS:
                records.append((packet, name, value))
    prefixes = {DEFAULT_PREFIX.casefold()}
    for _, name, value in records:
        if (split := _split(value, HIERARCHICAL_FIELDS[name][2])) is not None:
            prefixes.add(split[0].casefold())
    ours = {(name, value) for _, name, value in records}
    removed: set[str] = set()
    for packet, name, value in records:
        ns, prop, separator = HIERARCHICAL_FIELDS[name]
        emotion = _emotion(value, separator, prefixes)
        if emotion and value not in _values(packet, ns, prop):
            removed.add(emotion)
    added: set[str] = set()
    for packet in packets:
        for name, (ns, prop, separator) in HIERARCHICAL_FIELDS.items():
            for value in _values(packet, ns, prop):
                emotion = _emotion(value, separator, prefixes)
                if emotion and (name, value) not in ours:
                    added.add(emotion)
    unclear = added & removed
    return TagVerdicts(tuple(c for c in CLASSES if c in added - unclear),
                       tuple(c for c in CLASSES if c in removed - unclear))


def tag_verdicts(path: str | os.PathLike, data: bytes) -> tuple[TagVerdicts, tuple[str, ...]]:
    """The verdicts for one photo from its sidecars and its own XMP, and notes on packets that could
    not be read.  Never raises."""
    packets, notes = [], []
    for sidecar in sidecar_candidates(path):
        if sidecar.exists():
            try:
                packets.append(read_sidecar(sidecar))
            except XMPError as exc:
                notes.append(f"sidecar {sidecar.name} not read for tags: {exc}")
    try:
        packet = embedded_xmp(data)
        if packet is not None:
            packets.append(packet)
    except XMPError as exc:
        notes.append(f"XMP in the file not read for tags: {exc}")
    return verdicts(packets), tuple(notes)


def _candidate_names(name: str) -> tuple[str, ...]:
    """`media.xmp.sidecar_candidates`, as names: NAME.EXT.xmp, then NAME.xmp, either case."""
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return tuple(dict.fromkeys((name + ".xmp", name + ".XMP", stem + ".xmp", stem + ".XMP")))


def _signature(stats: list[os.stat_result]) -> str | None:
    """The sidecars as files (size, mtime, inode; a name seen twice on a case-blind file system is
    one file), in 32 hex digits; None when there are none."""
    files = sorted({(st.st_dev, st.st_ino): (st.st_size, st.st_mtime_ns, st.st_ino) for st in stats}.values())
    if not files:
        return None
    return hashlib.blake2b(repr(files).encode(), digest_size=16).hexdigest()


def _stat_all(folder: str, names: Iterable[str]) -> list[os.stat_result]:
    out = []
    for name in names:
        try:
            out.append(os.stat(os.path.join(folder, name)))
        except OSError:
            continue
    return out


def sidecar_signature(photo: str | os.PathLike) -> str | None:
    """Which sidecars the photo has, with their sizes and mtimes, in 32 hex digits (None: none).
    A sidecar edited, added or deleted changes it; the scan compares it with the stored one."""
    folder, name = os.path.split(os.fspath(photo))
    return _signature(_stat_all(folder, _candidate_names(name)))


def sidecar_signatures(photos: Iterable[str]) -> dict[str, str | None]:
    """`sidecar_signature` of many photos, listing each folder once instead of trying four names
    per photo (a rescan of a large library: benchmarks/sidecar_scan.py)."""
    by_folder: dict[str, list[str]] = {}
    for p in photos:
        folder, name = os.path.split(p)
        by_folder.setdefault(folder, []).append(name)
    out: dict[str, str | None] = {}
    for folder, names in by_folder.items():
        try:
            with os.scandir(folder) as it:
                present = {e.name for e in it if e.name[-4:] in (".xmp", ".XMP")}
        except OSError:
            present = None
        for name in names:
            path = os.path.join(folder, name)
            if present is None:  # unreadable folder: the slow way, which fails the same way per file
                out[path] = sidecar_signature(path)
                continue
            wanted = [n for n in _candidate_names(name) if n in present]
            out[path] = _signature(_stat_all(folder, wanted)) if wanted else None
    return out
