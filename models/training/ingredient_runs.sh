#!/bin/sh
# The model card's ingredient table: model 2.0's recipe with one ingredient off per run, all on
# the same short schedule (8 epochs, 1 of warm-up), one after the other.  Each run checkpoints
# every epoch: run this again to resume.  Then print the table:
#     python models/training/ingredients.py models/runs/ingr-*
# Never in CI (hours of CPU).
set -e
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python}
SHORT="--epochs 8 --warmup-epochs 1"
$PY models/training/train.py --run models/runs/ingr-full $SHORT
$PY models/training/train.py --run models/runs/ingr-no-ferplus $SHORT --ferplus-weight 0
$PY models/training/train.py --run models/runs/ingr-no-real $SHORT --real ''
$PY models/training/train.py --run models/runs/ingr-no-camera-aug $SHORT --no-camera-aug
$PY models/training/train.py --run models/runs/ingr-real-full-loss $SHORT --real-loss full
