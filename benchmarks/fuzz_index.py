"""Fuzz `moodindex index` with mutated photos: nothing may crash, hang or blow the memory.

    python benchmarks/fuzz_index.py [--files 300] [--seed 1] [--workers 2] [--mem-limit-gib 3] [--baseline]

Builds one clean JPEG, PNG, TIFF, HEIC and WebP (tests/photo_factory.py: a photo-like gradient
with a face from ../shared pasted in when it is there), then `--files` mutants of them, seeded:
bit flips, overwritten byte runs, truncations, inserted and duplicated bytes, and header edits
that know each format (JPEG SOF size, PNG IHDR, TIFF IFD entries, WebP VP8X canvas, HEIC ispe).
All are indexed by ONE `moodindex index` run in a subprocess under an address-space limit
(RLIMIT_AS, per process), and the result is checked: exit 0, no traceback, every file has a
row (indexed, or recorded with its reason).  Prints the figures: files, rows by status, errors
by reason, the peak RSS of the largest process (parent or worker), and the wall time.

tests/test_fuzz.py runs this with the defaults in CI.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.photo_factory import background, compose, dev_faces, write_photo  # noqa: E402

FORMATS = (".jpg", ".png", ".tif", ".heic", ".webp")
DEV_FACES = ROOT.parent / "shared" / "data" / "facial_expressions_dev"


# -- the clean photos -----------------------------------------------------------------------------
def base_photos(folder: Path) -> dict[str, bytes]:
    """One clean photo per format (HEIC only with pillow-heif installed)."""
    if (DEV_FACES / "labels.csv").exists():
        image, _ = compose(dev_faces(DEV_FACES, "happy", 1), size=(480, 360), face_px=160, seed=5)
    else:
        image = background(480, 360, seed=5)
    out = {}
    for ext in FORMATS:
        if ext == ".heic":
            try:
                import pillow_heif
                from PIL import Image
            except ImportError:
                continue
            buf = io.BytesIO()
            pillow_heif.from_pillow(Image.fromarray(np.ascontiguousarray(image[:, :, ::-1]))).save(buf, quality=60)
            out[ext] = buf.getvalue()
            continue
        out[ext] = write_photo(folder / f"clean{ext}", image).read_bytes()
        (folder / f"clean{ext}").unlink()
    return out


# -- mutations ----------------------------------------------------------------------------------
def flip_bits(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    buf = bytearray(data)
    n = rng.choice((1, 2, 4, 8, 32))
    for _ in range(n):
        i = rng.randrange(len(buf))
        buf[i] ^= 1 << rng.randrange(8)
    return bytes(buf), f"{n} bit flips"


def overwrite_run(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    buf = bytearray(data)
    at = rng.randrange(min(len(buf), 2048)) if rng.random() < 0.5 else rng.randrange(len(buf))
    n = rng.choice((4, 16, 64, 600))
    fill = rng.choice((b"\x00", b"\xff", None))
    buf[at:at + n] = (fill * n) if fill else rng.randbytes(n)
    return bytes(buf[:len(data)]), f"{n} bytes overwritten at {at}"


def truncate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    at = rng.choice((rng.randrange(1, 64), rng.randrange(len(data)), len(data) - rng.randrange(1, 64)))
    return data[:max(0, at)], f"truncated to {max(0, at)} bytes"


def insert_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    at, n = rng.randrange(len(data)), rng.choice((1, 7, 256))
    return data[:at] + rng.randbytes(n) + data[at:], f"{n} bytes inserted at {at}"


def duplicate_span(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    a = rng.randrange(len(data))
    b = min(len(data), a + rng.choice((16, 512, 4096)))
    return data[:b] + data[a:b] * rng.choice((1, 3)) + data[b:], f"bytes {a}-{b} repeated"


_SIZES = (0, 1, 255, 4097, 16383, 30000, 65535)


def edit_header(data: bytes, ext: str, rng: random.Random) -> tuple[bytes, str]:
    """Change the size (or a structural field) the format's header declares."""
    buf = bytearray(data)
    w, h = rng.choice(_SIZES), rng.choice(_SIZES)
    if ext == ".jpg":
        at = max(data.find(b"\xff\xc0"), data.find(b"\xff\xc2"))
        if at > 0:
            buf[at + 5:at + 9] = struct.pack(">HH", h, w)
            return bytes(buf), f"JPEG SOF says {w}x{h}"
    elif ext == ".png":
        buf[16:24] = struct.pack(">II", w * rng.choice((1, 1000)), h)
        if rng.random() < 0.5:  # a valid CRC: the header passes every check but the size
            buf[29:33] = struct.pack(">I", zlib.crc32(bytes(buf[12:29])))
        return bytes(buf), f"PNG IHDR says {w * (buf[16] and 1)}x{h}"
    elif ext == ".tif":
        return _edit_tiff(buf, rng)
    elif ext == ".webp":
        at = data.find(b"VP8X")
        if at > 0:
            buf[at + 12:at + 18] = (w * 255).to_bytes(3, "little") + (h * 255).to_bytes(3, "little")
            return bytes(buf), "WebP VP8X canvas edited"
    elif ext == ".heic":
        at = data.find(b"ispe")
        if at > 0:
            buf[at + 8:at + 16] = struct.pack(">II", w * rng.choice((1, 10)), h * rng.choice((1, 10)))
            return bytes(buf), "HEIC ispe size edited"
    return overwrite_run(data, rng)


