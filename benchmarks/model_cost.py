"""What one face costs the emotion model: multiply-accumulates counted from the exported
graph, and milliseconds per face at batch 1 on one thread, next to the CPU's flags.

    python benchmarks/model_cost.py [--model PATH ...] [--faces 500]

MACs are read off the .tflite file itself (every CONV_2D, DEPTHWISE_CONV_2D and
FULLY_CONNECTED op: output elements x kernel taps x input channels), so the figure is the
graph that ships, not the training code's idea of it.  "with TTA" doubles one pass when the
model's metadata turns flip test-time augmentation on by default.  Latency goes through the
indexer's own runtime (`EmotionModel`, preprocessing and softmax included), batch 1, one
interpreter thread, median of `--faces` faces.  int8 convolutions run ~12x faster on a CPU
with VNNI than with plain AVX2, so the flags are printed with every figure.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer.vision.emotion import EmotionModel, default_model_path  # noqa: E402
from indexer.vision.model_cost import cpu_description, graph_macs  # noqa: E402


def ms_per_face(model: EmotionModel, faces: np.ndarray, tta: bool) -> float:
    times = []
    for face in faces:
        t0 = time.perf_counter()
        model.predict(face[None], tta=tta)
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, action="append", help="a .tflite (default: the bundled model)")
    ap.add_argument("--faces", type=int, default=500)
    args = ap.parse_args()
    val = ROOT.parent / "shared" / "data" / "fer2013" / "fer2013_val.npz"
    rng = np.random.default_rng(0)
    if val.exists():
        images = np.load(val)["images"]
        faces = images[rng.choice(len(images), min(args.faces, len(images)), replace=False)]
    else:
        faces = rng.integers(0, 256, (args.faces, 48, 48), dtype=np.uint8)
    print(f"CPU: {cpu_description()}")
    print(f"{'model':32} {'M MACs/pass':>11} {'TTA default':>11} {'M MACs/face':>11} "
          f"{'ms/face':>8} {'ms/face TTA':>11}")
    for path in args.model or [default_model_path()]:
        total, _per_op = graph_macs(path)
        model = EmotionModel(path, threads=1)
        tta = model.tta
        face_macs = total * (2 if tta else 1)
        ms_plain, ms_tta = ms_per_face(model, faces, False), ms_per_face(model, faces, True)
        print(f"{path.name:32} {total / 1e6:11.1f} {('on' if tta else 'off'):>11} {face_macs / 1e6:11.1f} "
              f"{ms_plain:8.3f} {ms_tta:11.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
