"""Float figures of Keras checkpoints on real photos: a diagnostic, never a selection rule.

    python models/training/dev_diagnostics.py models/runs/res-v3/best.keras [more.keras ...]

Cuts the largest face of every labelled photo in ../shared/data/facial_expressions_dev once
(YuNet, the production margin, `indexer.vision.crop`, cached under models/data/), then prints
each checkpoint's accuracy, balanced accuracy (mean per-class recall), per-class recall and
the errors that matter most (neutral -> angry, surprise -> angry, surprise -> neutral).  It
exists to compare training recipes (the ingredient table in models/README.md) without an
int8 export per run; checkpoints are chosen on PublicTest only (train.py).  The shipped
model's figures come from benchmarks/calibrate_crop.py, int8, through the indexer's runtime.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from indexer.vision.crop import CLASSES, normalise  # noqa: E402
from indexer.vision.evaluate import confusion_matrix  # noqa: E402

DEV = ROOT.parent / "shared" / "data" / "facial_expressions_dev"
YUNET = ROOT.parent / "shared" / "models" / "face_detection_yunet_2026may.onnx"
CACHE = ROOT / "models" / "data" / "dev_crops.npz"


def dev_crops(cache: Path = CACHE) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, 48, 48) crops and labels of the dev photos, cut as the indexer cuts them."""
    if cache.exists():
        d = np.load(cache)
        return d["images"], d["labels"]
    from indexer.media.decode import decode
    from indexer.media.exif import read_exif
    from indexer.vision.crop import FACE_MARGINS, crop_faces
    from indexer.vision.faces import YuNetDetector

    detector = YuNetDetector(YUNET)
    with open(DEV / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["label"] in CLASSES]
    crops, labels = [], []
    for r in rows:
        data = (DEV / "images" / r["file"]).read_bytes()
        image = decode(data, Path(r["file"]).suffix, read_exif(data).orientation).image
        faces = detector.detect(image, 24)
        if faces:
            largest = max(faces, key=lambda d: d.box[2] * d.box[3])
            crops.append(crop_faces(image, [largest.box], margin=FACE_MARGINS["yunet"])[0])
            labels.append(CLASSES.index(r["label"]))
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, images=np.stack(crops), labels=np.array(labels))
    print(f"{len(crops)} faces in {len(rows)} dev photos, cached in {cache}", flush=True)
    return np.stack(crops), np.array(labels)


def dev_figures(model, x: np.ndarray, y: np.ndarray) -> dict:
    """Accuracy, balanced accuracy, per-class recall and the three errors that matter most."""
    pred = model.predict(x, batch_size=256, verbose=0).argmax(axis=1)
    cm = confusion_matrix(y, pred)
    present = [c for c in range(len(CLASSES)) if (y == c).any()]
    recall = {CLASSES[c]: cm[c, c] / cm[c].sum() for c in present}
    a, n, s = (CLASSES.index(c) for c in ("angry", "neutral", "surprise"))
    return {"accuracy": float((pred == y).mean()), "balanced": float(np.mean(list(recall.values()))),
            "recall": recall, "neutral_to_angry": int(cm[n, a]), "surprise_to_angry": int(cm[s, a]),
            "surprise_to_neutral": int(cm[s, n])}


def load_checkpoint(path: Path):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # one predict per checkpoint: retracing is expected
    return tf.keras.models.load_model(path, compile=False, safe_mode=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", type=Path)
    args = ap.parse_args()
    if missing := [str(p) for p in args.checkpoints if not p.is_file()]:
        ap.error("no such checkpoint: " + ", ".join(missing))
    images, y = dev_crops()
    x = normalise(images)
    present = [c for c in CLASSES if (y == CLASSES.index(c)).any()]
    print(f"{'checkpoint':44} {'acc':>6} {'bal':>6} " + " ".join(f"{c[:7]:>7}" for c in present)
          + "   n->a  s->a  s->n")
    for path in args.checkpoints:
        f = dev_figures(load_checkpoint(path), x, y)
        print(f"{str(path)[-44:]:44} {f['accuracy']:6.1%} {f['balanced']:6.1%} "
              + " ".join(f"{f['recall'][c]:7.1%}" for c in present)
              + f" {f['neutral_to_angry']:6d}{f['surprise_to_angry']:6d}{f['surprise_to_neutral']:6d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
