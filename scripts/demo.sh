#!/usr/bin/env bash
# The main job, end to end on a fresh machine: fetch the default model (if
# missing), build, check the data, fine-tune with the default recipe, and score
# the result on the article test set.
#
# Usage: scripts/demo.sh [RUN_DIR]        (default: runs/default)
# Extra `stancekit train` flags can be passed in TRAIN_FLAGS, e.g.
#   TRAIN_FLAGS="--num-train-epochs 1" scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR=${1:-runs/default}

scripts/fetch-model.sh
cargo build --release
BIN=target/release/stancekit

$BIN data check datasets/*.jsonl
start=$(date +%s)
# shellcheck disable=SC2086
$BIN train --out "$RUN_DIR" --overwrite ${TRAIN_FLAGS:-}
echo "training took $(( $(date +%s) - start )) s"
$BIN eval --model "$RUN_DIR" --data datasets/article.jsonl --report "$RUN_DIR/report-article"
