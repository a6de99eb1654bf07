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

from indexer.vision.emotion import EmotionModel, _interpreter_class, default_model_path  # noqa: E402

FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def cpu_description() -> str:
    """CPU model and the flags that decide int8 speed (x86: AVX2/AVX-512/VNNI; Arm: dot product)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    name = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "?")
    flags = set()
    for ln in info.splitlines():
        if ln.startswith(("flags", "Features")):
            flags.update(ln.split(":", 1)[1].split())
    present = [f for f in FLAGS if f in flags]
    vnni = "VNNI" if {"avx512_vnni", "avx_vnni"} & flags else "no VNNI"
    return f"{name}; flags: {', '.join(present) or 'none of ' + '/'.join(FLAGS)} ({vnni})"


def graph_macs(path: Path) -> tuple[int, dict[str, int]]:
    """Multiply-accumulates of one forward pass, total and per op type, from the .tflite graph."""
    interpreter_cls, _ = _interpreter_class()
    interp = interpreter_cls(model_path=str(path))
    interp.allocate_tensors()
    shapes = {d["index"]: tuple(int(s) for s in d["shape"]) for d in interp.get_tensor_details()}
    per_op: dict[str, int] = {}
    for op in interp._get_ops_details():
        name = op["op_name"]
        if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            continue
        out = shapes[int(op["outputs"][0])]
        weights = shapes[int(op["inputs"][1])]
        if name == "CONV_2D":  # weights (out_c, kh, kw, in_c); output (1, h, w, out_c)
            macs = int(np.prod(out[1:])) * weights[1] * weights[2] * weights[3]
        elif name == "DEPTHWISE_CONV_2D":  # weights (1, kh, kw, out_c): one input channel per output
            macs = int(np.prod(out[1:])) * weights[1] * weights[2]
        else:  # FULLY_CONNECTED: weights (units, in)
            macs = int(np.prod(out[1:])) * weights[1]
        per_op[name] = per_op.get(name, 0) + macs
    return sum(per_op.values()), per_op


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
