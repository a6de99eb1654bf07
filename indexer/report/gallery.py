"""Query results -> one self-contained HTML page: a responsive grid of thumbnails, each face's
box drawn over it with its emotion bars, the date (marked when estimated) and the score.

Self-contained means no network and no side files: thumbnails are JPEG data: URIs made with
the indexer's own decoder (`media.decode`: reduced-size JPEG decode, the same EXIF
orientation the detector saw), the CSS is inlined, there is no script, and a
Content-Security-Policy forbids anything else.  Boxes are stored in displayed-image pixels,
so they are placed as percentages of the photo's displayed size and follow any scaling.
Every string from the index (paths above all) is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

from indexer.db.models import Face, Photo
from indexer.domain import CLASSES
from indexer.fsutil import atomic_write
from indexer.paths import display_path
from indexer.query.engine import Match

THUMB_QUALITY = 82
BARS_OPEN = 2  # faces whose bars show at once; the rest fold into <details>
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


@dataclass(frozen=True)
class Thumbnail:
    uri: str          # data:image/jpeg;base64,...
    width: int        # thumbnail pixels
    height: int
    full_width: int   # the displayed photo's size, which boxes are measured in
    full_height: int


@dataclass(frozen=True)
class GalleryStats:
    photos: int
    missing: int  # photos whose file could not be read (shown without a preview)
    bytes: int


def e(value: object) -> str:
    """Escape for HTML text and quoted attributes."""
    return html.escape(str(value), quote=True)


def make_thumbnail(photo: Photo, long_side: int) -> Thumbnail | None:
    """A JPEG data: URI of the upright photo at `long_side` px, or None when it cannot be read."""
    import cv2

    from indexer.media.decode import DecodeError, decode
    from indexer.media.source import read_photo

    try:
        data = read_photo(photo.path)  # an OSError for a FIFO, a device or a huge file: no preview
        decoded = decode(data, Path(photo.path).suffix, orientation=photo.orientation or 1, long_side=long_side,
                         exact=True)
        ok, jpeg = cv2.imencode(".jpg", decoded.image, [cv2.IMWRITE_JPEG_QUALITY, THUMB_QUALITY])
    except (OSError, DecodeError, ValueError, cv2.error):
        return None
    if not ok:
        return None
    h, w = decoded.image.shape[:2]
    uri = "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode("ascii")
    return Thumbnail(uri, w, h, decoded.width, decoded.height)


def _pct(value: float, total: float) -> str:
    return f"{max(0.0, min(100.0, 100.0 * value / total)):.3f}%"


def _clipped(face: Face, width: int, height: int) -> tuple[int, int, int, int]:
    """The face's box cut to the photo: a detector may return a face partly outside the frame,
    and a box drawn past the edge would spill over the next card."""
    x0, y0 = max(0, face.x), max(0, face.y)
    x1, y1 = min(width, face.x + face.w), min(height, face.y + face.h)
    return x0, y0, max(0, x1 - x0), max(0, y1 - y0)


def _box(face: Face, n: int, width: int, height: int) -> str:
    x, y, w, h = _clipped(face, width, height)
    style = f"left:{_pct(x, width)};top:{_pct(y, height)};width:{_pct(w, width)};height:{_pct(h, height)}"
    where = " low" if y < 0.06 * height else ""  # label inside the box when there is no room above
    if x + w > 0.75 * width:
        where += " right"  # label anchored to the box's right edge so it is not cut off
    label = _who(face) or str(n)
    person = f' data-person="{e(face.person.name)}"' if face.person is not None else ""
    return (f'<div class="box e-{e(face.emotion)}{where}" style="{style}" data-emotion="{e(face.emotion)}"{person} '
            f'title="face {n}: {label} {e(face.emotion)} {face.score:.0%}"><span>{label} {e(face.emotion)}</span>'
            '</div>')


def _who(face: Face) -> str:
    """The face's name from the photo's metadata, escaped; '' when no one is named there."""
    return e(face.person.name) if face.person is not None else ""


def _bars(face: Face, n: int) -> str:
    rows = []
    for c in CLASSES:
        p = float(getattr(face, c))
        rows.append(f'<span class="lbl">{c}</span><span class="track"><span class="fill e-{c}" '
                    f'style="width:{_pct(p, 1.0)}"></span></span><span class="val">{p:.0%}</span>')
    who = f" ({_who(face)})" if face.person is not None else ""
    return (f'<div class="face" data-face="{n}"><h3>Face {n}{who}: {e(face.emotion)} {face.score:.0%}</h3>'
            f'<div class="bars">{"".join(rows)}</div></div>')


def _date(photo: Photo) -> str:
    if photo.taken_at is None:
        return '<span class="date">date unknown</span>'
    text = f'<time class="date" datetime="{photo.taken_at.isoformat(timespec="seconds")}">' \
           f"{photo.taken_at:%Y-%m-%d %H:%M}</time>"
    if photo.date_source == "file":
        text += ('<span class="est" title="No EXIF date: this is the file\'s modification time">'
                 "estimated</span>")
    return text


def ordered_faces(match: Match) -> list[Face]:
    """The faces in the order the card shows them: on a card that matched an emotion, the face
    that gave the score first, then the others by their probability for that emotion, so the
    face the query was about is never folded away behind the others."""
    faces = list(match.photo.faces)
    if match.emotion not in CLASSES:
        return faces
    return sorted(faces, key=lambda f: (f is not match.face, -float(getattr(f, match.emotion))))


def _card(match: Match, thumb: Thumbnail | None) -> str:
    photo = match.photo
    faces = ordered_faces(match)
    width = photo.width or (thumb.full_width if thumb else 4)
    height = photo.height or (thumb.full_height if thumb else 3)
    name = display_path(Path(photo.path).name)
    if thumb is not None:
        img = (f'<img src="{thumb.uri}" width="{thumb.width}" height="{thumb.height}" alt="{e(name)}" '
               'loading="lazy">')
        try:
            img = f'<a href="{e(Path(photo.path).as_uri())}" title="{e(display_path(photo.path))}">{img}</a>'
        except ValueError:  # not an absolute path: no link
            pass
        boxes = "".join(_box(f, i, width, height) for i, f in enumerate(faces, start=1))
    else:
        img = f'<div class="nopreview">no preview: cannot read<br>{e(name)}</div>'
        boxes = ""
    score = "" if match.score is None else f'<span class="score">{match.score:.2f}</span>'
    emotion = "" if match.emotion is None else f'<span class="emo e-{e(match.emotion)}">{e(match.emotion)}</span>'
    bars = [_bars(f, i) for i, f in enumerate(faces, start=1)]
    faces_html = "".join(bars[:BARS_OPEN])
    if len(bars) > BARS_OPEN:
        faces_html += (f"<details><summary>{len(bars) - BARS_OPEN} more faces</summary>"
                       f'<div class="faces">{"".join(bars[BARS_OPEN:])}</div></details>')
    attrs = (f'data-path="{e(display_path(photo.path))}" data-faces="{match.faces}" '
             f'data-score="{"" if match.score is None else f"{match.score:.4f}"}" '
             f'data-date-source="{e(photo.date_source or "")}"')
    return (f'<article class="card" {attrs}>'
            f'<figure class="photo" style="aspect-ratio:{width}/{height}">{img}{boxes}</figure>'
            f'<div class="meta"><div class="head">{score}{emotion}{_date(photo)}</div>'
            f'<div class="path">{e(display_path(photo.path))}</div>'
            f'<div class="faces">{faces_html}</div></div></article>')


def render_gallery(matches: Sequence[Match], title: str, subtitle: str = "", thumb_px: int = 480,
                   generated: datetime | None = None) -> tuple[str, int]:
    """The page's HTML and how many photos had no readable file."""
    css = resources.files("indexer.report").joinpath("gallery.css").read_text(encoding="utf-8")
    cards, missing = [], 0
    for m in matches:
        thumb = make_thumbnail(m.photo, thumb_px)
        missing += thumb is None
        cards.append(_card(m, thumb))
    legend = "".join(f'<li class="e-{c}"><span class="dot"></span>{c}</li>' for c in CLASSES)
    count = f"{len(matches)} photo{'s' if len(matches) != 1 else ''}"
    when = (generated or datetime.now()).strftime("%Y-%m-%d %H:%M")
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="generator" content="moodindex">
<title>{e(title)} · moodindex</title>
<style>
{css}</style>
</head>
<body>
<header>
<h1>{e(title)}</h1>
<p class="sub">{e(subtitle)} · {count}</p>
<ul class="legend">{legend}</ul>
</header>
<main>
{chr(10).join(cards)}
</main>
<footer>made by moodindex on {when}; scores are the model's probability for the emotion shown;
dates marked “estimated” come from file times</footer>
</body>
</html>
"""
    return page, missing


def write_gallery(matches: Sequence[Match], out: Path, title: str, subtitle: str = "",
                  thumb_px: int = 480) -> GalleryStats:
    """Render and write atomically (temp file, fsync, rename); the page is private (0600) like the index."""
    page, missing = render_gallery(matches, title, subtitle, thumb_px)
    data = page.encode("utf-8")
    atomic_write(Path(out), data, mode=0o600)
    return GalleryStats(photos=len(matches), missing=missing, bytes=len(data))
