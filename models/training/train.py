"""Train moodindex's facial-expression model on FER-2013 (TensorFlow/Keras).

    pip install -e '.[train]'
    python models/train.py --run models/runs/vgg-v1            # from scratch, seeded
    python models/train.py --run models/runs/vgg-v1            # again: resumes from last.keras
    python models/train.py --run models/runs/vgg-v1-r2 --init-from models/runs/vgg-v1/best.keras \
        --epochs 22 --lr 0.02 --warmup-epochs 1                # a warm restart (SGDR) of a trained net

Train on fer2013_train.npz, select on fer2013_val.npz (PublicTest); the PrivateTest split
is held out and never read here.  Every epoch writes `last.keras` (weights + optimizer
state) and `state.json`, so a run killed at the end of a session resumes in the next one;
`best.keras` is the epoch with the best validation accuracy.  Never run in CI.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from indexer.vision.crop import CLASSES, INPUT_SIZE, normalise  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "fer2013"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, default=ROOT / "models" / "runs" / "vgg-v1")
    p.add_argument("--train", type=Path, default=SHARED / "fer2013_train.npz")
    p.add_argument("--val", type=Path, default=SHARED / "fer2013_val.npz")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--warmup-epochs", type=float, default=2.0)
    p.add_argument("--widths", default="32,64,128,256")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    p.add_argument("--init-from", type=Path, default=None,
                   help="start from this checkpoint's weights with a fresh optimizer and schedule (a warm restart)")
    p.add_argument("--max-minutes", type=float, default=0, help="stop cleanly after this long (0 = no limit)")
    return p.parse_args()


def build_model(widths: list[int], tf):
    """VGG-style net: blocks of two 3x3 conv + BN + ReLU, max-pool, then GAP and a small head.

    Plain (not depthwise) convolutions quantize to int8 with almost no loss; BatchNorm is
    folded into the convolutions by the TFLite converter."""
    keras = tf.keras
    L = keras.layers
    inp = keras.Input((INPUT_SIZE, INPUT_SIZE, 1), name="face")
    x = inp
    for i, w in enumerate(widths):
        for j in range(2):
            x = L.Conv2D(w, 3, padding="same", use_bias=False, name=f"b{i}c{j}")(x)
            x = L.BatchNormalization(name=f"b{i}bn{j}")(x)
            x = L.ReLU(name=f"b{i}relu{j}")(x)
        x = L.MaxPooling2D(2, name=f"b{i}pool")(x)
        if i >= 2:
            x = L.Dropout(0.1 * (i - 1), name=f"b{i}drop")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(256, use_bias=False, name="fc")(x)
    x = L.BatchNormalization(name="fcbn")(x)
    x = L.ReLU(name="fcrelu")(x)
    x = L.Dropout(0.4, name="fcdrop")(x)
    out = L.Dense(len(CLASSES), name="logits")(x)
    return keras.Model(inp, out, name="moodindex_vgg")


def augment_batch(x, tf):
    """Batched, vectorised augmentation: flip, rotation +-10 deg, zoom +-10 %, shift +-10 %,
    then random erasing.  x: (B, 48, 48, 1) float32 in [0, 1]."""
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

    train, val = np.load(args.train), np.load(args.val)
    x_train, y_train = normalise(train["images"]), train["labels"].astype(np.int32)
    x_val, y_val = normalise(val["images"]), val["labels"].astype(np.int32)
    n_cls = len(CLASSES)
    assert list(train["classes"]) == list(CLASSES), "class order must match indexer.vision.crop.CLASSES"

    steps_per_epoch = math.ceil(len(x_train) / args.batch)
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

    last, state_path = args.run / "last.keras", args.run / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {"epoch": 0, "best_val": 0.0}
    widths = [int(w) for w in args.widths.split(",")]
    if last.exists():
        model = tf.keras.models.load_model(last, custom_objects={"WarmupCosine": WarmupCosine}, compile=True)
        print(f"resuming {last} after epoch {state['epoch']}", flush=True)
    else:
        model = build_model(widths, tf)
        if args.init_from:
            trained = tf.keras.models.load_model(args.init_from, compile=False)
            try:
                model.set_weights(trained.get_weights())
            except ValueError as exc:
                raise SystemExit(f"--init-from {args.init_from}: not a net of --widths {args.widths} ({exc})") from exc
            print(f"initialised from {args.init_from}", flush=True)
        opt = tf.keras.optimizers.SGD(learning_rate=WarmupCosine(), momentum=0.9, nesterov=True,
                                      weight_decay=args.weight_decay)
        model.compile(optimizer=opt,
                      loss=tf.keras.losses.CategoricalCrossentropy(from_logits=True,
                                                                   label_smoothing=args.label_smoothing),
                      metrics=["accuracy"])
    model.summary(print_fn=lambda s: print(s, flush=True)) if state["epoch"] == 0 else None
    # every invocation, first and resumed, with the epoch it started from: the run's full history
    with (args.run / "invocations.jsonl").open("a") as f:
        f.write(json.dumps({"started_at_epoch": state["epoch"], "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                            **{k: str(v) for k, v in vars(args).items()}}) + "\n")

    y_train_1h = tf.one_hot(y_train, n_cls)

    def epoch_data(epoch: int):
        """A fresh, seeded order per epoch, so a resumed run replays the same data."""
        order = np.random.default_rng(args.seed + epoch).permutation(len(x_train))
        return (tf.data.Dataset.from_tensor_slices((x_train[order], tf.gather(y_train_1h, order)))
                .batch(args.batch)
                .map(lambda x, y: (augment_batch(x, tf), y), num_parallel_calls=1)
                .prefetch(2))

    y_val_1h = tf.one_hot(y_val, n_cls)

    started = time.time()
    log_path = args.run / "log.csv"
    new_log = not log_path.exists()
    with log_path.open("a", newline="") as log_file:
        log = csv.writer(log_file)
        if new_log:
            log.writerow(["epoch", "loss", "acc", "val_loss", "val_acc", "lr", "seconds"])
        for epoch in range(state["epoch"], args.epochs):
            t0 = time.time()
            tf.random.set_seed(args.seed + epoch)  # per-epoch seed: resumed runs replay the same augmentations
            hist = model.fit(epoch_data(epoch), epochs=1, verbose=0)
            val_loss, val_acc = model.evaluate(x_val, y_val_1h, batch_size=512, verbose=0)
            lr = float(model.optimizer.learning_rate)
            secs = time.time() - t0
            log.writerow([epoch + 1, f"{hist.history['loss'][0]:.4f}", f"{hist.history['accuracy'][0]:.4f}",
                          f"{val_loss:.4f}", f"{val_acc:.4f}", f"{lr:.5f}", f"{secs:.1f}"])
            log_file.flush()
            print(f"epoch {epoch + 1}/{args.epochs} loss {hist.history['loss'][0]:.4f} "
                  f"acc {hist.history['accuracy'][0]:.4f} val_acc {val_acc:.4f} lr {lr:.4f} {secs:.0f}s", flush=True)
            if val_acc > state["best_val"]:
                model.save(args.run / "best.keras.tmp.keras")
                os.replace(args.run / "best.keras.tmp.keras", args.run / "best.keras")
                state["best_val"], state["best_epoch"] = float(val_acc), epoch + 1
            model.save(args.run / "last.keras.tmp.keras")
            os.replace(args.run / "last.keras.tmp.keras", last)
            state["epoch"] = epoch + 1
            state["train_seconds"] = state.get("train_seconds", 0.0) + secs
            state_path.write_text(json.dumps(state, indent=1))
            if args.max_minutes and time.time() - started > args.max_minutes * 60:
                print("time limit reached; run again to resume", flush=True)
                return 0
    print(f"done: best val_acc {state['best_val']:.4f} at epoch {state.get('best_epoch')}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
