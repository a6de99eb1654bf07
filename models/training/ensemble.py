"""Average the logits of several trained checkpoints into one Keras model (one .tflite).

    python models/training/ensemble.py models/runs/vgg-v1/best.keras models/runs/vgg-v1-seed2/best.keras \
        --out models/runs/ensemble-v1/ensemble.keras
    python models/training/export.py --checkpoint models/runs/ensemble-v1/ensemble.keras

Two independently seeded nets make different mistakes; averaging their logits is the
cheapest accuracy gain there is, and as one graph it stays one int8 file and one invoke.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    members = []
    for i, path in enumerate(args.checkpoints):
        m = tf.keras.models.load_model(path, compile=False)
        m.name = f"member{i}"
        members.append(m)
    inp = tf.keras.Input(members[0].input_shape[1:], name="face")
    logits = [m(inp, training=False) for m in members]
    out = tf.keras.layers.Average(name="logits_mean")(logits) if len(logits) > 1 else logits[0]
    model = tf.keras.Model(inp, out, name="moodindex_ensemble")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.stem + ".tmp.keras")
    model.save(tmp)
    os.replace(tmp, args.out)
    # export.py reads the members' training runs from here for the model card
    (args.out.parent / "members.json").write_text(json.dumps([str(p) for p in args.checkpoints], indent=1))
    print(f"{args.out}: mean of {len(members)} members, {model.count_params():,} parameters")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
