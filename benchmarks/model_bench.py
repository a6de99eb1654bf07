"""How to feed faces to the emotion model: measured, one interpreter thread.

    python benchmarks/model_bench.py [--model PATH] [--faces N]

Compares, per face, (1) a call per photo with 1-4 faces, resizing the interpreter's
input to each call's batch (what EmotionModel does), (2) the same calls fed one face at
a time through a batch-1 interpreter, (3) one call per photo padded to a fixed batch of 4,
and (4) large batches of 8..128 faces, which sets EmotionModel's MAX_BATCH.
Uses the validation faces from ../shared when present, else random crops.
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

from indexer.vision import emotion  # noqa: E402
from indexer.vision.emotion import EmotionModel  # noqa: E402


def faces(n: int) -> np.ndarray:
    val = ROOT.parent / "shared" / "data" / "fer2013" / "fer2013_val.npz"
    if val.exists():
        images = np.load(val)["images"]
        return images[np.random.default_rng(0).choice(len(images), n, replace=False)]
    return np.random.default_rng(0).integers(0, 256, (n, 48, 48), dtype=np.uint8)


def per_face_ms(fn, groups: list[np.ndarray], repeats: int = 3) -> float:
    total = sum(len(g) for g in groups)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for g in groups:
            fn(g)
        best = min(best, time.perf_counter() - t0)
    return 1000.0 * best / total


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path)
    p.add_argument("--faces", type=int, default=600)
    args = p.parse_args()
    x = faces(args.faces)
    sizes = np.random.default_rng(1).integers(1, 5, len(x))  # 1-4 faces per photo
    groups, start = [], 0
    for s in sizes:
        if start >= len(x):
            break
        groups.append(x[start:start + s])
        start += s

    m = EmotionModel(args.model, threads=1, tta=False)
    m.predict(x[:4])
    resize = per_face_ms(m.predict, groups)

    def one_by_one(g: np.ndarray) -> None:
        for f in g:
            m.predict(f[None])

    loop = per_face_ms(one_by_one, groups)

    def padded(g: np.ndarray) -> None:
        m.predict(np.concatenate([g, np.zeros((4 - len(g), 48, 48), np.uint8)]))

    pad4 = per_face_ms(padded, groups)
    print(f"photos of 1-4 faces ({len(groups)} calls, {sum(map(len, groups))} faces), ms per face:")
    print(f"  resize to each call's batch  {resize:.3f}")
    print(f"  one face per invoke          {loop:.3f}")
    print(f"  padded to a fixed batch of 4 {pad4:.3f}")
    print("large batches, ms per face:")
    for b in (8, 16, 32, 64, 128):
        emotion.MAX_BATCH = b
        m.predict(x[:b])
        t = [per_face_ms(m.predict, [x], repeats=1) for _ in range(3)]
        print(f"  MAX_BATCH {b:>3}  {statistics.median(t):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
