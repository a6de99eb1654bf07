"""Train moodindex's facial-expression model (TensorFlow/Keras).  Never run in CI.

    pip install -e '.[train]'
    python models/training/prepare_real_faces.py          # real-photo faces, cut by our own detector
    python models/training/train.py --run models/runs/res-v3   # model 2.0, seeded; run again to resume

Model 2.0's recipe is the default: a small residual net (`architectures.build_resnet`)
trained on FER-2013 Training with the FER+ vote distribution as target, plus real-photo
faces (`--real`), with geometric and camera augmentation.  Each ingredient can be turned
off to measure what it adds (the model card's ingredient table):

    --ferplus-weight 0     FER-2013's single labels only
    --real ''              no real-photo faces
    --real-loss full       real faces as ordinary 7-way labels (the shortcut; see below)
    --no-camera-aug        geometric augmentation only

Distillation into one net (the model card's `distil-v1`): `--teacher models/runs/ens-v3-v4/ensemble.keras
--init-from models/runs/res-v3/best.keras` with a short, low learning-rate schedule.

Model 1.x's VGG: `--arch vgg --widths 32,64,128,256 --ferplus-weight 0 --real '' --no-camera-aug
--label-smoothing 0.1` (see models/README.md for the exact runs behind 1.1).

Selection happens on fer2013_val.npz (PublicTest) only; the PrivateTest split is held out and
never read here.  Every epoch writes `last.keras` (weights + optimizer state), `state.json`
and a line of `log.csv`, so a run killed at the end of a session resumes in the next one;
`best.keras` is the epoch with the best selection score (FER+ majority accuracy plus
FER-2013 accuracy on PublicTest, float, no TTA).

The real-photo set has two classes only (happy, neutral).  Trained as ordinary 7-way labels,
it teaches the shortcut "looks like a camera photo -> happy or neutral": surprised and sad
faces in real photos then come out neutral.  `--real-loss partial` (default) scores those
faces over the classes their set contains only (a softmax restricted to happy and neutral),
so they teach "happy or neutral, which one" and nothing about the classes they never show.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from architectures import build_resnet, build_vgg, keras_macs  # noqa: E402
from camera_aug import NONE, CameraAug  # noqa: E402

from indexer.fsutil import atomic_write  # noqa: E402
from indexer.vision.crop import CLASSES, INPUT_SIZE, normalise  # noqa: E402
from indexer.vision.evaluate import ferplus_class_votes, ferplus_clear_majority  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"

#: 2.0's mix: target = this x FER+ vote distribution + the rest x FER-2013 label
DEFAULT_FERPLUS_WEIGHT = 0.4
#: 2.0's network: build_resnet's stem and stage widths
DEFAULT_STEM, DEFAULT_WIDTHS = 16, "32,64,128,256"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, default=ROOT / "models" / "runs" / "res-v3")
    p.add_argument("--train", type=Path, default=SHARED / "fer2013" / "fer2013_train.npz")
    p.add_argument("--val", type=Path, default=SHARED / "fer2013" / "fer2013_val.npz")
    p.add_argument("--ferplus", type=Path, default=SHARED / "ferplus" / "ferplus_train.npz")
    p.add_argument("--ferplus-val", type=Path, default=SHARED / "ferplus" / "ferplus_val.npz")
    p.add_argument("--ferplus-weight", type=float, default=DEFAULT_FERPLUS_WEIGHT,
                   help="target = w * FER+ vote distribution + (1 - w) * FER-2013 label (rows FER+ matched)")
    p.add_argument("--real", default=str(ROOT / "models" / "data" / "real_train.npz"),
                   help="real-photo faces from prepare_real_faces.py ('' = none)")
    p.add_argument("--real-loss", choices=("partial", "full"), default="partial",
                   help="real faces scored over their set's classes only (partial) or all seven (full)")
    p.add_argument("--extra", action="append", default=[],
                   help="a folder of corrected faces (labels.csv + 48x48 crops) to add; repeatable")
    p.add_argument("--camera-aug", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--arch", choices=("resnet", "vgg"), default="resnet")
    p.add_argument("--stem", type=int, default=DEFAULT_STEM)
    p.add_argument("--widths", default=DEFAULT_WIDTHS)
    p.add_argument("--blocks", default="1,1,2,1")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--label-smoothing", type=float, default=0.05)
    p.add_argument("--warmup-epochs", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    p.add_argument("--jit", action=argparse.BooleanOptionalAction, default=True,
                   help="XLA-compile the train step (fuses BatchNorm/ReLU: faster on CPU for small nets)")
    p.add_argument("--init-from", type=Path, default=None,
                   help="start from this checkpoint's weights with a fresh optimizer and schedule (a warm restart)")
    p.add_argument("--teacher", type=Path, default=None,
                   help="distil: a trained checkpoint (e.g. an ensemble.py average) whose softmax is mixed "
                        "into the FER-2013 faces' targets")
    p.add_argument("--teacher-weight", type=float, default=0.7,
                   help="target = w * teacher's probabilities + (1 - w) * the label mix (FER-2013 faces)")
    p.add_argument("--max-minutes", type=float, default=0, help="stop cleanly after this long (0 = no limit)")
    return p.parse_args()


def ferplus_targets(fer_labels: np.ndarray, ferplus_npz: Path | None, weight: float) -> np.ndarray:
    """Soft targets (N, 7): the FER+ vote distribution over our classes mixed with the
    FER-2013 label.  Rows without FER+ votes for our classes keep the FER-2013 label alone."""
    onehot = np.eye(len(CLASSES), dtype=np.float32)[fer_labels]
    if not ferplus_npz or weight <= 0:
        return onehot
    fp = np.load(ferplus_npz)
    ours = ferplus_class_votes(fp["votes"], tuple(str(c) for c in fp["columns"])).astype(np.float32)
    total = ours.sum(axis=1, keepdims=True)
    usable = fp["matched"] & (total[:, 0] > 0)
    dist = np.divide(ours, total, out=np.zeros_like(ours), where=total > 0)
    return np.where(usable[:, None], weight * dist + (1.0 - weight) * onehot, onehot).astype(np.float32)


def not_a_face(ferplus_npz: Path | None) -> np.ndarray | None:
    """Rows most FER+ annotators called 'not a face' or 'unknown': left out of training."""
    if not ferplus_npz:
        return None
    fp = np.load(ferplus_npz)
    cols = [str(c) for c in fp["columns"]]
    junk = fp["votes"][:, cols.index("NF")] + fp["votes"][:, cols.index("unknown")]
    return fp["matched"] & (junk * 2 > fp["votes"].sum(axis=1))


def load_extra(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """A corrections export (labels.csv: file,label + 48x48 grey PNG crops)."""
    import cv2

    images, labels = [], []
    with open(folder / "labels.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["label"] not in CLASSES:
                continue
            img = cv2.imread(str(folder / row["file"]), cv2.IMREAD_GRAYSCALE)
            if img is None or img.shape != (INPUT_SIZE, INPUT_SIZE):
                raise SystemExit(f"--extra {folder}: {row['file']} is not a {INPUT_SIZE}x{INPUT_SIZE} grey image")
            images.append(img)
            labels.append(CLASSES.index(row["label"]))
    return np.array(images, np.uint8).reshape(-1, INPUT_SIZE, INPUT_SIZE), np.array(labels, np.int64)


def teacher_probabilities(checkpoint: Path, images_u8: np.ndarray, cache: Path, tf) -> np.ndarray:
    """The teacher's softmax on the (unaugmented) training faces, cached in the run folder with
    the teacher file's digest: a resumed run distils from exactly the same targets, and a
    different teacher (or a retrained one at the same path) is never read from a stale cache."""
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    if cache.exists():
        with np.load(cache) as cached:
            if str(cached["teacher_sha256"]) == digest and len(cached["probs"]) == len(images_u8):
                return cached["probs"]
    teacher = tf.keras.models.load_model(checkpoint, compile=False)
    logits = teacher.predict(normalise(images_u8), batch_size=512, verbose=0)
    probs = tf.nn.softmax(logits, axis=1).numpy().astype(np.float32)
    buf = io.BytesIO()
    np.savez(buf, probs=probs, teacher_sha256=np.array(digest))
    atomic_write(cache, buf.getvalue())
    return probs


def training_set(args, tf=None) -> tuple[np.ndarray, np.ndarray]:
    """uint8 faces (N, 48, 48) and targets (N, 14): the soft target over our 7 classes, then
    the mask of the classes the face's loss is computed over (all 7 except for partial labels).
    With --teacher, the FER-2013 faces' targets mix in the teacher's probabilities (the real
    faces keep their partial labels: they are right, and the teacher never saw their kind)."""
    train = np.load(args.train)
    assert list(train["classes"]) == list(CLASSES), "class order must match indexer.vision.crop.CLASSES"
    use_fp = args.ferplus if args.ferplus_weight > 0 else None
    images, labels = train["images"], train["labels"]
    targets = ferplus_targets(labels, use_fp, args.ferplus_weight)
    junk = not_a_face(use_fp)
    if junk is not None:
        images, targets = images[~junk], targets[~junk]
        print(f"FER-2013 train: {len(images)} faces ({int(junk.sum())} FER+ 'not a face' rows left out)", flush=True)
    if args.teacher:
        probs = teacher_probabilities(args.teacher, images, args.run / "teacher_probs.npz", tf)
        print(f"distilling from {args.teacher} (weight {args.teacher_weight:g}): it agrees with the "
              f"label mix's top class on {(probs.argmax(1) == targets.argmax(1)).mean():.1%}", flush=True)
        targets = (args.teacher_weight * probs + (1.0 - args.teacher_weight) * targets).astype(np.float32)
    every_class = np.ones(len(CLASSES), np.float32)
    sources = [(images, targets, every_class)]
    eye = np.eye(len(CLASSES), dtype=np.float32)
    if args.real:
        real = np.load(args.real)
        allowed = every_class
        if args.real_loss == "partial":
            allowed = np.isin(np.arange(len(CLASSES)), np.unique(real["labels"])).astype(np.float32)
        sources.append((real["images"], eye[real["labels"]], allowed))
        print(f"real-photo faces: {len(real['images'])} from {args.real}, loss over "
              + ", ".join(c for c, a in zip(CLASSES, allowed, strict=True) if a), flush=True)
    for folder in args.extra:
        x, y = load_extra(Path(folder))
        sources.append((x, eye[y], every_class))
        print(f"extra faces: {len(x)} from {folder}", flush=True)
    x = np.concatenate([s[0] for s in sources])
    t = np.concatenate([np.concatenate([s[1], np.broadcast_to(s[2], s[1].shape)], axis=1) for s in sources])
    return x, t.astype(np.float32)


def validation_set(args) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PublicTest faces, their FER-2013 labels and their clear FER+ majority (-1: none)."""
    val = np.load(args.val)
    majority = np.full(len(val["labels"]), -1)
    if args.ferplus_val and Path(args.ferplus_val).exists():
        fp = np.load(args.ferplus_val)
        majority = ferplus_clear_majority(fp["votes"], tuple(str(c) for c in fp["columns"]))
    return val["images"], val["labels"].astype(np.int64), majority


