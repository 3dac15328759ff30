#!/usr/bin/env bash
# P-Stance (Li et al., 2021): tweets about Donald Trump, Joe Biden and Bernie
# Sanders, labelled favor or against (no `none`); 17,224 train, 2,193 val and
# 2,157 test tweets. A public stance set beyond the two the recipes were chosen
# on. Writes a targets file, drops the train files' conflicting duplicates
# (into JSONL), trains one recipe on train (val selects, as
# `train` does), scores test beside the baselines and prints eval's table, the
# val F_avg of each evaluation and the training wall time.
#
# Usage: scripts/benchmark-pstance.sh NAME
# Environment:
#   PSTANCE     folder with raw_{train,val,test}_{trump,biden,bernie}.csv (the
#               authors give the data on request; a copy is in the data/ folder of
#               github.com/kayzhou/PStance). Read in place, never committed here.
#   TRAIN_FLAGS `stancekit train` flags of the recipe, e.g. "--model models/all-mpnet-base-v2 --freeze-encoder"
#   BIN         the stancekit binary (default target/release/stancekit, built or brought up to date first)
#   OUT         where the data, runs and reports go (default runs/pstance)
#   EVAL_FLAGS  extra `stancekit eval` flags, e.g. "--precision int8"
set -euo pipefail
name="${1:?usage: scripts/benchmark-pstance.sh NAME (TRAIN_FLAGS gives the recipe)}"
PSTANCE=${PSTANCE:?set PSTANCE to the folder holding raw_train_trump.csv and the other eight files}
[ -f "$PSTANCE/raw_train_trump.csv" ] || { echo "no P-Stance CSV files in $PSTANCE (set PSTANCE)" >&2; exit 1; }
PSTANCE=$(realpath "$PSTANCE")
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/pstance}
if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet
    BIN=target/release/stancekit
fi
data="$OUT/data"
mkdir -p "$data"
# The CSV files name SemEval's columns (Tweet, Target, Stance): targets by
# description, stances in capitals, which stancekit reads as they are.
cat > "$data/targets.json" <<'JSON'
{
  "labels": ["favor", "against"],
  "targets": {"trump": "Donald Trump", "biden": "Joe Biden", "bernie": "Bernie Sanders"}
}
JSON
train=("$PSTANCE"/raw_train_{trump,biden,bernie}.csv)
val=("$PSTANCE"/raw_val_{trump,biden,bernie}.csv)
test=("$PSTANCE"/raw_test_{trump,biden,bernie}.csv)
# One train tweet carries both labels for Bernie Sanders; train refuses such conflicts.
"$BIN" data clean "${train[@]}" --targets "$data/targets.json" --out "$data/train-clean.jsonl" >&2
run="$OUT/$name"
start=$(date +%s)
# shellcheck disable=SC2086
"$BIN" train --quiet --overwrite --out "$run" --train "$data/train-clean.jsonl" --dev "${val[@]}" \
    --targets "$data/targets.json" ${TRAIN_FLAGS:-}
end=$(date +%s)
val_f_avg=$(python3 -c 'import json, sys
print(", ".join("%.1f" % (100 * json.loads(l)["eval_f_avg"]) for l in open(sys.argv[1])))' "$run/metrics.jsonl")
echo "$name: trained in $((end - start)) s; val F_avg by evaluation: $val_f_avg"
# shellcheck disable=SC2086
"$BIN" eval --model "$run" --data "${test[@]}" --report "$run/report-test" ${EVAL_FLAGS:-}
