"""The one XMP reader: finds a packet (in a photo's bytes or in a sidecar), parses it safely and
reads properties from it.  `media.dates` reads dates with it, `export.xmp` checks sidecars with it
before exiftool rewrites them.

XMP comes from files we did not write, so the XML is parsed defensively: no DOCTYPE, hence no
entity of any kind (no "billion laughs", no external file pulled in), and never more than
MAX_XMP_BYTES of it.  A property may be written as an attribute of rdf:Description
(`xmp:CreateDate="..."`), as an element (`<xmp:CreateDate>...</xmp:CreateDate>`) or as an
rdf:Seq/Bag/Alt list; `XmpPacket.values` reads all three.  Structures (MWG and Microsoft face
regions) come in the same three spellings, with or without `rdf:parseType="Resource"`;
`XmpPacket.structs`, `field`, `substruct` and `items` read them whatever the writer chose.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from xml.parsers import expat

from indexer.media.source import UnreadablePhoto, read_photo

# The largest packet we parse: darktable sidecars with long edit histories reach a few hundred KB.
MAX_XMP_BYTES = 8 << 20

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
XMP_ROOTS = ("{adobe:ns:meta/}xmpmeta", f"{{{RDF}}}RDF")
NS_EXIF = "http://ns.adobe.com/exif/1.0/"
NS_XMP = "http://ns.adobe.com/xap/1.0/"
NS_PHOTOSHOP = "http://ns.adobe.com/photoshop/1.0/"

# Where a packet starts and ends inside a file: the x:xmpmeta wrapper, or a bare rdf:RDF
_PACKET_MARKERS = ((b"<x:xmpmeta", b"</x:xmpmeta>"), (b"<rdf:RDF", b"</rdf:RDF>"))
_JPEG_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\0"
_PNG_XMP_KEY = b"XML:com.adobe.xmp\0"


T = TypeVar("T")


class XMPError(ValueError):
    """Not XMP we are willing to read; str() says why."""


def _refuse_dtd(*_args: object) -> None:
    raise XMPError("XML with a DOCTYPE (entities) is refused")


def parse_xml(data: bytes) -> ET.Element:
    """Parse untrusted XML into an ElementTree element: bounded, no DOCTYPE, no entities."""
    if len(data) > MAX_XMP_BYTES:
        raise XMPError(f"XMP larger than {MAX_XMP_BYTES >> 20} MiB")
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd

    def name(raw: str) -> str:  # expat gives "uri}local"; ElementTree spells it "{uri}local"
        return "{" + raw if "}" in raw else raw

    parser.StartElementHandler = lambda tag, attrs: builder.start(name(tag), {name(k): v for k, v in attrs.items()})
    parser.EndElementHandler = lambda tag: builder.end(name(tag))
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise XMPError(f"malformed XML ({expat.ErrorString(exc.code)}, line {exc.lineno})") from exc
    return builder.close()


@dataclass(frozen=True)
class XmpPacket:
    root: ET.Element

    def values(self, ns: str, name: str) -> list[str]:
        """Every value of property `ns`+`name`, in document order, from attributes, simple
        elements and rdf:Seq/Bag/Alt lists alike."""
        key = f"{{{ns}}}{name}"
        out: list[str] = []
        for desc in self.root.iter(f"{{{RDF}}}Description"):
            if key in desc.attrib:
                out.append(desc.attrib[key])
            for prop in desc.findall(key):
                items = prop.findall(f"./*/{{{RDF}}}li")
                texts = [li.text or "" for li in items] if items else [prop.attrib.get(f"{{{RDF}}}resource",
                                                                                       prop.text or "")]
                out.extend(t.strip() for t in texts if t and t.strip())
        return out

    def first(self, ns: str, name: str) -> str | None:
        found = self.values(ns, name)
        return found[0] if found else None

    def structs(self, ns: str, name: str) -> list[ET.Element]:
        """Every structure-valued property `ns`+`name` of a top-level rdf:Description, as the
        element that holds its fields (see `field`)."""
        key = f"{{{ns}}}{name}"
        return [_struct_body(prop) for desc in self.root.iter(f"{{{RDF}}}Description") for prop in desc.findall(key)]


def _struct_body(node: ET.Element) -> ET.Element:
    """A structure's fields live on the property element itself (rdf:parseType="Resource", or
    attributes) or on one rdf:Description inside it."""
    inner = node.find(f"{{{RDF}}}Description")
    return inner if inner is not None else node


def field(struct: ET.Element, ns: str, name: str) -> str | None:
    """A simple field of a structure, written as an attribute or as an element."""
    key = f"{{{ns}}}{name}"
    if key in struct.attrib:
        return struct.attrib[key].strip()
    child = struct.find(key)
    if child is None:
        return None
    alt = child.find(f"./{{{RDF}}}Alt/{{{RDF}}}li")  # a language alternative: its first entry
    text = (alt if alt is not None else child).text
    return text.strip() if text and text.strip() else None


def substruct(struct: ET.Element, ns: str, name: str) -> ET.Element | None:
    """A structure-valued field of a structure."""
    child = struct.find(f"{{{ns}}}{name}")
    return None if child is None else _struct_body(child)


def items(struct: ET.Element, ns: str, name: str) -> list[ET.Element]:
    """The entries of an rdf:Bag/Seq field of a structure, each as a structure."""
    child = struct.find(f"{{{ns}}}{name}")
    if child is None:
        return []
    return [_struct_body(li) for li in child.findall(f"./*/{{{RDF}}}li")]


def parse_xmp(data: bytes) -> XmpPacket:
    """A whole XMP document (a sidecar, or a packet cut out of a file)."""
    root = parse_xml(data)
    if root.tag not in XMP_ROOTS:
        raise XMPError(f"not an XMP packet (root element {root.tag})")
    return XmpPacket(root)


def read_sidecar(path: str | os.PathLike) -> XmpPacket:
    """A sidecar file, read through the same checks as a photo (a regular file, bounded)."""
    try:
        data = read_photo(path, MAX_XMP_BYTES)
    except UnreadablePhoto as exc:
        raise XMPError(f"{Path(path).name}: {exc}") from exc
    return parse_xmp(data)


def _jpeg_xmp(data: bytes) -> bytes | None:
    """The XMP APP1 segment of a JPEG, found by walking the segments before the image data."""
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xDA or marker == 0xD9:  # start of scan / end of image: no metadata after this
            return None
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker == 0xE1 and data.startswith(_JPEG_XMP_HEADER, pos + 4):
            return data[pos + 4 + len(_JPEG_XMP_HEADER):pos + 2 + length]
        pos += 2 + length
    return None


def _png_xmp(data: bytes) -> bytes | None:
    """The text of a PNG's uncompressed iTXt chunk "XML:com.adobe.xmp", found by walking the chunks."""
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        if kind == b"iTXt" and data.startswith(_PNG_XMP_KEY, pos + 8):
            body = data[pos + 8 + len(_PNG_XMP_KEY):pos + 8 + length]
            if body[:1] != b"\0":  # compressed: exiftool never writes it so, nor do the photo managers
                return None
            # compression method, language tag\0, translated keyword\0, then the text
            _, _, rest = body[2:].partition(b"\0")
            return rest.partition(b"\0")[2]
        pos += 12 + length
    return None


