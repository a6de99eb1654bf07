"""Choose the tag threshold on real labelled photos, through the real pipeline.

    python benchmarks/tag_threshold.py [--detector yunet|haar] [--thresholds 0,0.4,0.5,0.6,0.7,0.8,0.9]

Runs decode -> detect -> crop -> int8 model over ../shared/data/facial_expressions_dev (one
labelled face per photo; contempt left out: not a class of ours) and prints, per threshold,
how many photos get a tag, the precision of those tags (tag == label) and the recall (photos
whose label became a tag) -- overall and without "neutral", the class that rarely matters
for search.  `tag_min_score` in the config defaults to the value chosen from this table.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer.pipeline import Analyzer  # noqa: E402
from indexer.vision.crop import CLASSES  # noqa: E402

DEV = ROOT.parent / "shared" / "data" / "facial_expressions_dev"
YUNET = ROOT.parent / "shared" / "models" / "face_detection_yunet_2026may.onnx"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detector", default="yunet", choices=["yunet", "haar"])
    ap.add_argument("--thresholds", default="0,0.4,0.5,0.6,0.7,0.8,0.9")
    ap.add_argument("--model", type=Path, default=None, help="a .tflite other than the bundled one")
    args = ap.parse_args()
    analyzer = Analyzer("haar", model_path=args.model)
    if args.detector == "yunet":
        from indexer.vision.faces import YuNetDetector

        analyzer.detector = YuNetDetector(YUNET)
    with open(DEV / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["label"] in CLASSES]
    faces = []  # (label, [(emotion, score), ...]) per photo
    for r in rows:
        res = analyzer.analyze(DEV / "images" / r["file"])
        faces.append((r["label"], [(f.emotion, f.score) for f in res.faces]))
    found = sum(1 for _, fs in faces if fs)
    top1 = sum(1 for label, fs in faces if fs and max(fs, key=lambda x: x[1])[0] == label)
    print(f"{len(rows)} photos ({args.detector}, {analyzer.model.model_id}): faces found in {found / len(rows):.1%}; "
          f"end-to-end accuracy of the most confident face {top1 / len(rows):.3f} (of all photos), "
          f"{top1 / max(1, found):.3f} (of photos with a face)")
    print(f"{'threshold':>9} {'tags':>6} {'precision':>10} {'recall':>7} {'precision*':>11} {'recall*':>8}   "
          "(* = without neutral)")
    for t in (float(x) for x in args.thresholds.split(",")):
        tags = [(label, {e for e, s in fs if s >= t}) for label, fs in faces]
        n = sum(len(ts) for _, ts in tags)
        right = sum(1 for label, ts in tags if label in ts)
        n_star = sum(len(ts - {"neutral"}) for _, ts in tags)
        right_star = sum(1 for label, ts in tags if label in ts and label != "neutral")
        total_star = sum(1 for label, _ in tags if label != "neutral")
        print(f"{t:9.2f} {n:6d} {right / max(1, n):10.3f} {right / len(tags):7.3f} "
              f"{right_star / max(1, n_star):11.3f} {right_star / max(1, total_star):8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
