#!/usr/bin/env bash
# TweetEval stance (= SemEval-2016 Task 6 A): one model over all five targets
# (the target description is the pair's first text), trained on train, selected
# on val, scored on test; several seeds. Prints the official pooled F_avg and
# the per-target F_avg, mean ± std, with wall times.
#
# Usage: scripts/benchmark-tweeteval.sh [SEED...]          (default seeds: 1 2 3)
# Environment:
#   TWEETEVAL   the TweetEval stance folder (default ../shared/datasets/tweeteval-stance;
#               its terms forbid redistribution, so it is read in place, never copied here)
#   BIN         the stancekit binary (default target/release/stancekit, built or brought up to date first)
#   OUT         where runs go (default runs/tweeteval)
#   TRAIN_FLAGS extra `stancekit train` flags, e.g. "--learning-rate 3e-5 --num-train-epochs 4"
#   TARGETS     the targets file whose descriptions the model reads (default datasets/targets.json)
set -euo pipefail
cd "$(dirname "$0")/.."
TWEETEVAL=${TWEETEVAL:-../shared/datasets/tweeteval-stance}
OUT=${OUT:-runs/tweeteval}
TARGETS=${TARGETS:-datasets/targets.json}
SEEDS=("${@:-1 2 3}")
read -r -a SEEDS <<< "${SEEDS[*]}"
if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet
    BIN=target/release/stancekit
fi
[ -f "$TWEETEVAL/mapping.txt" ] || { echo "no TweetEval stance folder at $TWEETEVAL (set TWEETEVAL)" >&2; exit 1; }
mkdir -p "$OUT"

for seed in "${SEEDS[@]}"; do
    run="$OUT/seed-$seed"
    start=$(date +%s)
    # shellcheck disable=SC2086
    "$BIN" train --quiet --overwrite --seed "$seed" --out "$run" \
        --train "$TWEETEVAL:train" --dev "$TWEETEVAL:val" --targets "$TARGETS" \
        ${TRAIN_FLAGS:-} > "$run.log"
    end=$(date +%s)
    "$BIN" eval --model "$run" --data "$TWEETEVAL:test" --targets "$TARGETS" \
        --train "$TWEETEVAL:train" --report "$run/report-test" > /dev/null
    echo "$((end - start))" > "$run/train_seconds"
done

python3 scripts/summarize_tweeteval.py "${SEEDS[@]/#/$OUT/seed-}"
