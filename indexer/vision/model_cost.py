"""What a model file costs to run: multiply-accumulates counted from the .tflite graph itself,
and the CPU features that decide how fast int8 convolutions run here.

Used by `benchmarks/model_cost.py`, `models/training/export.py` (the model card's figures)
and `moodindex model info`, so the cost quoted anywhere is the graph that ships.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from indexer.vision.emotion import _interpreter_class

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
