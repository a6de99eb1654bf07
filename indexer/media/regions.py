"""Named face regions from XMP: who is where in a photo, as photo managers wrote it.

Two layouts, read with the one XMP reader (`media.xmp`):
- MWG (`mwg-rs:Regions`): digiKam, Lightroom, Picasa, Apple Photos exports, Immich.  `stArea:x/y`
  are the region's *centre* and `w/h` its size, normalised to 0..1; `AppliedToDimensions` says
  which pixel size the writer had in mind.  Only regions of `Type` Face (or no type) with a Name.
- Microsoft (`MP:RegionInfo`): Windows Photo Gallery, and digiKam beside MWG.
  `MPReg:Rectangle` is "left, top, width, height", normalised; `MPReg:PersonDisplayName`.

Orientation.  The MWG guidelines relate a region to the image as stored, before the EXIF
orientation is applied, so a region of a rotated photo is turned here like its pixels
(`displayed_box`).  Some writers store the displayed image's frame instead; their
`AppliedToDimensions` then has the displayed image's shape (width and height swapped against the
stored one), and such a region is taken as it is.  Microsoft regions carry no dimensions and are
taken like MWG's.  Boxes returned here are normalised left/top/width/height of the *displayed*
photo, the frame the face boxes in the index use.

Where: the `.xmp` sidecar first (digiKam, darktable and Lightroom keep their view of a photo
there), then the file's own XMP.  Within one packet MWG wins, and a Microsoft region adds a name
MWG did not have (digiKam writes both for the same faces).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from indexer.domain import clean_name
from indexer.media.xmp import (
    XmpPacket,
    field,
    first_in_xmp,
    items,
    substruct,
)

NS_MWG_RS = "http://www.metadataworkinggroup.com/schemas/regions/"
NS_ST_AREA = "http://ns.adobe.com/xmp/sType/Area#"
NS_ST_DIM = "http://ns.adobe.com/xap/1.0/sType/Dimensions#"
NS_MP = "http://ns.microsoft.com/photo/1.2/"
NS_MPRI = "http://ns.microsoft.com/photo/1.2/t/RegionInfo#"
NS_MPREG = "http://ns.microsoft.com/photo/1.2/t/Region#"

SOURCE_MWG = "mwg"
SOURCE_MICROSOFT = "microsoft"
SOURCE_DIGIKAM = "digikam"  # digiKam's database (`moodindex digikam sync`), not the metadata

Box = tuple[float, float, float, float]  # left, top, width, height

# A named region and a detected face are the same face at IoU >= MATCH_IOU.  Measured on 40 photos
# of 2-4 real faces (150-450 px, a quarter stored turned), regions written by exiftool in the MWG
# layout and read back here, faces found by YuNet through the real pipeline
# (`python benchmarks/region_match.py --photos 40`): a region from another detector (OpenCV Haar)
# overlaps its own face at IoU 0.52-0.95 (1st percentile 0.56, median 0.76), a loosely drawn box
# round the head at 0.58-0.90 (median 0.73); no region overlapped another face at all.  0.3 keeps
# a wide margin under the lowest own-face overlap for looser boxes (Picasa's whole-head ones),
# and best-overlap-first matching keeps neighbours in a group photo apart.
MATCH_IOU = 0.3


@dataclass(frozen=True)
class NamedRegion:
    name: str
    box: Box            # normalised to the displayed (oriented) photo
    source: str         # SOURCE_MWG | SOURCE_MICROSOFT


@dataclass(frozen=True)
class RawRegion:
    """A region as written: normalised box, and the pixel size it was applied to, if given."""
    name: str
    box: Box
    source: str
    applied_to: tuple[int, int] | None = None


def _floats(*texts: str | None) -> tuple[float, ...] | None:
    try:
        values = tuple(float(t) for t in texts if t is not None)
    except ValueError:
        return None
    return values if len(values) == len(texts) else None


def _plausible(box: Box) -> Box | None:
    """Clip to the photo; None for a region with no area or wholly outside it."""
    x, y, w, h = box
    if not (w > 0 and h > 0) or any(v != v for v in box):  # v != v: NaN
        return None
    left, top, right, bottom = max(0.0, x), max(0.0, y), min(1.0, x + w), min(1.0, y + h)
    if right <= left or bottom <= top:
        return None
    return left, top, right - left, bottom - top


def mwg_regions(packet: XmpPacket) -> list[RawRegion]:
    out = []
    for regions in packet.structs(NS_MWG_RS, "Regions"):
        dims = substruct(regions, NS_MWG_RS, "AppliedToDimensions")
        applied = None
        if dims is not None and (field(dims, NS_ST_DIM, "unit") or "pixel") == "pixel":
            wh = _floats(field(dims, NS_ST_DIM, "w"), field(dims, NS_ST_DIM, "h"))
            applied = (round(wh[0]), round(wh[1])) if wh and wh[0] > 0 and wh[1] > 0 else None
        for region in items(regions, NS_MWG_RS, "RegionList"):
            name = clean_name(field(region, NS_MWG_RS, "Name") or "")
            kind = field(region, NS_MWG_RS, "Type") or "Face"
            area = substruct(region, NS_MWG_RS, "Area")
            if not name or kind.lower() != "face" or area is None:
                continue
            if (field(area, NS_ST_AREA, "unit") or "normalized").lower() != "normalized":
                continue
            xywh = _floats(*(field(area, NS_ST_AREA, k) for k in ("x", "y", "w", "h")))
            if xywh is None:
                continue
            cx, cy, w, h = xywh
            out.append(RawRegion(name, (cx - w / 2, cy - h / 2, w, h), SOURCE_MWG, applied))
    return out


def microsoft_regions(packet: XmpPacket) -> list[RawRegion]:
    out = []
    for info in packet.structs(NS_MP, "RegionInfo"):
        for region in items(info, NS_MPRI, "Regions"):
            name = clean_name(field(region, NS_MPREG, "PersonDisplayName") or "")
            rect = (field(region, NS_MPREG, "Rectangle") or "").split(",")
            xywh = _floats(*rect) if len(rect) == 4 else None
            if name and xywh:
                out.append(RawRegion(name, xywh, SOURCE_MICROSOFT))  # type: ignore[arg-type]
    return out


def packet_regions(packet: XmpPacket) -> list[RawRegion]:
    """MWG regions, plus Microsoft ones for names MWG does not have."""
    mwg = mwg_regions(packet)
    named = {r.name.casefold() for r in mwg}
    return mwg + [r for r in microsoft_regions(packet) if r.name.casefold() not in named]


def displayed_box(box: Box, orientation: int | None) -> Box:
    """A normalised box of the stored image, in the displayed image's frame for EXIF `orientation`
    (the same turn `media.decode` gives the pixels)."""
    x, y, w, h = box
    corners = [(x, y), (x + w, y + h)]
    turn = {
        2: lambda u, v: (1 - u, v), 3: lambda u, v: (1 - u, 1 - v), 4: lambda u, v: (u, 1 - v),
        5: lambda u, v: (v, u), 6: lambda u, v: (1 - v, u), 7: lambda u, v: (1 - v, 1 - u),
        8: lambda u, v: (v, 1 - u),
    }.get(orientation or 1)
    if turn is None:
        return box
    (u1, v1), (u2, v2) = (turn(u, v) for u, v in corners)
    return min(u1, u2), min(v1, v2), abs(u2 - u1), abs(v2 - v1)


def _already_displayed(region: RawRegion, orientation: int | None, displayed: tuple[int, int] | None) -> bool:
    """A quarter-turned photo whose region says it was applied to the displayed image's shape."""
    if orientation not in (5, 6, 7, 8) or region.applied_to is None or displayed is None:
        return False
    (aw, ah), (dw, dh) = region.applied_to, displayed
    return aw != ah and dw != dh and (aw > ah) == (dw > dh)


