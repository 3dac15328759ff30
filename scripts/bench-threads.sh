#!/usr/bin/env bash
# How `stancekit predict` scales with cores: the same sentences at 1, 2, 4, …
# threads, each count pinned to that many CPUs (taskset), in a few variants of
# the process settings that src/runtime.rs and `predict` choose for 2 cores,
# beside PyTorch f32 at the same thread counts when PYTHON is given.
#
#   scripts/bench-threads.sh WORK_DIR
#
# WORK_DIR is a folder of scripts/bench-predict.sh (its `model/` and
# `input.jsonl` are read; run that script first). Environment:
#   THREADS   thread counts (default: 1 2 4 … up to the CPUs allowed, and that count)
#   ROUNDS    runs of each cell, the median is reported (default 2)
#   PRECISION f32 or int8 (default f32)
#   STANCEKIT the binary (default: the release binary, built if missing)
#   STANCEKIT_B a second binary, run as one more column (e.g. a change to compare)
#   PYTHON    an interpreter with torch and transformers: adds PyTorch f32
#   STANCEKIT_TUNABLES stancekit's malloc settings as GLIBC_TUNABLES (default: what
#             `cargo run --release --example bench_train_step -- --print-malloc-tunables` prints)
#
# Columns (sentences/s, in-process, input to output, as predict's summary line
# gives it):
#   default      as stancekit runs
#   arenas=N     glibc malloc with N arenas instead of runtime.rs's one (the
#                other malloc settings kept): one arena is a lock every thread
#                allocating a tensor takes
#   spin         CANDLE_BARRIER_POOL_SPIN_LIMIT=25000 (candle's own default)
#                instead of runtime.rs's 0, which parks idle workers at once
#   window=64    `--window 64` instead of 16: a window's 16 batches of
#                different lengths leave cores idle at its end once there are
#                about as many threads as batches
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:?usage: scripts/bench-threads.sh WORK_DIR (a scripts/bench-predict.sh folder)}"
rounds="${ROUNDS:-2}"
precision="${PRECISION:-f32}"
# shellcheck source=scripts/bench_lib.sh
. "$root/scripts/bench_lib.sh"
bin=$(stancekit_binary)
[ -f "$work/model/config.json" ] && [ -f "$work/input.jsonl" ] ||
    { echo "$work has no model/ and input.jsonl: run scripts/bench-predict.sh $work first" >&2; exit 2; }
# The CPUs this process may use, in order: each count is pinned to the first that many.
read -r -a allowed < <(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0)))')
cpus=${#allowed[@]}
if env | grep -qE '^(MALLOC_|GLIBC_TUNABLES=.*glibc\.malloc)'; then
    echo "malloc settings in the environment replace stancekit's own: unset them for the default column" >&2
    exit 2
fi
if [ -z "${THREADS:-}" ]; then
    THREADS=""
    for ((t = 1; t < cpus; t *= 2)); do THREADS="$THREADS $t"; done
    THREADS="$THREADS $cpus"
fi
if [ -z "${STANCEKIT_TUNABLES:-}" ]; then
    (cd "$root" && cargo build --release --quiet --example bench_train_step)
    STANCEKIT_TUNABLES=$("${CARGO_TARGET_DIR:-$root/target}/release/examples/bench_train_step" --print-malloc-tunables)
fi
[[ $STANCEKIT_TUNABLES == *arena_max=1* ]] ||
    { echo "STANCEKIT_TUNABLES has no arena_max=1 to vary: $STANCEKIT_TUNABLES" >&2; exit 2; }
out="$work/threads"
mkdir -p "$out"
: >"$out/results.tsv"

# One run: variant, threads, then the command's environment and arguments; appends "variant threads rate".
run() {
    local variant=$1 threads=$2
    shift 2
    local cores
    cores=$(IFS=,; echo "${allowed[*]:0:threads}")
    env RAYON_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads" \
        taskset -c "$cores" "$@" >"$out/last.stdout" 2>"$out/last.stderr" ||
        { echo "$variant at $threads threads failed:" >&2; tail -5 "$out/last.stderr" >&2; return 1; }
    local rate
    if [[ $variant == PyTorch* ]]; then
        rate=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["sentences_per_s"])' <"$out/last.stdout")
    else
        rate=$(grep -o '([0-9.]* sentences/s)' "$out/last.stderr" | tr -d '(' | cut -d' ' -f1 || true)
    fi
    [ -n "$rate" ] || { echo "$variant at $threads threads: no rate in its output" >&2; return 1; }
    printf '%s\t%s\t%s\n' "$variant" "$threads" "$rate" >>"$out/results.tsv"
}

predict=(predict --model "$work/model" --input "$work/input.jsonl" --output "$out/out.jsonl" --device cpu
    --precision "$precision")
for round in $(seq 1 "$rounds"); do
    for t in $THREADS; do
        echo "round $round, $t threads (load $(cut -d' ' -f1 /proc/loadavg))" >&2
        run default "$t" "$bin" "${predict[@]}"
        run "arenas=N" "$t" env GLIBC_TUNABLES="${STANCEKIT_TUNABLES/arena_max=1/arena_max=$t}" "$bin" "${predict[@]}"
        run spin "$t" env CANDLE_BARRIER_POOL_SPIN_LIMIT=25000 "$bin" "${predict[@]}"
        run "window=64" "$t" "$bin" "${predict[@]}" --window 64
        if [ -n "${STANCEKIT_B:-}" ]; then run STANCEKIT_B "$t" "$STANCEKIT_B" "${predict[@]}"; fi
        if [ -n "${PYTHON:-}" ]; then
            run "PyTorch f32" "$t" "$PYTHON" "$root/scripts/bench_predict.py" torch \
                "$work/model" "$work/input.jsonl" "$out/torch.jsonl" --batch-size 32 --threads "$t" --mode f32
        fi
    done
done

echo "$(machine_line); model: $work/model; precision $precision; $(wc -l <"$work/input.jsonl") sentences, batch 32; median of $rounds rounds"
python3 - "$out/results.tsv" <<'PY'
import statistics, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
variants = list(dict.fromkeys(r[0] for r in rows))
threads = sorted({int(r[1]) for r in rows})
rate = {(v, t): statistics.median(float(r[2]) for r in rows if r[0] == v and int(r[1]) == t)
        for v in variants for t in threads}
print("\n| threads | " + " | ".join(variants) + f" | default / {threads[0]} thread{'s' if threads[0] > 1 else ''} |")
print("|---:|" + "---:|" * (len(variants) + 1))
for t in threads:
    cells = [f"{rate[v, t]:.1f}" for v in variants]
    print(f"| {t} | " + " | ".join(cells) + f" | {rate['default', t] / rate['default', threads[0]]:.2f}x |")
PY
