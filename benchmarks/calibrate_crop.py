"""Calibrate how face boxes are framed for the model, on real photos (not FER's 48x48 crops).

    python benchmarks/calibrate_crop.py [--margins 0,0.05,0.1,0.15,0.2,0.3] [--limit 0] [--yunet-cutoffs 0.8]
        [--model FILE.tflite] [--confusion-png models/confusion_matrix_real.png]

For each detector (YuNet from ../shared, Haar from OpenCV) and each margin, runs the real
path -- decode -> detect -> indexer.vision.crop.crop_faces(margin) -> int8 model -- over
../shared/data/facial_expressions_dev (labelled photos; no fear images; contempt left out)
and prints detection rate, accuracy and macro recall (balanced accuracy) of the top emotion
of the largest face.  The margin chosen per detector is FACE_MARGINS in
indexer/vision/crop.py; at that margin the confusion matrix is printed too, with the two
errors that matter most to a photographer: calm and surprised faces called angry.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer.media.decode import decode  # noqa: E402
from indexer.media.exif import read_exif  # noqa: E402
from indexer.vision.confusion_image import draw_confusion  # noqa: E402
from indexer.vision.crop import CLASSES, FACE_MARGINS, crop_faces  # noqa: E402
from indexer.vision.emotion import EmotionModel  # noqa: E402
from indexer.vision.evaluate import confusion_matrix  # noqa: E402
from indexer.vision.faces import HaarDetector, YuNetDetector  # noqa: E402

DEV = ROOT.parent / "shared" / "data" / "facial_expressions_dev"
YUNET = ROOT.parent / "shared" / "models" / "face_detection_yunet_2026may.onnx"


def print_confusion(name: str, margin: float, cm: np.ndarray) -> None:
    """Rows: true label (classes present in the set), columns: the model's top emotion."""
    a, n, s = CLASSES.index("angry"), CLASSES.index("neutral"), CLASSES.index("surprise")
    print(f"\n{name} at margin {margin:.2f} (production): rows = label, columns = predicted")
    print(f"{'':9}" + "".join(f"{c[:8]:>9}" for c in CLASSES) + f"{'recall':>9}")
    for i, c in enumerate(CLASSES):
        if cm[i].sum():
            print(f"{c:9}" + "".join(f"{v:9d}" for v in cm[i]) + f"{cm[i, i] / cm[i].sum():9.1%}")
    print(f"neutral -> angry: {cm[n, a]} of {cm[n].sum()}; surprise -> angry: {cm[s, a]} of {cm[s].sum()}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--margins", default="0,0.05,0.1,0.15,0.2,0.3")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--model", type=Path, default=None, help="a .tflite other than the bundled one")
    ap.add_argument("--yunet-cutoffs", default="", help="also YuNet at these score cut-offs, e.g. 0.8,0.9")
    ap.add_argument("--confusion-png", type=Path, default=None,
                    help="also draw YuNet's confusion matrix at its production margin here (the model card's)")
    args = ap.parse_args()
    margins = sorted({float(m) for m in args.margins.split(",")} | set(FACE_MARGINS.values()))
    with open(DEV / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["label"] in CLASSES]
    if args.limit:
        rows = rows[: args.limit]
    model = EmotionModel(args.model, threads=1)
    detectors = {"yunet": YuNetDetector(YUNET), "haar": HaarDetector()}
    for cutoff in filter(None, args.yunet_cutoffs.split(",")):
        detectors[f"yunet@{float(cutoff):g}"] = YuNetDetector(YUNET, score_threshold=float(cutoff))
    print(f"{len(rows)} labelled photos; model {model.model_id}; labels "
          + ", ".join(f"{c} {sum(r['label'] == c for r in rows)}" for c in CLASSES))
    print(f"{'detector':9} {'margin':>6} {'found':>6} {'2+ boxes':>9} {'accuracy':>9} {'macro recall':>13}")
    confusions: list[tuple[str, float, np.ndarray]] = []
    for name, det in detectors.items():
        crops_by_margin: dict[float, list[np.ndarray]] = {m: [] for m in margins}
        labels, several = [], 0
        for r in rows:
            data = (DEV / "images" / r["file"]).read_bytes()
            dec = decode(data, Path(r["file"]).suffix, read_exif(data).orientation)
            dets = det.detect(dec.image, 24)
            several += len(dets) > 1  # one face per photo here: a second box is most likely false
            if not dets:
                continue
            best = max(dets, key=lambda d: d.box[2] * d.box[3])
            labels.append(CLASSES.index(r["label"]))
            for m in margins:
                crops_by_margin[m].append(crop_faces(dec.image, [best.box], margin=m)[0])
        y = np.array(labels)
        for m in margins:
            pred = model.predict(np.stack(crops_by_margin[m])).argmax(axis=1)
            present = [c for c in range(len(CLASSES)) if (y == c).any()]
            macro = np.mean([(pred[y == c] == c).mean() for c in present])
            print(f"{name:9} {m:6.2f} {len(y) / len(rows):6.1%} {several:9d} {(pred == y).mean():9.3f} {macro:13.3f}")
            if m == FACE_MARGINS.get(name):
                confusions.append((name, m, confusion_matrix(y, pred)))
    for name, m, cm in confusions:
        print_confusion(name, m, cm)
        if name == "yunet" and args.confusion_png:
            draw_confusion(cm, [f"{model.model_id}, int8: real photos (facial_expressions_dev)",
                                f"YuNet, largest face, margin {m:.2f}; {int(cm.sum())} faces"], args.confusion_png)
            print(f"wrote {args.confusion_png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
