"""Cut the faces out of labelled real photos the way the indexer does, for training.

    python models/training/prepare_real_faces.py \
        --photos ../shared/data/facial_expressions_train --out models/data/real_train.npz

Each photo goes through the indexer's own path -- decode (EXIF orientation) -> YuNet ->
largest face -> `indexer.vision.crop.crop_faces` with YuNet's margin -- so the model
trains on exactly the crops it will see at run time (no train/serve skew).  Photos with
no face are listed and left out.  Output: `images` (N, 48, 48) uint8, `labels` (N,)
int64 in `CLASSES` order, `files`.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from indexer.media.decode import decode  # noqa: E402
from indexer.media.exif import read_exif  # noqa: E402
from indexer.vision.crop import CLASSES, FACE_MARGINS, crop_faces  # noqa: E402
from indexer.vision.faces import YuNetDetector  # noqa: E402

SHARED = ROOT.parent / "shared"
YUNET = SHARED / "models" / "face_detection_yunet_2026may.onnx"


def largest_face_crop(path: Path, detector: YuNetDetector) -> np.ndarray | None:
    """The 48x48 crop of the largest face in one photo, or None when no face is found."""
    data = path.read_bytes()
    dec = decode(data, path.suffix, read_exif(data).orientation)
    dets = detector.detect(dec.image, 24)
    if not dets:
        return None
    best = max(dets, key=lambda d: d.box[2] * d.box[3])
    return crop_faces(dec.image, [best.box], margin=FACE_MARGINS["yunet"])[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, default=SHARED / "data" / "facial_expressions_train")
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "data" / "real_train.npz")
    ap.add_argument("--detector", type=Path, default=YUNET)
    args = ap.parse_args()
    detector = YuNetDetector(args.detector)
    with open(args.photos / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["label"] in CLASSES]
    crops, labels, files, missed = [], [], [], []
    for i, r in enumerate(rows):
        crop = largest_face_crop(args.photos / "images" / r["file"], detector)
        if crop is None:
            missed.append(r["file"])
            continue
        crops.append(crop)
        labels.append(CLASSES.index(r["label"]))
        files.append(r["file"])
        if (i + 1) % 500 == 0:
            print(f"{i + 1}/{len(rows)} photos, {len(missed)} without a face", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, images=np.stack(crops), labels=np.array(labels, np.int64), files=np.array(files),
                        classes=np.array(CLASSES))
    tmp.replace(args.out)
    counts = np.bincount(labels, minlength=len(CLASSES))
    print(f"{len(crops)} faces from {len(rows)} photos ({len(missed)} without a face) -> {args.out}")
    print("per class: " + ", ".join(f"{c} {n}" for c, n in zip(CLASSES, counts, strict=True) if n))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