def _edit_tiff(buf: bytearray, rng: random.Random) -> tuple[bytes, str]:
    endian = "<" if buf[:2] == b"II" else ">"
    ifd = struct.unpack(endian + "I", buf[4:8])[0]
    count = struct.unpack(endian + "H", buf[ifd:ifd + 2])[0]
    entries = [ifd + 2 + 12 * i for i in range(count)]
    at = rng.choice(entries)
    tag = struct.unpack(endian + "H", buf[at:at + 2])[0]
    value = rng.choice((0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, rng.randrange(1 << 32)))
    buf[at + 8:at + 12] = struct.pack(endian + "I", value)
    if rng.random() < 0.3:
        buf[at + 2:at + 4] = struct.pack(endian + "H", rng.choice((1, 3, 4, 5, 7, 12, 99)))  # the value's type
    return bytes(buf), f"TIFF tag {tag} set to {value}"


MUTATIONS: dict[str, Callable] = {
    "bit flips": flip_bits, "overwritten run": overwrite_run, "truncation": truncate,
    "inserted bytes": insert_bytes, "duplicated span": duplicate_span,
}


def build_corpus(folder: Path, files: int, seed: int) -> dict[str, str]:
    """`files` mutants in `folder`, spread evenly over the formats; returns name -> what was done."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    bases = base_photos(folder)
    kinds = [*MUTATIONS, "header edit", "header edit"]  # header edits twice as often: they find the bombs
    made = {}
    for i in range(files):
        ext = list(bases)[i % len(bases)]
        kind = rng.choice(kinds)
        data, how = (edit_header(bases[ext], ext, rng) if kind == "header edit"
                     else MUTATIONS[kind](bases[ext], rng))
        if rng.random() < 0.15:  # a second, different mutation on top
            data, more = rng.choice(list(MUTATIONS.values()))(data or b"\0", rng)
            how += f"; {more}"
        name = f"m{i:04d}{ext}"
        (folder / name).write_bytes(data)
        made[name] = how
    return made


# -- the run ------------------------------------------------------------------------------------
@dataclass
class FuzzResult:
    files: int
    returncode: int
    stderr: str
    seconds: float
    peak_rss_mib: float
    statuses: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    missing: list[str] = field(default_factory=list)
    detector: str = ""

    def as_dict(self) -> dict:
        return {"files": self.files, "detector": self.detector, "returncode": self.returncode,
                "seconds": round(self.seconds, 1),
                "peak_rss_mib": round(self.peak_rss_mib), "statuses": dict(self.statuses),
                "errors_by_reason": dict(self.reasons.most_common()), "missing": self.missing}


_RUNNER = """
import resource, subprocess, sys, json
limit = int(sys.argv[1])
def cap():
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
done = subprocess.run(sys.argv[2:], preexec_fn=cap, capture_output=True, text=True)
print(json.dumps({"rc": done.returncode, "stderr": done.stderr,
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def reason_class(error: str) -> str:
    """An error message with its numbers as N: what kind of failure it was."""
    return re.sub(r"\d+", "N", error).strip()[:90]


def run_index(folder: Path, db: Path, workers: int, mem_limit: int, timeout: float = 600) -> FuzzResult:
    """One `moodindex index` over `folder`, under `mem_limit` bytes of address space per process."""
    config = db.with_name("fuzz-config.toml")
    config.write_text('detector = "auto"\n')
    argv = [sys.executable, "-m", "indexer", "--db", str(db), "--config", str(config), "index", str(folder),
            "--workers", str(workers)]
    started = time.monotonic()
    # a fresh interpreter in between: RUSAGE_CHILDREN then covers this run only (parent and workers)
    out = subprocess.run([sys.executable, "-c", _RUNNER, str(mem_limit), *argv], cwd=ROOT, capture_output=True,
                         text=True, timeout=timeout, check=True)
    seconds = time.monotonic() - started
    report = json.loads(out.stdout)
    files = sorted(p.name for p in folder.iterdir())
    result = FuzzResult(len(files), report["rc"], report["stderr"], seconds, report["maxrss_kb"] / 1024)
    with sqlite3.connect(db) as conn:
        rows = {Path(p).name: (s, e) for p, s, e in conn.execute("SELECT path, status, error FROM photos")}
        first_ok = conn.execute("SELECT detector FROM photos WHERE status = 'ok' LIMIT 1").fetchone()
        result.detector = first_ok[0] if first_ok else ""
    for name in files:
        if name not in rows:
            result.missing.append(name)
            continue
        status, error = rows[name]
        result.statuses[status] += 1
        if status != "ok":
            result.reasons[reason_class(error or "(no reason recorded)")] += 1
    return result


def fuzz(files: int = 300, seed: int = 1, workers: int = 2, mem_limit: int = 3 << 30,
         work: Path | None = None) -> tuple[FuzzResult, dict[str, str]]:
    with tempfile.TemporaryDirectory(prefix="moodindex-fuzz-") as tmp:
        base = Path(work or tmp)
        made = build_corpus(base / "photos", files, seed)
        return run_index(base / "photos", base / "index.db", workers, mem_limit), made


def baseline(files: int, workers: int, mem_limit: int) -> FuzzResult:
    """The same run over `files` unmutated copies of the clean photos: what the figures compare to."""
    with tempfile.TemporaryDirectory(prefix="moodindex-fuzz-clean-") as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        bases = base_photos(folder)
        for i in range(files):
            ext = list(bases)[i % len(bases)]
            (folder / f"c{i:04d}{ext}").write_bytes(bases[ext])
        return run_index(folder, Path(tmp) / "index.db", workers, mem_limit)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--mem-limit-gib", type=float, default=3.0)
    ap.add_argument("--baseline", action="store_true", help="also index as many clean copies, same run")
    args = ap.parse_args()
    limit = int(args.mem_limit_gib * 2**30)
    result, _ = fuzz(args.files, args.seed, args.workers, limit)
    print(json.dumps(result.as_dict(), indent=2))
    if args.baseline:
        clean = baseline(args.files, args.workers, limit)
        print(json.dumps({"clean": clean.as_dict(), "fuzz/clean seconds": round(result.seconds / clean.seconds, 2),
                          "fuzz/clean peak RSS": round(result.peak_rss_mib / clean.peak_rss_mib, 2)}, indent=2))
    ok = result.returncode == 0 and not result.missing and "Traceback" not in result.stderr
    print("PASS" if ok else "FAIL", file=sys.stderr)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
