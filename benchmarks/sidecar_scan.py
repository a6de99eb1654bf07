"""What noticing sidecar-only edits costs a rescan: `media.tagstate.sidecar_signatures` (one
listing per folder, a stat per sidecar found), and `sidecar_signature` one photo at a time (a stat
of each of its four possible sidecar names, what `tag` does per photo), against the one stat per
photo the walk already makes: in the same run, alternating, on a tree of empty files.

    python benchmarks/sidecar_scan.py [--photos 20000] [--sidecars 0.1] [--rounds 5]

Prints the median seconds per 10,000 photos of each and their ratio.  The files are empty: only
the file system's name lookups are measured (a warm dentry cache, as on a rescan).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from indexer.media.tagstate import sidecar_signature, sidecar_signatures  # noqa: E402


def build(folder: Path, photos: int, share: float) -> list[str]:
    paths = []
    every = max(1, round(1 / share)) if share > 0 else 0
    for i in range(photos):
        sub = folder / f"d{i // 200:04d}"
        sub.mkdir(exist_ok=True)
        p = sub / f"IMG_{i:06d}.jpg"
        p.touch()
        if every and i % every == 0:
            (sub / f"IMG_{i:06d}.jpg.xmp").write_text("<x:xmpmeta xmlns:x='adobe:ns:meta/'/>")
        paths.append(str(p))
    return paths


def timed(fn, paths: list[str]) -> float:  # noqa: ANN001
    start = time.perf_counter()
    for p in paths:
        fn(p)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=20000)
    ap.add_argument("--sidecars", type=float, default=0.1, help="share of photos with a sidecar")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = build(Path(tmp), args.photos, args.sidecars)
        base, one, batch = [], [], []
        for _ in range(args.rounds):
            base.append(timed(os.stat, paths))
            one.append(timed(sidecar_signature, paths))
            start = time.perf_counter()
            sidecar_signatures(paths)
            batch.append(time.perf_counter() - start)
    per = 10_000 / args.photos
    b = statistics.median(base) * per
    print(f"{args.photos} photos, {args.sidecars:.0%} with a sidecar, median of {args.rounds} rounds")
    print(f"  stat of the photo (the walk's baseline):  {b:.3f} s per 10,000 photos")
    for what, runs in (("sidecar_signatures (the scan)", batch), ("sidecar_signature, one by one", one)):
        s = statistics.median(runs) * per
        print(f"  {what:40} {s:.3f} s per 10,000 photos  ({s / b:.2f}x the baseline)")


if __name__ == "__main__":
    main()