def oriented(raw: Sequence[RawRegion], orientation: int | None,
             displayed: tuple[int, int] | None) -> tuple[NamedRegion, ...]:
    out = []
    for r in raw:
        box = r.box if _already_displayed(r, orientation, displayed) else displayed_box(r.box, orientation)
        if (clipped := _plausible(box)) is not None:
            out.append(NamedRegion(r.name, clipped, r.source))
    return tuple(out)


@dataclass(frozen=True)
class DigikamFace:
    """A confirmed, named face in digiKam's database: who, the rectangle in pixels (`tagRegion`),
    and the size of the image digiKam drew it on (ImageInformation), when it has one."""

    name: str
    rect: tuple[int, int, int, int]
    drawn_on: tuple[int, int] | None = None


def pixel_region(name: str, rect: tuple[int, int, int, int], drawn_on: tuple[int, int] | None,
                 orientation: int | None, displayed: tuple[int, int]) -> NamedRegion | None:
    """A face rectangle in pixels, as digiKam keeps it (`tagRegion`), as a NamedRegion.

    digiKam draws it on the image as it shows it, EXIF orientation applied (it turns its
    rectangles with the image when the user rotates one), and records that image's size in
    `ImageInformation` (`drawn_on`).  When that size is the displayed one turned a quarter (an
    old scan that read the stored frame), the rectangle is in the stored frame and is turned
    like the pixels; without a size, our own displayed size is taken."""
    x, y, w, h = rect
    dw, dh = displayed
    if drawn_on is None or drawn_on[0] <= 0 or drawn_on[1] <= 0:
        return NamedRegion(name, box, SOURCE_DIGIKAM) if (box := _plausible((x / dw, y / dh, w / dw, h / dh))) else None
    aw, ah = drawn_on
    box = (x / aw, y / ah, w / aw, h / ah)
    if orientation in (5, 6, 7, 8) and aw != ah and dw != dh and (aw > ah) != (dw > dh):
        box = displayed_box(box, orientation)
    return NamedRegion(name, clipped, SOURCE_DIGIKAM) if (clipped := _plausible(box)) else None


def named_regions(path: str | Path, data: bytes, orientation: int | None,
                  displayed: tuple[int, int] | None) -> tuple[tuple[NamedRegion, ...], tuple[str, ...]]:
    """The photo's named face regions (see the module docstring) and notes on metadata that could
    not be read.  `displayed` is the displayed photo's (width, height) when known.  Never raises."""
    found, _, notes = first_in_xmp(path, data, packet_regions, " for names")
    return oriented(found or [], orientation, displayed), tuple(notes)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two left/top/width/height boxes (any one unit)."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def match_regions(regions: Sequence[Box], faces: Sequence[Box], threshold: float) -> list[int | None]:
    """For each region, the index of the face it names, or None.  Pairs are taken best overlap
    first, each face and region at most once, and only at IoU >= threshold (MATCH_IOU, measured)."""
    pairs = sorted(((iou(r, f), i, j) for i, r in enumerate(regions) for j, f in enumerate(faces)), reverse=True)
    out: list[int | None] = [None] * len(regions)
    taken: set[int] = set()
    for overlap, i, j in pairs:
        if overlap < threshold:
            break
        if out[i] is None and j not in taken:
            out[i] = j
            taken.add(j)
    return out
