#!/usr/bin/env bash
# Device check for a `--features cuda` build: one epoch of `train`'s
# fine-tuning defaults on MODEL on the GPU against the same epoch on the CPU
# (same seed, data and binary), then prediction speed on both. Prints what it compares; exits non-zero if the two
# runs' dev probabilities differ by more than TOL.
#
#   scripts/check-cuda.sh BIN MODEL OUT_DIR [INPUT.jsonl]
#
# BIN is a stancekit built with `scripts/build-cuda.sh`; MODEL a base model
# folder; INPUT (optional) sentences to time `predict` on (e.g. the benchmark's
# 2,048 news sentences). Environment: TOL (default 1e-3), EPOCHS (default 1),
# TRAIN_FLAGS (more `train` flags for both runs, e.g. "--learning-rate 5e-5"),
# FIRST (train on the first FIRST records of datasets/train.jsonl alone),
# DEVICES (default "cpu cuda"): the runs to make. With one device at a time the
# two halves can run on different machines into the same OUT_DIR (copy the other
# half's files in); the comparison runs once both are there (DEVICES= compares only).
# MPNet's one-epoch runs part beyond TOL (rounding error that dropout amplifies over
# the epoch; README, "GPU"): check it over a few steps, FIRST=64 (4 steps).
set -uo pipefail
# Paths as given, then the repository root (for datasets/).
bin=$(realpath -m "${1:?usage: $0 BIN MODEL OUT_DIR [INPUT.jsonl]}")
model=$(realpath -m "${2:?model folder}")
out=$(realpath -m "${3:?output folder}")
input=${4:+$(realpath -m "$4")}
cd "$(dirname "$0")/.."
tol=${TOL:-1e-3}
mkdir -p "$out"

now() { date +%s.%N; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

devices=${DEVICES-cpu cuda}
first=()
if [ -n "${FIRST:-}" ]; then
    head -n "$FIRST" datasets/train.jsonl >"$out/train-first.jsonl"
    first=(--train "$out/train-first.jsonl")
fi
nvidia-smi -L 2>/dev/null || echo "nvidia-smi: not found"
for dev in $devices; do
    t0=$(now)
    # shellcheck disable=SC2086 # TRAIN_FLAGS is a list of words
    "$bin" train --quiet --overwrite --model "$model" --seed 1 --num-train-epochs "${EPOCHS:-1}" \
        --device "$dev" --out "$out/$dev" "${first[@]}" ${TRAIN_FLAGS:-} >"$out/train-$dev.log" 2>&1 || { cat "$out/train-$dev.log"; exit 1; }
    t1=$(now)
    "$bin" predict --model "$out/$dev" --input datasets/dev.jsonl --device "$dev" \
        --output "$out/dev-$dev.jsonl" 2>"$out/predict-$dev.log" || { cat "$out/predict-$dev.log"; exit 1; }
    echo "train $dev: $(seconds "$t0" "$t1") s wall for ${EPOCHS:-1} epoch(s)"
    tail -n 1 "$out/$dev/metrics.jsonl"
done

status=0
if [ -f "$out/dev-cpu.jsonl" ] && [ -f "$out/dev-cuda.jsonl" ]; then
python3 - "$out" "$tol" <<'EOF'
import json, sys
out, tol = sys.argv[1], float(sys.argv[2])
def rows(dev):
    return [json.loads(l) for l in open(f"{out}/dev-{dev}.jsonl")]
def last(dev):
    return json.loads(open(f"{out}/{dev}/metrics.jsonl").read().splitlines()[-1])
cpu, gpu = rows("cpu"), rows("cuda")
diff = max(abs(a - b) for r, s in zip(cpu, gpu) for a, b in zip(r["probs"].values(), s["probs"].values()))
same = sum(r["label"] == s["label"] for r, s in zip(cpu, gpu))
mc, mg = last("cpu"), last("cuda")
for k in ("train_loss", "eval_loss", "eval_macro_f1", "eval_f_avg"):
    print(f"{k:>14}: cpu {mc[k]:.6f}  cuda {mg[k]:.6f}  |diff| {abs(mc[k] - mg[k]):.2e}")
print(f"dev predictions: {len(cpu)} rows, same label {same}, max |prob diff| {diff:.2e} (tolerance {tol:g})")
sys.exit(0 if len(cpu) == len(gpu) and diff <= tol else 1)
EOF
status=$?
fi

if [ -n "$input" ]; then
    for dev in $devices; do
        for batch in 32 256; do
            "$bin" predict --model "$out/$dev" --input "$input" --device "$dev" --batch-size "$batch" \
                --output "$out/speed-$dev-$batch.jsonl" 2>"$out/speed-$dev-$batch.log"
            echo "predict $dev, batch $batch: $(grep -o '[0-9.]* sentences/s' "$out/speed-$dev-$batch.log" | tail -1)"
        done
    done
fi
exit $status