def find_packet(data: bytes) -> bytes | None:
    """The XMP packet embedded in a photo's bytes, or None.  JPEG and PNG metadata are found by
    walking their segments or chunks (a few microseconds); other formats (TIFF tag 700, WebP's
    "XMP " chunk, HEIF's XMP item) store the packet as plain text and are searched for it, which
    costs a pass over the file: it is only done when EXIF gave no date."""
    if data.startswith(b"\xff\xd8"):
        data = _jpeg_xmp(data) or b""
    elif data.startswith(b"\x89PNG\r\n\x1a\n"):
        data = _png_xmp(data) or b""
    for start_tag, end_tag in _PACKET_MARKERS:
        start = data.find(start_tag)
        if start < 0:
            continue
        end = data.find(end_tag, start, start + MAX_XMP_BYTES)
        if end < 0:
            return None
        return data[start:end + len(end_tag)]
    return None


def embedded_xmp(data: bytes) -> XmpPacket | None:
    """The photo's own XMP, or None when it has none we can read."""
    packet = find_packet(data)
    return None if packet is None else parse_xmp(packet)


def sidecar_candidates(photo: str | os.PathLike) -> list[Path]:
    """Where photo managers keep a photo's sidecar, most specific first: `photo.jpg.xmp` (digiKam,
    darktable) then `photo.xmp` (Lightroom, Capture One, digiKam's compatibility mode)."""
    p = Path(photo)
    names = [p.name + ".xmp", p.name + ".XMP", p.stem + ".xmp", p.stem + ".XMP"]
    return [p.with_name(n) for n in dict.fromkeys(names)]


def photos_of_sidecar(sidecar: str | os.PathLike) -> list[str]:
    """The photos a sidecar may belong to (the reverse of `sidecar_candidates`): `x.jpg` for
    `x.jpg.xmp`, and every `x.*` beside `x.xmp`."""
    p = Path(sidecar)
    stem = p.name[:-4]
    direct = p.with_name(stem)
    if "." in stem and direct.is_file():
        return [str(direct)]
    try:
        with os.scandir(p.parent) as it:
            return [e.path for e in it if e.name.rsplit(".", 1)[0] == stem and e.name != p.name and "." in e.name
                    and not e.name.lower().endswith(".xmp") and e.is_file()]
    except OSError:
        return []


def first_in_xmp(path: str | os.PathLike, data: bytes, extract: Callable[[XmpPacket], T | None],
                 purpose: str = "") -> tuple[T | None, str | None, list[str]]:
    """`extract` applied to the photo's sidecars (in `sidecar_candidates` order), then to the XMP
    inside the file: the first non-empty answer, where it came from ("sidecar" or "xmp", None when
    nowhere), and notes on packets that could not be read (`purpose` says for what).  Dates and
    names are looked up this one way, so they agree on which sidecar wins."""
    notes: list[str] = []
    for sidecar in sidecar_candidates(path):
        if not sidecar.exists():
            continue
        try:
            found = extract(read_sidecar(sidecar))
        except XMPError as exc:
            notes.append(f"sidecar {sidecar.name} not read{purpose}: {exc}")
            continue
        if found:
            return found, "sidecar", notes
    try:
        packet = embedded_xmp(data)
        found = extract(packet) if packet is not None else None
    except XMPError as exc:
        notes.append(f"XMP in the file not read{purpose}: {exc}")
        found = None
    return (found, "xmp", notes) if found else (None, None, notes)