def augment_batch(x, tf):
    """Batched, vectorised geometric augmentation: flip, rotation +-10 deg, zoom +-10 %,
    shift +-10 %, then random erasing.  x: (B, 48, 48, 1) float32 in [0, 1]."""
    b = tf.shape(x)[0]
    s = float(INPUT_SIZE)
    angle = tf.random.uniform([b], -10.0, 10.0) * (math.pi / 180.0)
    scale = tf.random.uniform([b], 0.9, 1.1)
    tx = tf.random.uniform([b], -0.1, 0.1) * s
    ty = tf.random.uniform([b], -0.1, 0.1) * s
    flip = tf.cast(tf.random.uniform([b]) < 0.5, tf.float32) * -2.0 + 1.0  # -1 flips
    c = (s - 1.0) / 2.0
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    # output (x', y') -> input (x, y): centre, flip, rotate+scale, uncentre, shift
    a0 = cos * flip
    a1 = -sin
    b0 = sin * flip
    b1 = cos
    a2 = c - a0 * c - a1 * c + tx
    b2 = c - b0 * c - b1 * c + ty
    zeros = tf.zeros([b])
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    x = tf.raw_ops.ImageProjectiveTransformV3(
        images=x, transforms=transforms, output_shape=tf.constant([INPUT_SIZE, INPUT_SIZE]),
        fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT")
    # random erasing: one rectangle of 2-20 % of the area in half the images, filled with noise
    area = tf.random.uniform([b], 0.02, 0.2) * s * s
    ratio = tf.exp(tf.random.uniform([b], math.log(0.3), math.log(3.3)))
    eh = tf.minimum(tf.sqrt(area * ratio), s)
    ew = tf.minimum(tf.sqrt(area / ratio), s)
    ey = tf.random.uniform([b]) * (s - eh)
    ex = tf.random.uniform([b]) * (s - ew)
    on = tf.cast(tf.random.uniform([b]) < 0.5, tf.float32)
    grid = tf.range(s)
    rows = tf.cast((grid[None] >= ey[:, None]) & (grid[None] < (ey + eh)[:, None]), tf.float32)
    cols = tf.cast((grid[None] >= ex[:, None]) & (grid[None] < (ex + ew)[:, None]), tf.float32)
    mask = (rows[:, :, None] * cols[:, None, :] * on[:, None, None])[..., None]
    noise = tf.random.uniform(tf.shape(x))
    return x * (1.0 - mask) + noise * mask


def main() -> int:
    args = parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    tf.keras.utils.set_random_seed(args.seed)
    args.run.mkdir(parents=True, exist_ok=True)

    x_train_u8, t_train = training_set(args, tf)
    x_val_u8, y_val, maj_val = validation_set(args)
    x_val = normalise(x_val_u8)
    camera = CameraAug() if args.camera_aug else NONE

    steps_per_epoch = math.ceil(len(x_train_u8) / args.batch)
    total_steps = steps_per_epoch * args.epochs
    warmup = int(args.warmup_epochs * steps_per_epoch)

    class WarmupCosine(tf.keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            step = tf.cast(step, tf.float32)
            warm = args.lr * (step + 1.0) / max(1, warmup)
            prog = tf.clip_by_value((step - warmup) / max(1, total_steps - warmup), 0.0, 1.0)
            cos = 0.5 * args.lr * (1.0 + tf.cos(math.pi * prog))
            return tf.where(step < warmup, warm, cos)

        def get_config(self):
            return {}

    k = len(CLASSES)

    def partial_label_crossentropy(y, logits):
        """Cross-entropy with label smoothing over each face's allowed classes (y[:, k:])."""
        target, allowed = y[:, :k], y[:, k:]
        smooth = allowed / tf.reduce_sum(allowed, axis=1, keepdims=True)
        target = target * (1.0 - args.label_smoothing) + args.label_smoothing * smooth
        masked = logits + (allowed - 1.0) * 1e4  # a disallowed class gets no probability
        return -tf.reduce_sum(target * tf.nn.log_softmax(masked, axis=1), axis=1)

    def target_accuracy(y, logits):
        return tf.cast(tf.equal(tf.argmax(y[:, :k], axis=1), tf.argmax(logits, axis=1)), tf.float32)

    custom = {"WarmupCosine": WarmupCosine, "partial_label_crossentropy": partial_label_crossentropy,
              "target_accuracy": target_accuracy}
    last, state_path = args.run / "last.keras", args.run / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {"epoch": 0, "best_score": -1.0}
    widths = [int(w) for w in args.widths.split(",")]
    if last.exists():
        model = tf.keras.models.load_model(last, custom_objects=custom, compile=True)
        print(f"resuming {last} after epoch {state['epoch']}", flush=True)
    else:
        if args.arch == "vgg":
            model = build_vgg(widths, tf)
        else:
            model = build_resnet(args.stem, widths, [int(b) for b in args.blocks.split(",")], tf)
        if args.init_from:
            trained = tf.keras.models.load_model(args.init_from, compile=False, safe_mode=True)
            try:
                model.set_weights(trained.get_weights())
            except ValueError as exc:
                raise SystemExit(f"--init-from {args.init_from}: not the same architecture ({exc})") from exc
            print(f"initialised from {args.init_from}", flush=True)
        opt = tf.keras.optimizers.SGD(learning_rate=WarmupCosine(), momentum=0.9, nesterov=True,
                                      weight_decay=args.weight_decay)
        model.compile(optimizer=opt,
                      loss=partial_label_crossentropy, metrics=[target_accuracy], jit_compile=args.jit)
    if state["epoch"] == 0:
        model.summary(print_fn=lambda s, **_: print(s, flush=True))
        print(f"{keras_macs(model) / 1e6:.1f} M multiply-accumulates per face (one pass)", flush=True)
    # every invocation, first and resumed, with the epoch it started from: the run's full history
    with (args.run / "invocations.jsonl").open("a") as f:
        f.write(json.dumps({"started_at_epoch": state["epoch"], "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                            **{k: str(v) for k, v in vars(args).items()}}) + "\n")

    def camera_epoch(epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """A fresh, seeded order and camera degradation per epoch: a resumed run replays the same data."""
        rng = np.random.default_rng(args.seed + epoch)
        order = rng.permutation(len(x_train_u8))
        return normalise(camera.apply(x_train_u8[order], rng)), t_train[order]

    def dataset(x, t):
        return (tf.data.Dataset.from_tensor_slices((x, t))
                .batch(args.batch)
                .map(lambda xb, tb: (augment_batch(xb, tf), tb), num_parallel_calls=1)
                .prefetch(2))

    has_majority = bool((maj_val >= 0).any())
    started = time.time()
    log_path = args.run / "log.csv"
    new_log = not log_path.exists()
    pool = ThreadPoolExecutor(max_workers=1)  # the next epoch's camera pass runs while this one trains
    upcoming = pool.submit(camera_epoch, state["epoch"]) if state["epoch"] < args.epochs else None
    with log_path.open("a", newline="") as log_file:
        log = csv.writer(log_file)
        if new_log:
            log.writerow(["epoch", "loss", "acc", "val_fer2013", "val_ferplus_majority", "score", "lr", "seconds"])
        for epoch in range(state["epoch"], args.epochs):
            t0 = time.time()
            x_epoch, t_epoch = upcoming.result()
            upcoming = pool.submit(camera_epoch, epoch + 1) if epoch + 1 < args.epochs else None
            tf.random.set_seed(args.seed + epoch)  # per-epoch seed: resumed runs replay the same augmentations
            hist = model.fit(dataset(x_epoch, t_epoch), epochs=1, verbose=0)
            pred = model.predict(x_val, batch_size=512, verbose=0).argmax(axis=1)
            fer_acc = float((pred == y_val).mean())
            fp_acc = float((pred[maj_val >= 0] == maj_val[maj_val >= 0]).mean()) if has_majority else 0.0
            score = fer_acc + fp_acc
            lr = float(model.optimizer.learning_rate)
            secs = time.time() - t0
            loss, acc = hist.history["loss"][0], hist.history["target_accuracy"][0]
            log.writerow([epoch + 1, f"{loss:.4f}", f"{acc:.4f}", f"{fer_acc:.4f}", f"{fp_acc:.4f}",
                          f"{score:.4f}", f"{lr:.5f}", f"{secs:.1f}"])
            log_file.flush()
            print(f"epoch {epoch + 1}/{args.epochs} loss {loss:.4f} acc {acc:.4f} val fer2013 {fer_acc:.4f} "
                  f"ferplus-majority {fp_acc:.4f} lr {lr:.4f} {secs:.0f}s", flush=True)
            if score > state.get("best_score", -1.0):
                model.save(args.run / "best.tmp.keras")
                os.replace(args.run / "best.tmp.keras", args.run / "best.keras")
                state.update(best_score=score, best_epoch=epoch + 1, best_val=fer_acc, best_ferplus=fp_acc)
            model.save(args.run / "last.tmp.keras")
            os.replace(args.run / "last.tmp.keras", last)
            state["epoch"] = epoch + 1
            state["train_seconds"] = state.get("train_seconds", 0.0) + secs
            tmp = state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(state, indent=1))
            os.replace(tmp, state_path)
            if args.max_minutes and time.time() - started > args.max_minutes * 60:
                print("time limit reached; run again to resume", flush=True)
                pool.shutdown(cancel_futures=True)
                return 0
    pool.shutdown(cancel_futures=True)
    print(f"done: best score {state['best_score']:.4f} at epoch {state.get('best_epoch')} "
          f"(FER-2013 {state.get('best_val', 0):.4f}, FER+ majority {state.get('best_ferplus', 0):.4f})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
