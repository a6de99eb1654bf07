#!/bin/sh
# How FER-2013 label accuracy trades against FER+ accuracy as the target mix moves: 2.0's weights
# (res-v3's best epoch) fine-tuned for 2 epochs (lr 0.01 -> 0, no warm-up) at FER+ weights 0.4
# (2.0's own mix: the control, what the extra epochs alone do), 0.2 and 0.  Each run checkpoints
# every epoch: run this again to resume.  Then print the table:
#     python models/training/ingredients.py models/runs/mix-w*
# Never in CI (about 30 minutes of CPU).
set -e
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python}
FT="--init-from models/runs/res-v3/best.keras --epochs 2 --warmup-epochs 0 --lr 0.01"
for weight in 0.4 0.2 0; do
    $PY models/training/train.py --run "models/runs/mix-w$weight" $FT --ferplus-weight "$weight"
done
