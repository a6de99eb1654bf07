#!/bin/sh
# Every figure a model release quotes, for a candidate .tflite next to the shipped one, in one run
# (these machines are noisy: ratios against the shipped model in the same run are what count).
#
#     python models/training/export.py --checkpoint models/runs/RUN/best.keras --version X.Y \
#         --out-dir models/runs/RUN/export --no-card
#     models/training/candidate_figures.sh models/runs/RUN/export/moodindex-fer-v2.tflite models/runs/RUN/figures
#
# Writes one log per measurement into the output folder: PublicTest (FER-2013 labels and FER+
# majority, int8 as the indexer runs it), the split by FER+ agreement, real photos with the
# confusion matrix, the tag threshold, the photo-score rule, cost with the CPU's flags.  Model
# selection is train.py's PublicTest score only; these are measurements.  Never in CI (about 20
# minutes of CPU).
set -eu
[ $# -eq 2 ] || { echo "usage: $0 CANDIDATE.tflite OUT_DIR" >&2; exit 2; }
candidate=$1
out=$2
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python}
shipped=models/moodindex-fer-v2.tflite
data=../shared/data
mkdir -p "$out"
for model in "$shipped" "$candidate"; do
    tag=$(basename "$(dirname "$model")")-$(basename "$model" .tflite)
    $PY -m indexer model eval "$data/fer2013/fer2013_val.npz" --ferplus "$data/ferplus/ferplus_val.npz" \
        --model "$model" > "$out/publictest-$tag.log" 2>&1
done
$PY models/training/label_agreement.py "$shipped" "$candidate" > "$out/label_agreement.log" 2>&1
$PY benchmarks/calibrate_crop.py --margins 0,0.1 --model "$candidate" \
    --confusion-png "$out/confusion_matrix_real.png" > "$out/calibrate_crop.log" 2>&1
$PY benchmarks/tag_threshold.py --model "$candidate" > "$out/tag_threshold.log" 2>&1
$PY benchmarks/query_bench.py --aggregation "$data/facial_expressions_dev" --model "$candidate" \
    > "$out/aggregation.log" 2>&1
$PY benchmarks/model_cost.py --model "$shipped" --model "$candidate" > "$out/model_cost.log" 2>&1
echo "figures in $out"
