"""Export a trained Keras checkpoint to moodindex's full-integer TFLite model, and validate it.

    pip install -e '.[train]'
    python models/training/export.py --checkpoint models/runs/res-v3/best.keras --version 2.0

Writes, atomically, into models/:
  moodindex-fer-v2.tflite          int8 weights and activations, int8 input and output (logits)
  moodindex-fer-v2.json            metadata the runtime reads (classes, quantization, TTA default ...)
  moodindex-fer-v2.metrics.json    every figure the model card quotes
  confusion_matrix.png             int8 model on the validation split
  README.md                        the figures block of the model card is regenerated (--no-card: not)

Calibration uses real training faces passed through `indexer.vision.crop.normalise`, the
one preprocessing function; validation runs the exported file through the indexer's own
runtime (`indexer.vision.emotion.EmotionModel`), so the figures are those of what ships.
Only PublicTest (fer2013_val.npz, and its FER+ votes) is evaluated; the test split is held out.
The real-photo figures (facial_expressions_dev) come from benchmarks/calibrate_crop.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from indexer.fsutil import atomic_write  # noqa: E402
from indexer.vision.confusion_image import draw_confusion  # noqa: E402
from indexer.vision.crop import CLASSES, INPUT_SIZE, normalise  # noqa: E402
from indexer.vision.emotion import EmotionModel, softmax  # noqa: E402
from indexer.vision.evaluate import ferplus_clear_majority, load_npz, summarise  # noqa: E402
from indexer.vision.model_cost import cpu_description, graph_macs  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "fer2013"
FERPLUS_VAL = ROOT.parent / "shared" / "data" / "ferplus" / "ferplus_val.npz"
REAL_TRAIN = ROOT / "models" / "data" / "real_train.npz"
# TTA is the default only if it buys at least this much int8 val accuracy (percentage points)
# and the model still meets the per-face latency target with it.
TTA_MIN_GAIN_PP = 0.5
# Issue 11's budget: multiply-accumulates per face, test-time augmentation included.
MACS_BUDGET = 100_000_000


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=ROOT / "models" / "runs" / "res-v3" / "best.keras")
    p.add_argument("--train", type=Path, default=SHARED / "fer2013_train.npz")
    p.add_argument("--val", type=Path, default=SHARED / "fer2013_val.npz")
    p.add_argument("--out-dir", type=Path, default=ROOT / "models")
    p.add_argument("--name", default="moodindex-fer")
    p.add_argument("--ferplus-val", type=Path, default=FERPLUS_VAL)
    p.add_argument("--version", default="2.0")
    p.add_argument("--stem", default="moodindex-fer-v2", help="file name stem of the outputs")
    p.add_argument("--calibration", type=int, default=500, help="training faces for int8 calibration")
    p.add_argument("--calibration-real", type=Path, default=REAL_TRAIN,
                   help="real-photo training faces (prepare_real_faces.py) added to the calibration sample")
    p.add_argument("--latency-faces", type=int, default=500, help="faces timed one at a time")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--no-card", dest="update_card", action="store_false",
                   help="do not rewrite the figures block of <out-dir>/README.md")
    return p.parse_args()


def git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def run_info(checkpoint: Path) -> dict:
    """Epoch and wall time of the training run the checkpoint came from (state.json, log.csv)."""
    run = checkpoint.parent
    members_path = run / "members.json"
    if members_path.exists():  # an ensemble (models/training/ensemble.py): the sum of its members' runs
        members = [run_info(Path(p)) for p in json.loads(members_path.read_text())]
        return {"run": " + ".join(m["run"] for m in members),
                "members": members,
                "epochs_done": sum(m.get("epochs_done") or 0 for m in members),
                "train_seconds": sum(m.get("train_seconds") or 0 for m in members),
                "median_epoch_seconds": statistics.median(m.get("median_epoch_seconds") or 0 for m in members),
                "training_finished": all(m.get("training_finished") for m in members),
                "checkpoint_epoch": " + ".join(str(m.get("checkpoint_epoch")) for m in members)}
    info: dict = {"run": run.name}
    state_path, config_path, log_path = run / "state.json", run / "config.json", run / "log.csv"
    if state_path.exists():
        state = json.loads(state_path.read_text())
        info.update(epochs_done=state.get("epoch"), best_epoch=state.get("best_epoch"),
                    best_val_keras=state.get("best_val"), train_seconds=round(state.get("train_seconds", 0.0)))
    invocations = run / "invocations.jsonl"
    config = None
    if invocations.exists():  # the latest invocation holds the run's current target
        lines = [ln for ln in invocations.read_text().splitlines() if ln.strip()]
        config = json.loads(lines[-1]) if lines else None
    elif config_path.exists():
        config = json.loads(config_path.read_text())
    if config is not None:
        # hyper-parameters only: the data/run paths are machine-specific
        info["config"] = {k: v for k, v in config.items() if k not in ("run", "train", "val")}
        if "epochs" in config and info.get("epochs_done") is not None:
            info["training_finished"] = int(info["epochs_done"]) >= int(config["epochs"])
    if log_path.exists():
        rows = log_path.read_text().splitlines()[1:]
        secs = [float(r.split(",")[-1]) for r in rows if r]
        if secs:
            info["median_epoch_seconds"] = round(statistics.median(secs), 1)
    if checkpoint.name == "best.keras":
        info["checkpoint_epoch"] = info.get("best_epoch")
    elif checkpoint.name == "last.keras":
        info["checkpoint_epoch"] = info.get("epochs_done")
    return info


def calibration_faces(train_npz: Path, n: int, seed: int, real_npz: Path | None = None) -> np.ndarray:
    """A seeded random sample of training faces (FER-2013, plus a fifth as many real-photo
    faces when given), preprocessed like everything else: int8 ranges fit what the model sees."""
    rng = np.random.default_rng(seed)
    images = load_npz(train_npz).images
    sample = [images[np.sort(rng.choice(len(images), size=min(n, len(images)), replace=False))]]
    if real_npz and Path(real_npz).exists():
        real = load_npz(real_npz).images
        sample.append(real[np.sort(rng.choice(len(real), size=min(n // 5, len(real)), replace=False))])
    return normalise(np.concatenate(sample))


def convert(model, calib: np.ndarray, tf) -> bytes:
    """Full-integer conversion: int8 weights (per channel) and activations, int8 input and
    output; BatchNorm is folded into the convolutions by the converter."""

    def representative():
        for x in calib:
            yield [x[None]]

    # from_keras_model freezes the Keras 3 variables; a hand-made concrete function keeps
    # READ_VARIABLE ops that the calibrator cannot run.
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def time_per_face(model: EmotionModel, faces: np.ndarray, tta: bool, batch: bool, repeats: int = 3) -> float:
    """Milliseconds per face, including preprocessing and softmax.  Batch 1: median over
    single-face calls; batched: best of `repeats` passes over all faces."""
    model.predict(faces[:8], tta=tta)  # warm up (and allocate)
    if not batch:
        times = []
        for face in faces:
            t0 = time.perf_counter()
            model.predict(face[None], tta=tta)
            times.append(time.perf_counter() - t0)
        return 1000.0 * statistics.median(times)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.predict(faces, tta=tta)
        best = min(best, time.perf_counter() - t0)
    return 1000.0 * best / len(faces)


def graph_summary(model: EmotionModel) -> dict:
    """Ops and tensor types of the exported graph: shows BatchNorm folded away and every
    tensor integer (int8 activations/weights, int32 biases)."""
    interp = model._interp
    ops: dict[str, int] = {}
    try:
        for op in interp._get_ops_details():  # private but stable across tflite runtimes
            if op["op_name"] != "DELEGATE":  # the XNNPACK node wrapping the ops listed anyway
                ops[op["op_name"]] = ops.get(op["op_name"], 0) + 1
    except AttributeError:
        pass
    dtypes = sorted({np.dtype(t["dtype"]).name for t in interp.get_tensor_details()})
    return {"ops": ops, "tensor_dtypes": dtypes}


CARD_BEGIN, CARD_END = "<!-- export.py:figures:begin -->", "<!-- export.py:figures:end -->"


def ferplus_figures(votes_npz: Path | None, n: int, probs: dict[str, np.ndarray]) -> dict | None:
    """Accuracy against the clear FER+ majority of each PublicTest face (rows without one
    left out), for every configuration in `probs`; None without the votes file."""
    if not votes_npz or not Path(votes_npz).exists():
        return None
    fp = np.load(votes_npz)
    majority = ferplus_clear_majority(fp["votes"], tuple(str(c) for c in fp["columns"]))
    if len(majority) != n:
        raise SystemExit(f"export: {votes_npz} has {len(majority)} rows, the val split {n}")
    keep = majority >= 0
    return {name: summarise(majority[keep], p[keep]) for name, p in probs.items()}


def markdown_summary(m: dict) -> str:
    """The figures of the model card (models/README.md), regenerated by every export so
    the card always describes the shipped file."""
    f, q, t = m["float"], m["int8"], m["training"]
    lat = m["latency_ms_per_face_1_thread"]
    meta = m["model"]
    chosen = q["tta"] if meta["tta_default"] else q["no_tta"]
    hours = (t.get("train_seconds") or 0) / 3600
    graph = []
    if m.get("graph"):
        ops = ", ".join(f"{n} {k}" for k, n in m["graph"]["ops"].items())
        graph = [f"- graph: {ops}; tensor types {', '.join(m['graph']['tensor_dtypes'])} (BatchNorm folded)."]
    if meta["training_finished"] and t.get("members"):
        status = ("Checkpoint: the logit average of " + " and ".join(
            f"epoch {mb.get('checkpoint_epoch')} (best validation epoch) of the finished "
            f"{mb.get('epochs_done')}-epoch run `{mb['run']}`" for mb in t["members"]) + ".")
    elif meta["training_finished"]:
        status = (f"Checkpoint: epoch {meta['checkpoint_epoch']} (best validation epoch) of the finished "
                  f"{t['epochs_done']}-epoch run `{t['run']}`.")
    else:
        status = (f"**PROVISIONAL**: exported from epoch {meta['checkpoint_epoch']} (best so far) while run "
                  f"`{t['run']}` was at epoch {t.get('epochs_done')} of {t.get('config', {}).get('epochs', '?')}; "
                  "re-run `export.py` on the final `best.keras`.")
    fp = m.get("ferplus_majority")
    fp_rows = []
    if fp:
        fp_rows = [
            f"| FER+ clear-majority accuracy, float ({fp['int8']['n']:,} faces) | "
            f"{100 * fp['float']['accuracy']:.2f} % | {100 * fp['float_tta']['accuracy']:.2f} % |",
            f"| **FER+ clear-majority accuracy, int8 (shipped)** | {100 * fp['int8']['accuracy']:.2f} % | "
            f"{100 * fp['int8_tta']['accuracy']:.2f} % |",
            f"| FER+ clear-majority balanced accuracy, int8 | {100 * fp['int8']['balanced_accuracy']:.2f} % | "
            f"{100 * fp['int8_tta']['balanced_accuracy']:.2f} % |",
        ]
    macs = m["macs"]
    lines = [
        status,
        f"Exported {meta['exported_at']} from training commit `{(meta['training_commit'] or '?')[:10]}`; "
        f"training wall time {'' if meta['training_finished'] else 'so far '}{hours:.2f} h "
        f"({t.get('epochs_done')} epochs, median "
        f"{t.get('median_epoch_seconds')} s per epoch on the 2-core machine, shared with other work).",
        "",
        "| PublicTest (val) | no TTA | flip TTA |",
        "|---|---|---|",
        *fp_rows,
        f"| FER-2013 label accuracy, float (3,589 faces) | {100 * f['no_tta']['accuracy']:.2f} % | "
        f"{100 * f['tta']['accuracy']:.2f} % |",
        f"| **FER-2013 label accuracy, int8 (shipped)** | {100 * q['no_tta']['accuracy']:.2f} % | "
        f"{100 * q['tta']['accuracy']:.2f} % |",
        f"| FER-2013 balanced accuracy, int8 | {100 * q['no_tta']['balanced_accuracy']:.2f} % | "
        f"{100 * q['tta']['balanced_accuracy']:.2f} % |",
        f"| multiply-accumulates per face (from the graph) | {macs['per_pass'] / 1e6:.1f} M | "
        f"{2 * macs['per_pass'] / 1e6:.1f} M |",
        f"| ms per face, 1 thread, batch 1 | {lat['batch1_ms']:.3f} | {lat['batch1_tta_ms']:.3f} |",
        f"| ms per face, 1 thread, batched | {lat['batched_ms']:.3f} | {lat['batched_tta_ms']:.3f} |",
        "",
        f"- CPU of the latency figures: {m.get('cpu', '?')}; measured while other work ran on the same 2 cores.",
        f"- float -> int8: FER-2013 accuracy {-m['int8_drop_pp']:+.2f} points; the two agree on the top class for "
        f"{100 * m['float_int8_top1_agreement']:.2f} % of faces.",
        f"- flip TTA: {m['tta_gain_pp']:+.2f} points for twice the compute. Rule: {m['tta_rule']}. "
        f"**Default: {'on' if meta['tta_default'] else 'off'}** (`tta_default` in the metadata; "
        "`moodindex model eval --tta/--no-tta` overrides).",
        f"- file: {m['size_bytes']:,} bytes ({m['size_bytes'] / 2**20:.2f} MiB); {meta['parameters']:,} parameters; "
        "latency includes preprocessing and softmax.",
        *graph,
        "",
        f"Per class, FER-2013 labels, shipped configuration ({'flip TTA' if meta['tta_default'] else 'no TTA'}):",
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for name, c in chosen["per_class"].items():
        lines.append(f"| {name} | {100 * c['precision']:.1f} % | {100 * c['recall']:.1f} % | {c['f1']:.3f} | "
                     f"{c['support']} |")
    return "\n".join(lines)


def update_card(readme: Path, summary: str) -> bool:
    """Replace the generated block of the model card; False when the card has no markers."""
    if not readme.exists():
        return False
    text = readme.read_text(encoding="utf-8")
    if CARD_BEGIN not in text or CARD_END not in text:
        return False
    head, rest = text.split(CARD_BEGIN, 1)
    _, tail = rest.split(CARD_END, 1)
    atomic_write(readme, f"{head}{CARD_BEGIN}\n{summary}\n{CARD_END}{tail}".encode())
    return True


def main() -> int:
    args = parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    # One thread: the export shares the machine with training, and latency is quoted per thread.
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.keras.utils.set_random_seed(args.seed)
    if not args.checkpoint.is_file():
        print(f"export: {args.checkpoint}: no such checkpoint", file=sys.stderr)
        return 1
    provenance = run_info(args.checkpoint)
    val = load_npz(args.val)
    t_start = time.time()

    with tempfile.TemporaryDirectory() as tmp:
        # A private copy: training replaces best.keras while it runs.
        ckpt = Path(tmp) / "checkpoint.keras"
        shutil.copyfile(args.checkpoint, ckpt)
        keras_model = tf.keras.models.load_model(ckpt, compile=False)
        n_params = int(keras_model.count_params())
        print(f"loaded {args.checkpoint} (epoch {provenance.get('checkpoint_epoch')}, {n_params:,} parameters)",
              flush=True)

        calib = calibration_faces(args.train, args.calibration, args.seed, args.calibration_real)
        t0 = time.time()
        tflite = convert(keras_model, calib, tf)
        convert_s = time.time() - t0
        tmp_model = Path(tmp) / f"{args.stem}.tflite"
        tmp_model.write_bytes(tflite)
        print(f"converted in {convert_s:.0f}s: {len(tflite):,} bytes", flush=True)

        # float reference
        x_val = normalise(val.images)
        float_logits = keras_model.predict(x_val, batch_size=256, verbose=0)
        float_logits_flip = keras_model.predict(x_val[:, :, ::-1], batch_size=256, verbose=0)
        float_probs = softmax(float_logits)
        float_probs_tta = (float_probs + softmax(float_logits_flip)) / 2

        # the exported file, through the runtime that ships
        runtime = EmotionModel(tmp_model, threads=1, tta=False)
        int8_probs = runtime.predict(val.images, tta=False)
        int8_probs_tta = runtime.predict(val.images, tta=True)
        timing_faces = val.images[: args.latency_faces]
        latency = {
            "batch1_ms": round(time_per_face(runtime, timing_faces, tta=False, batch=False), 3),
            "batch1_tta_ms": round(time_per_face(runtime, timing_faces, tta=True, batch=False), 3),
            "batched_ms": round(time_per_face(runtime, val.images, tta=False, batch=True), 3),
            "batched_tta_ms": round(time_per_face(runtime, val.images, tta=True, batch=True), 3),
        }
        model_info = {"input": runtime._in["quantization"], "output": runtime._out["quantization"]}
        graph = graph_summary(runtime)
        macs_per_pass, macs_by_op = graph_macs(tmp_model)

    float_eval = summarise(val.labels, float_probs)
    float_eval_tta = summarise(val.labels, float_probs_tta)
    int8_eval = summarise(val.labels, int8_probs)
    int8_eval_tta = summarise(val.labels, int8_probs_tta)
    ferplus = ferplus_figures(args.ferplus_val, len(val.labels), {
        "float": float_probs, "float_tta": float_probs_tta, "int8": int8_probs, "int8_tta": int8_probs_tta})
    agreement = float((float_probs.argmax(1) == int8_probs.argmax(1)).mean())
    # TTA's gain: the mean of its gains on the two label sets (FER+ majority when available)
    gains = [int8_eval_tta["accuracy"] - int8_eval["accuracy"]]
    if ferplus:
        gains.append(ferplus["int8_tta"]["accuracy"] - ferplus["int8"]["accuracy"])
    tta_gain_pp = 100 * float(np.mean(gains))
    tta_default = tta_gain_pp >= TTA_MIN_GAIN_PP and 2 * macs_per_pass <= MACS_BUDGET
    chosen = int8_eval_tta if tta_default else int8_eval

    train_commit = git("log", "-1", "--format=%H", "--", "models/training/")
    export_commit = git("rev-parse", "HEAD")
    finished = provenance.get("training_finished")
    metadata = {
        "name": args.name,
        "version": args.version,
        "file": f"{args.stem}.tflite",
        "classes": list(CLASSES),
        "input_shape": [-1, INPUT_SIZE, INPUT_SIZE, 1],
        "input": "gray face crop from indexer.vision.crop.crop_faces -> crop.normalise ([0,1]) -> int8",
        "input_quantization": {"scale": model_info["input"][0], "zero_point": model_info["input"][1]},
        "output": "logits",
        "output_quantization": {"scale": model_info["output"][0], "zero_point": model_info["output"][1]},
        "quantization": "int8 (full integer)",
        "tta_default": tta_default,
        "val_split": "FER-2013 PublicTest (fer2013_val.npz)",
        "val_accuracy": chosen["accuracy"],
        "val_accuracy_no_tta": int8_eval["accuracy"],
        "val_accuracy_tta": int8_eval_tta["accuracy"],
        "float_val_accuracy": float_eval["accuracy"],
        "val_ferplus_majority_accuracy": (ferplus["int8_tta" if tta_default else "int8"]["accuracy"]
                                          if ferplus else None),
        "macs_per_face": macs_per_pass * (2 if tta_default else 1),
        "parameters": n_params,
        "checkpoint_epoch": provenance.get("checkpoint_epoch"),
        "training_finished": finished,
        "training_commit": train_commit,
        "export_commit": export_commit,
        "exported_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
    }
    metrics = {
        "model": metadata,
        "training": provenance,
        "calibration": {"faces": len(calib), "seed": args.seed,
                        "source": "seeded random sample of fer2013_train.npz"
                                  + (f" + {args.calibration_real.name}" if args.calibration_real
                                     and args.calibration_real.exists() else "")},
        "size_bytes": len(tflite),
        "graph": graph,
        "convert_seconds": round(convert_s, 1),
        "float": {"no_tta": float_eval, "tta": float_eval_tta},
        "int8": {"no_tta": int8_eval, "tta": int8_eval_tta},
        "ferplus_majority": ferplus,
        "macs": {"per_pass": macs_per_pass, "by_op": macs_by_op,
                 "per_face": macs_per_pass * (2 if tta_default else 1), "budget_per_face": MACS_BUDGET},
        "cpu": cpu_description(),
        "float_int8_top1_agreement": round(agreement, 4),
        "int8_drop_pp": round(100 * (float_eval["accuracy"] - int8_eval["accuracy"]), 2),
        "tta_gain_pp": round(tta_gain_pp, 2),
        "tta_rule": f"on if it gains >= {TTA_MIN_GAIN_PP} pp of int8 val accuracy (mean of FER-2013 and FER+ "
                    f"majority) and two passes stay within {MACS_BUDGET / 1e6:.0f} M multiply-accumulates",
        "latency_ms_per_face_1_thread": latency,
        "latency_note": "median of single-face predict() calls incl. preprocessing and softmax; batched = whole "
                        "val set in chunks of 64; measured on the 2-core dev machine while training ran",
        "host": {"machine": platform.machine(), "processor": platform.processor() or None,
                 "cpus": os.cpu_count(), "python": platform.python_version(), "tensorflow": tf.__version__},
        "export_seconds": round(time.time() - t_start, 1),
    }

    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / f"{args.stem}.tflite", tflite)
    atomic_write(out / f"{args.stem}.json", (json.dumps(metadata, indent=1) + "\n").encode())
    atomic_write(out / f"{args.stem}.metrics.json", (json.dumps(metrics, indent=1) + "\n").encode())
    epoch = provenance.get("checkpoint_epoch")
    status = "" if finished else f", provisional: epoch {epoch}"
    draw_confusion(np.asarray(chosen["confusion"]),
                   [f"{args.stem} int8{' + flip TTA' if tta_default else ''}, FER-2013 PublicTest (val), "
                    f"n={chosen['n']}", f"accuracy {100 * chosen['accuracy']:.1f}%{status}"],
                   out / "confusion_matrix.png")

    print(f"float val acc {float_eval['accuracy']:.4f} (TTA {float_eval_tta['accuracy']:.4f}); "
          f"int8 {int8_eval['accuracy']:.4f} (TTA {int8_eval_tta['accuracy']:.4f}); "
          f"drop {metrics['int8_drop_pp']} pp; agreement {agreement:.4f}")
    print(f"size {len(tflite):,} bytes; latency ms/face (1 thread) {latency}; TTA default {tta_default}")
    print(f"wrote {out / (args.stem + '.tflite')} and metadata, metrics, confusion_matrix.png")
    summary = markdown_summary(metrics)
    if args.update_card and update_card(out / "README.md", summary):
        print(f"updated the figures in {out / 'README.md'}")
    else:
        print("\n" + summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
