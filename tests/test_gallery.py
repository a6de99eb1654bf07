"""The HTML gallery: self-contained, escaped, boxes on upright thumbnails; rendered in headless Chromium."""

from __future__ import annotations

import base64
import os
import shutil
import stat
import subprocess
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest

from indexer.db.session import session_scope
from indexer.query import parse, search
from indexer.report.gallery import render_gallery, write_gallery
from tests.factories import add_photo
from tests.photo_factory import background, rotate_for_orientation, write_photo

NASTY = 'x <img src=x onerror=alert(1)> & "q" \'s.jpg'


class Dom(HTMLParser):
    """Just enough of a DOM: every start tag with its attributes, and the text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def with_class(self, name: str) -> list[dict[str, str]]:
        return [a for _, a in self.tags if name in a.get("class", "").split()]


def _upright(width: int, height: int, seed: int) -> np.ndarray:
    """A photo-like image with a red band at the top, to check which way up thumbnails are."""
    img = background(width, height, seed)
    img[: height // 10] = (0, 0, 230)
    for i, cx in enumerate(range(width // 4, width, width // 4)):
        cv2.ellipse(img, (cx, height // 2), (width // 14, height // 9), 0, 0, 360, (120, 170, 220 - 30 * i), -1)
    return img


@pytest.fixture()
def library(tmp_path: Path, engine) -> dict[str, str]:
    """Real image files and their index rows; returns name -> path."""
    lib = tmp_path / "lib"
    paths = {
        "group": write_photo(lib / "group.jpg", _upright(1600, 1200, 1), taken=datetime(2019, 7, 14, 18, 3)),
        # stored sideways with EXIF orientation 6: displayed 900 wide, 1200 high
        "portrait": write_photo(lib / "portrait.jpg", rotate_for_orientation(_upright(900, 1200, 2), 6),
                                taken=datetime(2019, 3, 2, 10, 0), orientation=6),
        "nasty": write_photo(lib / NASTY, _upright(1200, 900, 3)),
    }
    with session_scope(engine) as s:
        add_photo(s, str(paths["group"]), datetime(2019, 7, 14, 18, 3),
                  [("happy", 0.9), ("sad", 0.6), ("surprise", 0.7), ("happy", 0.5), ("neutral", 0.8)],
                  boxes=[(300, 500, 200, 200), (700, 500, 200, 200), (1100, 500, 200, 200), (50, 20, 100, 100),
                         (1400, 1000, 150, 150)], width=1600, height=1200)
        add_photo(s, str(paths["portrait"]), datetime(2019, 3, 2, 10, 0), [("sad", 0.95)],
                  boxes=[(300, 500, 300, 300)], width=900, height=1200, orientation=6)
        add_photo(s, str(paths["nasty"]), datetime(2019, 5, 5, 5, 5), [("angry", 0.8)], date_source="file",
                  width=1200, height=900)
        add_photo(s, str(lib / "gone.jpg"), datetime(2019, 1, 1), [("fear", 0.7)])
    return {k: str(v) for k, v in paths.items()} | {"gone": str(lib / "gone.jpg")}


def _matches(engine, text: str = "2019"):  # noqa: ANN001, ANN202
    with session_scope(engine) as s:
        return search(s, parse(text), limit=None)


def test_page_is_self_contained_escaped_and_complete(engine, library) -> None:
    matches = _matches(engine)
    html, missing = render_gallery(matches, title='<b>"2019"</b>', subtitle=parse("2019").describe())
    dom = Dom(html)
    assert missing == 1
    cards = dom.with_class("card")
    assert [c["data-path"] for c in cards] == [library["group"], library["nasty"], library["portrait"],
                                               library["gone"]]  # newest first (no emotion word)
    # self-contained: every resource is a data: URI, no scripts, no external links, a CSP that enforces it
    for tag, attrs in dom.tags:
        assert tag not in ("script", "link", "iframe", "object", "embed")
        if tag == "img":
            assert attrs["src"].startswith("data:image/jpeg;base64,")
        if tag == "a":
            assert attrs["href"].startswith("file:///")
    assert "http://" not in html and "https://" not in html and "url(" not in html
    csp = [a for t, a in dom.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0]["content"]
    # paths are data: escaped everywhere
    assert "<img src=x onerror" not in html and "<b>" not in html
    assert NASTY in "".join(dom.text) and cards[1]["data-path"] == NASTY.join(library["nasty"].rsplit(NASTY, 1))
    # boxes over previews, 7 bars per face, estimated marker only where the date is the file's time
    assert len(dom.with_class("box")) == 5 + 1 + 1  # the missing file gets no preview and no boxes
    assert len(dom.with_class("fill")) == 7 * (5 + 1 + 1 + 1)
    assert len(dom.with_class("nopreview")) == 1
    assert len(dom.with_class("est")) == 1 and cards[1]["data-date-source"] == "file"
    assert html.count("<details>") == 1  # the group's faces beyond the first two fold away
    assert "3 more faces" in html


def test_boxes_are_placed_in_displayed_pixels(engine, library) -> None:
    html, _ = render_gallery(_matches(engine, "sad portraits"), title="t")
    box = Dom(html).with_class("box")[0]
    # face (300, 500, 300, 300) in a 900 x 1200 displayed photo
    assert box["style"] == "left:33.333%;top:41.667%;width:33.333%;height:25.000%"
    assert "aspect-ratio:900/1200" in html


def _one_photo_page(engine, tmp_path: Path, faces, boxes, text: str) -> Dom:  # noqa: ANN001
    path = write_photo(tmp_path / "edge.jpg", _upright(1600, 1200, 4))
    with session_scope(engine) as s:
        add_photo(s, str(path), datetime(2020, 1, 1), faces, boxes=boxes, width=1600, height=1200)
    html, _ = render_gallery(_matches(engine, text), title="t")
    return Dom(html)


def _edges(style: str) -> dict[str, float]:
    return {k: float(v.rstrip("%")) for k, v in (part.split(":") for part in style.split(";"))}


def test_boxes_are_clipped_to_the_photo(engine, tmp_path: Path) -> None:
    # a detector may return faces partly outside the frame: left, top, right and bottom edges
    boxes = [(-100, 500, 300, 200), (700, -50, 200, 200), (1500, 400, 300, 200), (700, 1100, 200, 300)]
    dom = _one_photo_page(engine, tmp_path, [("happy", 0.9)] * 4, boxes, "2020")
    placed = [_edges(b["style"]) for b in dom.with_class("box")]
    assert len(placed) == 4
    for box in placed:
        assert box["left"] >= 0 and box["top"] >= 0
        assert box["left"] + box["width"] <= 100.0005 and box["top"] + box["height"] <= 100.0005
    by_left = sorted(placed, key=lambda b: (b["left"], b["top"]))
    assert by_left[0] == {"left": 0.0, "top": 41.667, "width": 12.5, "height": 16.667}  # 0..200 of 1600
    assert by_left[-1] == {"left": 93.75, "top": 33.333, "width": 6.25, "height": 16.667}  # 1500..1600


def test_card_shows_the_face_that_matched_first(engine, tmp_path: Path) -> None:
    # the happy face is the last of four: it used to be folded away behind the sad and angry ones
    faces = [("sad", 0.9), ("angry", 0.8), ("neutral", 0.7), ("happy", 0.85)]
    dom = _one_photo_page(engine, tmp_path, faces, None, "happy")
    headings = [t for t in dom.text if t.startswith("Face ")]
    assert headings[0] == "Face 1: happy 85%"
    assert dom.with_class("box")[0]["data-emotion"] == "happy"  # the box numbers follow the same order
    assert dom.with_class("face")[0]["data-face"] == "1"
    # for another emotion, that emotion's face leads
    assert [t for t in Dom(render_gallery(_matches(engine, "angry"), title="t")[0]).text
            if t.startswith("Face ")][0] == "Face 1: angry 80%"


def test_thumbnails_are_upright_and_small(engine, library) -> None:
    html, _ = render_gallery(_matches(engine), title="t", thumb_px=320)
    images = {}
    for tag, attrs in Dom(html).tags:
        if tag == "img":
            data = base64.b64decode(attrs["src"].split(",", 1)[1])
            images[attrs["alt"]] = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    portrait = images["portrait.jpg"]
    assert portrait.shape[:2] == (320, 240)  # EXIF orientation applied: taller than wide
    top, bottom = portrait[:8].mean(axis=(0, 1)), portrait[-8:].mean(axis=(0, 1))
    assert top[2] > 180 and top[0] < 80 and bottom[2] < 180  # the red band is at the top
    assert images["group.jpg"].shape[:2] == (240, 320)


def test_write_is_atomic_and_private(engine, library, tmp_path: Path) -> None:
    out = tmp_path / "out" / "page.html"
    out.parent.mkdir()
    out.write_text("old")
    stats = write_gallery(_matches(engine), out, title="t")
    assert (stats.photos, stats.missing) == (4, 1) and stats.bytes == out.stat().st_size
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert os.listdir(out.parent) == ["page.html"]


def test_gallery_command(run_cli, library, tmp_path: Path) -> None:
    out = tmp_path / "g.html"
    res = run_cli("gallery", "happy", "or", "sad", "-o", out)
    assert res.exit_code == 0, res.stderr
    assert f"wrote {out} with 2 photos" in res.stderr
    assert len(Dom(out.read_text(encoding="utf-8")).with_class("card")) == 2
    res = run_cli("gallery", "2019", "--limit", "1", "-o", out)
    assert res.exit_code == 0 and "with 1 photos" in res.stderr
    empty = tmp_path / "empty.html"
    res = run_cli("gallery", "disgusted", "-o", empty)
    assert res.exit_code == 0 and "no photos match" in res.stderr and not empty.exists()
    res = run_cli("gallery", "happy", "-o", tmp_path / "no such dir" / "g.html")
    assert res.exit_code == 1 and res.stderr.startswith("moodindex: cannot write") and "Traceback" not in res.stderr
    res = run_cli("gallery", "hapy", "-o", out)
    assert res.exit_code == 2 and "'hapy' (did you mean happy" in res.stderr


# --- rendered by a real browser ----------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--force-device-scale-factor=1"]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    pytest.skip("headless rendering test needs Debian's `chromium` (apt-get install chromium)")


def _run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
def test_rendered_in_headless_chromium(engine, library, tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    write_gallery(_matches(engine), page, title=NASTY, subtitle="2019")
    url = page.as_uri()

    dom = _run_chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = Dom(dom.stdout)
    assert len(rendered.with_class("card")) == 4
    assert len(rendered.with_class("box")) == 7
    assert not [t for t, _ in rendered.tags if t == "script"]  # the escaped name did not become markup
    assert NASTY in "".join(rendered.text)

    shots = os.environ.get("MOODINDEX_SCREENSHOTS")  # keep them to look at: MOODINDEX_SCREENSHOTS=dir
    for name, size in (("phone", "390,844"), ("desktop", "1280,900")):
        png = Path(shots) / f"gallery-{name}.png" if shots else tmp_path / f"{name}.png"
        res = _run_chromium(tmp_path, f"--window-size={size}", f"--screenshot={png}", url)
        assert res.returncode == 0 and png.exists(), res.stderr[-2000:]
        img = cv2.imread(str(png))
        assert img.shape[1] == int(size.split(",")[0])
        assert img.std() > 20  # not a blank page
        # the sad box's colour (#3e63dd) and the happy one's (#f5a524) are on screen: boxes were drawn
        for bgr in ((221, 99, 62), (36, 165, 245)):
            near = np.abs(img.astype(int) - bgr).sum(axis=2) < 40
            assert near.sum() > 30, f"colour {bgr} not found in the {name} screenshot"
