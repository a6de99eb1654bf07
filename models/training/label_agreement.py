"""Where a model's FER-2013 accuracy goes: faces FER+ agrees with, and faces it does not.

    python models/training/label_agreement.py models/moodindex-fer-v2.tflite OLD.tflite \
        models/runs/ingr-full/best.keras models/runs/ingr-no-ferplus/best.keras

FER+'s ten annotators disagree with FER-2013's single label on about a third of PublicTest.
On those faces a model can match one of the two, not both, so FER-2013 label accuracy and
FER+ accuracy pull against each other there and nowhere else.  This splits PublicTest into
the faces where FER-2013's label is among FER+'s most-voted classes ("agree"), those where it
is not ("disagree", with how often the model follows FER+'s plurality instead) and those FER+
could not match, and prints each model's FER-2013 accuracy on each part.  A diagnostic for
the model card; models are chosen on train.py's selection score only.

`.tflite` files run int8 through the indexer's own runtime at their shipped TTA default;
`.keras` checkpoints run in float without TTA, as train.py validates them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from indexer.vision.crop import CLASSES, normalise  # noqa: E402
from indexer.vision.evaluate import ferplus_class_votes, ferplus_clear_majority  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"


def agreement_parts(labels: np.ndarray, votes: np.ndarray, matched: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks over the faces: FER+ agrees with the label, disagrees, or has no votes."""
    ours = ferplus_class_votes(votes)
    label_votes = ours[np.arange(len(labels)), labels]
    agree = matched & (label_votes == ours.max(axis=1)) & (label_votes > 0)
    return {"agree": agree, "disagree": matched & ~agree, "unmatched": ~matched}


def predict(path: Path, images: np.ndarray) -> np.ndarray:
    """Top class per face, as the file would be used (int8 + TTA default, or float checkpoint)."""
    if path.suffix == ".tflite":
        from indexer.vision.emotion import EmotionModel

        return EmotionModel(path, threads=1).predict(images).argmax(axis=1)
    from dev_diagnostics import load_checkpoint

    model = load_checkpoint(path)
    x = normalise(images)[..., None]
    return model.predict(x, batch_size=256, verbose=0).argmax(axis=1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", type=Path, help=".tflite files or .keras checkpoints")
    ap.add_argument("--val", type=Path, default=SHARED / "fer2013" / "fer2013_val.npz")
    ap.add_argument("--ferplus-val", type=Path, default=SHARED / "ferplus" / "ferplus_val.npz")
    args = ap.parse_args()
    if missing := [str(p) for p in args.models if not p.is_file()]:
        ap.error("no such model file: " + ", ".join(missing))

    with np.load(args.val) as d:
        images, labels = d["images"], d["labels"].astype(np.int64)
    with np.load(args.ferplus_val) as v:
        votes, matched = v["votes"], v["matched"]
    parts = agreement_parts(labels, votes, matched)
    plurality = ferplus_class_votes(votes).argmax(axis=1)
    print("FER-2013 PublicTest label accuracy by whether FER+'s annotators agree with the label")
    print("| model | all ({}) | agree ({}) | disagree ({}) | disagree: follows FER+ | unmatched ({}) |".format(
        len(labels), *(int(parts[k].sum()) for k in ("agree", "disagree")), int(parts["unmatched"].sum())))
    print("|---|---|---|---|---|---|")
    majority = ferplus_clear_majority(votes)
    clear = matched & (majority >= 0)
    clear_agree, clear_contested = clear & (majority == labels), clear & (majority != labels)
    dis = parts["disagree"]
    rows = []
    for path in args.models:
        pred = predict(path, images)
        right = pred == labels
        print(f"| `{path}` | {right.mean():.1%} | {right[parts['agree']].mean():.1%} | {right[dis].mean():.1%} "
              f"| {(pred == plurality)[dis].mean():.1%} | {right[parts['unmatched']].mean():.1%} |", flush=True)
        rows.append((path, right[clear_agree].mean(), (pred == majority)[clear_contested].mean(),
                     right[clear_contested].mean(), right[dis & ~clear].mean()))
    print()
    print(f"Faces with a clear FER+ majority ({int(clear.sum())}): the label agrees ({int(clear_agree.sum())}) "
          f"or not ({int(clear_contested.sum())}); contested faces without one ({int((dis & ~clear).sum())})")
    print("| model | agreed: right | contested: FER+'s answer | contested: FER-2013's "
          "| no clear majority: FER-2013's |")
    print("|---|---|---|---|---|")
    for path, agreed, follows, keeps, unclear in rows:
        print(f"| `{path}` | {agreed:.1%} | {follows:.1%} | {keeps:.1%} | {unclear:.1%} |")
    share = {c: float((labels[parts["disagree"]] == i).sum() / max((labels == i).sum(), 1))
             for i, c in enumerate(CLASSES)}
    print("share of each FER-2013 class where FER+ disagrees: "
          + ", ".join(f"{c} {s:.0%}" for c, s in share.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
