"""Learning curves of training runs against issue 11's PublicTest targets, as one PNG.

    python models/training/curves.py models/runs/res-v3 models/runs/res-v4 --out models/learning_curves.png

Two panels, one line per run, from each run's `log.csv` (float, no TTA, as train.py validates
every epoch): FER-2013 label accuracy against 1.1's 67.9 %, and FER+ clear-majority accuracy
against 80 %.  The shipped figures are int8 with flip TTA, a few tenths higher; the curves are
for seeing whether a run is still climbing towards a target.  Drawn with OpenCV, like the
confusion matrices (no plotting dependency).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from indexer.fsutil import atomic_write

PANELS = (("val_fer2013", "FER-2013 labels, PublicTest", 0.679, "1.1: 67.9 %"),
          ("val_ferplus_majority", "FER+ clear majority, PublicTest", 0.80, "target 80 %"))
COLOURS = ((180, 90, 20), (30, 120, 230), (40, 160, 40), (150, 40, 150), (60, 60, 200), (120, 120, 120))  # BGR


def read_log(run: Path) -> dict[str, np.ndarray]:
    with open(run / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {key: np.array([float(r[key]) for r in rows]) for key in ("epoch", *(p[0] for p in PANELS))}


def draw(runs: dict[str, dict[str, np.ndarray]], out: Path) -> None:
    import cv2

    width, height, left, top, bottom = 560, 380, 60, 40, 60
    img = np.full((height, width * len(PANELS), 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    max_epoch = max(int(r["epoch"].max()) for r in runs.values())
    lo, hi = 0.40, 0.90
    for p, (key, title, target, target_label) in enumerate(PANELS):
        x0, plot_w, plot_h = p * width + left, width - left - 20, height - top - bottom

        def to_px(epoch: float, value: float, x0: int = x0, plot_w: int = plot_w, plot_h: int = plot_h) -> tuple:
            x = x0 + int(round((epoch - 1) / max(max_epoch - 1, 1) * plot_w))
            y = top + int(round((hi - min(max(value, lo), hi)) / (hi - lo) * plot_h))
            return x, y

        cv2.putText(img, title, (x0, 24), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.rectangle(img, (x0, top), (x0 + plot_w, top + plot_h), (0, 0, 0), 1)
        for value in np.arange(lo, hi + 1e-9, 0.1):
            y = to_px(1, value)[1]
            cv2.line(img, (x0, y), (x0 + plot_w, y), (225, 225, 225), 1)
            cv2.putText(img, f"{value:.0%}", (x0 - 45, y + 4), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        for epoch in range(5, max_epoch + 1, 5):
            x = to_px(epoch, lo)[0]
            cv2.putText(img, str(epoch), (x - 6, top + plot_h + 16), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, "epoch", (x0 + plot_w // 2 - 20, top + plot_h + 34), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        y = to_px(1, target)[1]
        for xa in range(x0, x0 + plot_w, 12):  # dashed target line
            cv2.line(img, (xa, y), (min(xa + 6, x0 + plot_w), y), (0, 0, 200), 1)
        cv2.putText(img, target_label, (x0 + plot_w - 100, y + 16), font, 0.42, (0, 0, 200), 1, cv2.LINE_AA)
        for k, (name, log) in enumerate(runs.items()):
            colour = COLOURS[k % len(COLOURS)]
            points = np.array([to_px(e, v) for e, v in zip(log["epoch"], log[key], strict=True)], np.int32)
            cv2.polylines(img, [points], False, colour, 2, cv2.LINE_AA)
            best = int(np.argmax(log[key]))
            cv2.putText(img, f"{name} (best {log[key][best]:.1%})", (x0 + 8, top + 18 + 16 * k), font, 0.42,
                        colour, 1, cv2.LINE_AA)
    ok, png = cv2.imencode(".png", img)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, png.tobytes())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if missing := [str(r) for r in args.runs if not (r / "log.csv").is_file()]:
        ap.error("not a training run (no log.csv): " + ", ".join(missing))
    runs = {run.name: read_log(run) for run in args.runs}
    for name, log in runs.items():
        last = int(log["epoch"][-1])
        print(f"{name}: {last} epochs; " + ", ".join(
            f"{key} best {log[key].max():.1%} (epoch {int(log['epoch'][log[key].argmax()])}), last {log[key][-1]:.1%}"
            for key, *_ in PANELS))
    draw(runs, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
