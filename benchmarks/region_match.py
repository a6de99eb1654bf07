"""How far a named face region written by another program lies from the face our detector finds:
the measurement behind `media.regions.MATCH_IOU`.

    python benchmarks/region_match.py [--photos 40] [--faces 3]

Builds JPEGs of 2-4 real faces from ../shared/data/facial_expressions_dev pasted into a scene at
150-450 px (some photos stored turned, EXIF orientation 6 or 8), names each face with a region
written by exiftool in the MWG layout (as digiKam and Lightroom write it, AppliedToDimensions of
the stored image), runs the real pipeline (`Analyzer.analyze`: decode, YuNet, model), reads the
regions back through `media.regions.named_regions`, and prints the IoU between each region and
its own face's detection, and the largest IoU between a region and any *other* face.

Two kinds of region stand for what programs write:
  haar   : OpenCV's Haar cascade box (another detector's idea of the face, as digiKam's
           older detector and many photo managers draw it: tighter than YuNet's);
  drawn  : the whole pasted picture, as a person drags a loose box around a head in Lightroom.
A threshold must sit below nearly all "own" IoUs and above every "other" IoU.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer.media.regions import iou, named_regions  # noqa: E402
from indexer.pipeline import Analyzer  # noqa: E402
from tests.photo_factory import background, dev_faces, rotate_for_orientation, write_photo  # noqa: E402


def haar_box(face_bgr: np.ndarray) -> tuple[float, float, float, float] | None:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    grey = cv2.cvtColor(face_bgr, cv2.COLOR_BGR2GRAY)
    found = cascade.detectMultiScale(grey, 1.1, 5, minSize=(40, 40))
    if len(found) == 0:
        return None
    x, y, w, h = max(found, key=lambda b: b[2] * b[3])
    return float(x), float(y), float(w), float(h)


def mwg_args(regions: list[tuple[str, tuple[float, float, float, float]]], width: int, height: int) -> list[str]:
    """exiftool arguments writing MWG regions (normalised centre x/y, w/h of the stored image)."""
    items = []
    for name, (x, y, w, h) in regions:
        items.append(f"{{Area={{X={(x + w / 2) / width:.6f},Y={(y + h / 2) / height:.6f},"
                     f"W={w / width:.6f},H={h / height:.6f},Unit=normalized}},Name={name},Type=Face}}")
    return [f"-XMP-mwg-rs:RegionInfo={{AppliedToDimensions={{W={width},H={height},Unit=pixel}},"
            f"RegionList=[{','.join(items)}]}}"]


def stored_box(box, orientation: int, width: int, height: int):
    """A box of the upright (displayed) canvas in the frame of the stored, turned image."""
    x, y, w, h = box
    if orientation == 6:   # stored = displayed turned 90 CCW: (u, v) -> (v, W - u)
        return y, width - x - w, h, w
    if orientation == 8:   # stored = displayed turned 90 CW: (u, v) -> (H - v, u)
        return height - y - h, x, h, w
    return box


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=40)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if not shutil.which("exiftool"):
        sys.exit("exiftool not installed (apt-get install libimage-exiftool-perl)")
    rng = random.Random(args.seed)
    faces = dev_faces(ROOT.parent / "shared" / "data" / "facial_expressions_dev", None, 1104)
    faces = [f for f in faces if cv2.imread(str(f)) is not None and min(cv2.imread(str(f)).shape[:2]) >= 300]
    rng.shuffle(faces)
    analyzer = Analyzer("yunet")
    own: dict[str, list[float]] = {"haar": [], "drawn": []}
    other: dict[str, list[float]] = {"haar": [], "drawn": []}
    missed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.photos):
            count = rng.randint(2, 4)
            width, height = 2400, 1600
            canvas = background(width, height, seed=n)
            truth = []  # (kind, name, box in the displayed canvas)
            slot = width // count
            for k in range(count):
                face = cv2.imread(str(faces.pop()))
                px = rng.randint(150, min(450, slot - 20))
                img = cv2.resize(face, (px, px), interpolation=cv2.INTER_AREA)
                x, y = k * slot + rng.randint(0, slot - px), rng.randint(0, height - px)
                canvas[y:y + px, x:x + px] = img
                truth.append(("drawn", f"drawn{k}", (x, y, px, px)))
                hb = haar_box(img)
                if hb:
                    truth.append(("haar", f"haar{k}", (x + hb[0], y + hb[1], hb[2], hb[3])))
            orientation = rng.choice([1, 1, 6, 8])
            stored = rotate_for_orientation(canvas, orientation)
            sh, sw = stored.shape[:2]
            path = write_photo(Path(tmp) / f"p{n}.jpg", stored, orientation=orientation)
            for kind in ("haar", "drawn"):
                regions = [(name, stored_box(b, orientation, width, height)) for k_, name, b in truth if k_ == kind]
                subprocess.run(["exiftool", "-q", "-overwrite_original", *mwg_args(regions, sw, sh), str(path)],
                               check=True)
                result = analyzer.analyze(path)
                found, _ = named_regions(path, path.read_bytes(), result.orientation, (result.width, result.height))
                dets = [f.box for f in result.faces]
                for region in found:
                    k = int(region.name[len(kind):])
                    face_box = next(b for k_, nm, b in truth if nm == f"drawn{k}")
                    cx, cy = face_box[0] + face_box[2] / 2, face_box[1] + face_box[3] / 2
                    mine = [d for d in dets if abs(d[0] + d[2] / 2 - cx) < face_box[2] / 2
                            and abs(d[1] + d[3] / 2 - cy) < face_box[3] / 2]
                    rb = region.box
                    rpx = (rb[0] * result.width, rb[1] * result.height, rb[2] * result.width, rb[3] * result.height)
                    if not mine:
                        missed += kind == "drawn"
                        continue
                    own[kind].append(iou(rpx, mine[0]))
                    other[kind].extend(iou(rpx, d) for d in dets if d is not mine[0])
    for kind in ("haar", "drawn"):
        a = np.array(own[kind])
        b = np.array(other[kind] or [0.0])
        print(f"{kind:6s} own face: n={len(a)} min={a.min():.3f} p1={np.percentile(a, 1):.3f} "
              f"p5={np.percentile(a, 5):.3f} median={np.median(a):.3f} | other faces: n={len(other[kind])} "
              f"max={b.max():.3f}")
    print(f"faces YuNet missed (region kept unmatched): {missed}")


if __name__ == "__main__":
    main()
