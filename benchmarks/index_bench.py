"""Indexing speed and detection quality vs a naive pipeline, in one run (same machine, same load).

    python benchmarks/index_bench.py [--photos 16] [--workers 2] [--unchanged 10000]
    python benchmarks/index_bench.py --photos 60 --sweep    # YuNet: detection size x score cut-off

Builds 8-12 MP JPEGs with 1-3 labelled faces (150-700 px) from ../shared pasted into scenes, then
measures:
  naive : what the `fer` package does: full-resolution decode + Haar on the full image
          (scaleFactor 1.1, minNeighbors 5, minSize 50) + our model on each face, one process;
  fer   : the `fer` package itself, when installed (`pip install fer --no-deps`; needs TensorFlow);
  ours  : `Indexer.scan` with N worker processes (reduced JPEG decode + detector + batched int8
          model + SQLite writes), with YuNet (installed from ../shared) and with Haar;
plus recall of faces >= 150 px, false detections per photo, peak RSS per worker, and the
time for `moodindex index` over N unchanged files (a subprocess, start-up included).

Scenes (--scenes): `photos` (default) are real photographs with no people in them -- the
photographic wallpapers of Debian's `plasma-workspace-wallpapers` and `mate-backgrounds` packages
(`apt-get install plasma-workspace-wallpapers mate-backgrounds`; read from /usr/share, never copied
into this repository); `noise` is synthetic 1/f noise; or a folder of your own face-free photos.
The scene matters to the naive pipeline: Haar's cost and false hits depend on how many windows look
a little like a face, and real foliage, gravel or boats do far more often than noise does.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.photo_factory import compose, dev_faces, iou, write_photo  # noqa: E402

SHARED = ROOT.parent / "shared"


def textured(width: int, height: int, seed: int) -> np.ndarray:
    """1/f ("pink") noise in colour: edges at every scale, like foliage, walls and crowds in real
    photos.  A smooth canvas would flatter the naive Haar pipeline, whose cost is per textured window."""
    rng = np.random.default_rng(seed)
    acc = np.zeros((height, width, 3), np.float32)
    for octave in range(1, 9):
        cells = 2 ** octave
        small = rng.normal(0, 1, (cells * height // width + 1, cells, 3)).astype(np.float32)
        acc += cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC) * (1.0 / octave)
    acc = (acc - acc.mean()) / (acc.std() + 1e-6)
    return np.clip(128 + 45 * acc, 0, 255).astype(np.uint8)


# Every photograph (no illustrations, renders or abstract art) among the two packages' wallpapers,
# listed up front so that the set is fixed, not picked by how the benchmark came out.
KDE_PHOTOS = ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey",
              "Kite", "OneStandsOut", "Path", "Volna", "summer_1am")
MATE_PHOTOS = ("Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops", "Storm",
               "TwoWings", "Wood", "YellowFlower")


def scene_files(scenes: str) -> list[Path]:
    """The background photos for --scenes (empty for `noise`); a clear error when there are none."""
    if scenes == "noise":
        return []
    if scenes == "photos":
        files = []
        for name in KDE_PHOTOS:  # the largest size each wallpaper ships
            sizes = Path("/usr/share/wallpapers", name, "contents", "images").glob("*.jpg")
            best = max(sizes, key=lambda f: f.stat().st_size, default=None)
            files += [best] if best else []
        mate = Path("/usr/share/backgrounds/mate/nature")
        files += [f for name in MATE_PHOTOS if (f := mate / f"{name}.jpg").is_file()]
        hint = "apt-get install plasma-workspace-wallpapers mate-backgrounds (or --scenes noise, or --scenes DIR)"
    else:
        files = sorted(f for f in Path(scenes).glob("*") if f.suffix.lower() in (".jpg", ".jpeg", ".png"))
        hint = f"put face-free photos into {scenes}"
    if not files:
        raise SystemExit(f"no scene photos found for --scenes {scenes}: {hint}")
    return files


def scene(file: Path | None, width: int, height: int, seed: int) -> np.ndarray:
    """A background of the photo's size: the scene photo scaled to cover it and centre-cropped
    (mirrored on odd seeds, for variety), or 1/f noise when there is no file."""
    if file is None:
        return textured(width, height, seed)
    img = cv2.imread(str(file))
    if img is None:
        raise SystemExit(f"{file}: not a readable image (scenes must be JPEG or PNG photos)")
    scale = max(width / img.shape[1], height / img.shape[0])
    img = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)), interpolation=cv2.INTER_CUBIC)
    x0, y0 = (img.shape[1] - width) // 2, (img.shape[0] - height) // 2
    img = img[y0:y0 + height, x0:x0 + width]
    return np.ascontiguousarray(img[:, ::-1] if seed % 2 else img)


def build_photos(out: Path, n: int, scenes: list[Path], seed: int = 0) -> dict[str, list]:
    rng = random.Random(seed)
    faces = dev_faces(SHARED / "data" / "facial_expressions_dev", None, 2000)
    truth = {}
    for i in range(n):
        size = rng.choice([(4000, 3000), (3264, 2448), (4032, 3024)])
        k = rng.randint(1, 3)
        px = rng.randint(180, 700)  # the face inside a dev photo is ~85 % of it: >= 150 px
        img, boxes = compose(rng.sample(faces, k), size=size, face_px=px, seed=i)
        canvas = scene(scenes[i % len(scenes)] if scenes else None, size[0], size[1], seed=i)
        for x, y, w, h in boxes:
            canvas[y:y + h, x:x + w] = img[y:y + h, x:x + w]
        # sensor grain + camera-like JPEG quality: 3-5 MB files like a real 12 MP camera's (a clean
        # synthetic canvas compresses to ~0.7 MB and decodes several times faster than a real photo)
        grain = np.random.default_rng(i).normal(0, 6, canvas.shape).astype(np.float32)
        img = np.clip(canvas.astype(np.float32) + grain, 0, 255).astype(np.uint8)
        path = write_photo(out / f"IMG_{i:04d}.jpg", img, taken=datetime(2020, 1, 1 + i % 28, 12), quality=92)
        truth[str(path)] = boxes
    return truth


def score(found: dict[str, list], truth: dict[str, list]) -> dict:
    hits = total = false = 0
    for path, boxes in truth.items():
        got = found.get(path, [])
        total += len(boxes)
        hits += sum(1 for b in boxes if any(iou(b, g) > 0.4 for g in got))
        false += sum(1 for g in got if not any(iou(b, g) > 0.4 for b in boxes))
    return {"recall": round(hits / total, 3), "false_per_photo": round(false / len(truth), 2),
            "detections_per_face": round((hits + false) / total, 2)}


def naive(paths: list[str]) -> tuple[float, dict]:
    """fer-style: full decode, Haar on the full image, classify each face."""
    from indexer.vision.crop import crop_faces
    from indexer.vision.emotion import EmotionModel

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    model = EmotionModel(threads=1)
    found = {}
    t0 = time.perf_counter()
    for p in paths:
        img = cv2.imread(p)
        gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        boxes = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(50, 50))
        boxes = [tuple(int(v) for v in b) for b in boxes]
        if boxes:
            model.predict(crop_faces(img, boxes))
        found[p] = boxes
    return time.perf_counter() - t0, found


def fer_package(paths: list[str]) -> tuple[float, dict] | None:
    """The `fer` package itself, as its README uses it (imread + detect_emotions), when it is
    installed (`pip install fer --no-deps` next to TensorFlow): a check that `naive` is no slower
    than the real thing.  None when it is not installed."""
    try:
        from fer.fer import FER
    except ImportError:
        try:
            from fer import FER
        except ImportError:
            return None
    detector = FER()
    logging.getLogger().setLevel(logging.WARNING)  # TensorFlow's absl turns the root logger up to INFO
    found = {}
    t0 = time.perf_counter()
    for p in paths:
        found[p] = [tuple(int(v) for v in face["box"]) for face in detector.detect_emotions(cv2.imread(p))]
    return time.perf_counter() - t0, found


class WorkerMemory:
    """Peak RSS (VmHWM) of this process's worker processes, polled from /proc (Linux)."""

    def __init__(self) -> None:
        import threading

        self.peak_mb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        me = str(os.getpid())
        while not self._stop.is_set():
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
                if fields.get("PPid", "").strip() == me and "VmHWM" in fields:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                    if b"resource_tracker" not in cmd:
                        self.peak_mb = max(self.peak_mb, int(fields["VmHWM"].split()[0]) // 1024)
            self._stop.wait(0.1)

    def __enter__(self) -> WorkerMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def ours(paths_root: Path, workers: int, detector: str, db: Path) -> tuple[float, dict, int]:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from indexer.config import Settings
    from indexer.db.models import Photo
    from indexer.db.session import open_db
    from indexer.scan import Indexer

    engine = open_db(db)
    indexer = Indexer(engine, Settings(db=db, workers=workers, detector=detector))
    stamps: list[float] = []
    with WorkerMemory() as mem:
        t0 = time.perf_counter()
        summary = indexer.scan([paths_root], on_progress=lambda p: stamps.append(time.perf_counter()))
        indexer.close()
        secs = time.perf_counter() - t0
    steady = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else float("nan")
    print(f"  {detector}: first photo done {stamps[0] - t0:.1f} s after start (worker start-up); "
          f"then {steady:.1f} photos/s", flush=True)
    with Session(engine) as s:
        found = {p.path: [(f.x, f.y, f.w, f.h) for f in p.faces] for p in s.scalars(select(Photo))}
    assert summary.new == len(found), summary
    return secs, found, mem.peak_mb


def stage_costs(paths: list[str]) -> dict[str, float]:
    """Milliseconds per photo of each stage of our pipeline on one core, YuNet installed:
    where the time goes, and what no amount of parallelism below the decoder can beat."""
    from indexer.media.decode import decode
    from indexer.media.exif import read_exif
    from indexer.media.fingerprint import fingerprint
    from indexer.pipeline import Analyzer

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    analyzer = Analyzer("yunet", threads=1)
    ms = dict.fromkeys(("read + hash + EXIF", "decode (libjpeg, DCT-scaled)", "detect + crop + classify"), 0.0)
    for p in paths:
        t0 = time.perf_counter()
        data = Path(p).read_bytes()
        fingerprint(data)
        read_exif(data)
        t1 = time.perf_counter()
        image = decode(data, ".jpg").image
        t2 = time.perf_counter()
        analyzer.faces_in(image)
        t3 = time.perf_counter()
        for key, secs in zip(ms, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            ms[key] += secs * 1000 / len(paths)
    cv2.setNumThreads(threads)
    return ms


def detection_sweep(truth: dict[str, list], sizes: list[int], cutoffs: list[float]) -> None:
    """Recall and false faces of YuNet per detection size and score cut-off, through the real
    Analyzer (one process): how DETECT_LONG_SIDE and YUNET_SCORE_THRESHOLD were chosen."""
    import indexer.pipeline as pipeline
    from indexer.vision.faces import YuNetDetector

    analyzer, default = pipeline.Analyzer("yunet", threads=1), pipeline.DETECT_LONG_SIDE
    print(f"{'cut-off':>8} {'detect px':>10} {'recall':>7} {'false/photo':>12}")
    try:
        for cutoff in cutoffs:
            analyzer.detector = YuNetDetector(score_threshold=cutoff)
            for size in sizes:
                pipeline.DETECT_LONG_SIDE = size
                found = {p: [f.box for f in analyzer.analyze(p).faces] for p in truth}
                sc = score(found, truth)
                print(f"{cutoff:8.2f} {size:10d} {sc['recall']:7.3f} {sc['false_per_photo']:12.2f}", flush=True)
    finally:
        pipeline.DETECT_LONG_SIDE = default


def unchanged_rerun(tmp: Path, n: int) -> float:
    """`moodindex index` over n already-indexed, unchanged files, as a user runs it: a first run
    (untimed) analyses them, so the rows are exactly what a finished run leaves."""
    lib, db = tmp / "many", tmp / "many.db"
    lib.mkdir()
    tiny = cv2.imencode(".jpg", cv2.resize(cv2.imread(str(next((tmp / "photos").glob("*.jpg")))), (64, 48)))[1]
    for i in range(n):
        p = lib / f"d{i // 500:03d}" / f"p{i:05d}.jpg"
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(tiny.tobytes() + i.to_bytes(4, "little"))
    cmd = [sys.executable, "-m", "indexer", "--db", str(db), "index", str(lib), "--format", "json"]
    subprocess.run(cmd, capture_output=True, text=True, check=True)  # the first run analyses them
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        best = min(best, time.perf_counter() - t0)
        assert json.loads(out.stdout)["unchanged"] == n, out.stdout
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--unchanged", type=int, default=10_000)
    ap.add_argument("--scenes", default="photos",
                    help="photos (real photographs from Debian's wallpaper packages), noise, or a folder of photos")
    ap.add_argument("--sweep", action="store_true",
                    help="only the YuNet detection-size x score cut-off table (recall, false faces)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        os.environ["XDG_DATA_HOME"] = str(tmp / "xdg")  # YuNet installed here only
        scenes = scene_files(args.scenes)
        truth = build_photos(tmp / "photos", args.photos, scenes)
        paths = sorted(truth)
        mp = sum(cv2.imread(p, cv2.IMREAD_REDUCED_GRAYSCALE_8).size * 64 for p in paths) / len(paths) / 1e6
        mb = sum(os.path.getsize(p) for p in paths) / len(paths) / 1e6
        print(f"{len(paths)} photos, {mp:.1f} MP and {mb:.1f} MB average, {sum(map(len, truth.values()))} faces; "
              f"scenes: {f'{len(scenes)} photographs' if scenes else '1/f noise'}", flush=True)
        from indexer.vision.detector_install import add_yunet

        add_yunet(SHARED / "models" / "face_detection_yunet_2026may.onnx")
        if args.sweep:
            detection_sweep(truth, [800, 720, 640, 512], [0.8, 0.6])
            return 0
        t_naive, f_naive = naive(paths)
        print(f"  naive: {len(paths) / t_naive:.2f} photos/s", flush=True)
        rows = {"naive (full decode + Haar, 1 process)": (t_naive, score(f_naive, truth), None)}
        if (fer := fer_package(paths)) is not None:
            import fer as fer_module

            rows[f"fer {fer_module.__version__} package (TFLite model)"] = (fer[0], score(fer[1], truth), None)
        for det in ("yunet", "haar"):
            secs, found, rss = ours(tmp / "photos", args.workers, det, tmp / f"{det}.db")
            rows[f"moodindex {det}, {args.workers} workers"] = (secs, score(found, truth), rss)
        print(f"{'pipeline':42} {'photos/s':>9} {'x naive':>8} {'recall':>7} {'false/photo':>12} {'dets/face':>10} "
              f"{'worker MB':>10}")
        for name, (secs, sc, rss) in rows.items():
            pps = len(paths) / secs
            print(f"{name:42} {pps:9.2f} {t_naive / secs:8.1f} {sc['recall']:7.3f} {sc['false_per_photo']:12.2f} "
                  f"{sc['detections_per_face']:10.2f} {rss if rss is not None else '':>10}")
        costs = stage_costs(paths)
        print("our cost per photo on one core: " + ", ".join(f"{k} {v:.1f} ms" for k, v in costs.items()))
        decode_ms = costs["decode (libjpeg, DCT-scaled)"]
        ceiling = args.workers * 1000 / decode_ms
        print(f"ceiling set by JPEG decoding alone with {args.workers} workers: {ceiling:.0f} photos/s "
              f"= {ceiling * t_naive / len(paths):.1f}x naive")
        if args.unchanged:
            secs = unchanged_rerun(tmp, args.unchanged)
            print(f"`moodindex index` over {args.unchanged} unchanged files: {secs:.2f} s (best of 3, with start-up)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
