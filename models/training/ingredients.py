"""The model card's ingredient table: what each part of 2.0's recipe adds, one row per run.

    python models/training/ingredients.py models/runs/abl-full models/runs/abl-no-ferplus ...

Each run is a `train.py` run of the same schedule with one ingredient turned off (its flags
come from the run's own `invocations.jsonl`, so a row can't claim a recipe it wasn't trained
with).  Per run: the best epoch's PublicTest figures from `log.csv` (float, as selected by
train.py) and the float figures of its `best.keras` on the real dev photos
(`dev_diagnostics.dev_figures`).  Prints a markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dev_diagnostics import dev_crops, dev_figures, load_checkpoint  # noqa: E402
from train import DEFAULT_FERPLUS_WEIGHT, DEFAULT_STEM, DEFAULT_WIDTHS  # noqa: E402

from indexer.vision.crop import normalise  # noqa: E402

#: train.py flags that name an ingredient, and how the table says it is off
INGREDIENT_FLAGS = {
    "ferplus_weight": lambda v: ("FER-2013 labels only (no FER+ votes)" if float(v) == 0
                                 else f"FER+ weight {float(v):g}" if float(v) != DEFAULT_FERPLUS_WEIGHT else None),
    "real": lambda v: "no real-photo faces" if v in ("", "None") else None,
    "camera_aug": lambda v: "no camera augmentation" if v == "False" else None,
    "teacher": lambda v: f"distilled from {v}" if v not in ("", "None") else None,
    "real_loss": lambda v: "real faces as 7-way labels (full loss)" if v == "full" else None,
    "init_from": lambda v: f"fine-tuned from `{v}`" if v not in ("", "None") else None,
    "stem": lambda v: f"stem {v} channels" if int(v) != DEFAULT_STEM else None,
    "widths": lambda v: f"stage widths {v}" if v != DEFAULT_WIDTHS else None,
}


def describe(flags: dict) -> str:
    """'full recipe' or the ingredients this run left out."""
    off = [text for key, rule in INGREDIENT_FLAGS.items() if key in flags and (text := rule(flags[key]))]
    return "; ".join(off) if off else "full recipe"


def best_row(run: Path) -> dict:
    with open(run / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    best = max(rows, key=lambda r: float(r["score"]))
    best["epochs_done"] = len(rows)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    args = ap.parse_args()
    images, y = dev_crops()
    x = normalise(images)
    print("| run | recipe | epochs | best | FER-2013 | FER+ majority | dev acc | dev balanced | n->a | s->a | s->n |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for run in args.runs:
        flags = json.loads((run / "invocations.jsonl").read_text().splitlines()[-1])
        flags.setdefault("real_loss", "full")  # runs from before --real-loss trained real faces as 7-way labels
        row = best_row(run)
        f = dev_figures(load_checkpoint(run / "best.keras"), x, y)
        print(f"| `{run.name}` | {describe(flags)} | {row['epochs_done']}/{flags['epochs']} | {row['epoch']} "
              f"| {float(row['val_fer2013']):.1%} | {float(row['val_ferplus_majority']):.1%} "
              f"| {f['accuracy']:.1%} | {f['balanced']:.1%} | {f['neutral_to_angry']} "
              f"| {f['surprise_to_angry']} | {f['surprise_to_neutral']} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
