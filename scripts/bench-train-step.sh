#!/usr/bin/env bash
# Time one fine-tuning step (batch 16, 64 tokens, dropout on, AdamW, clipping)
# in stancekit and in PyTorch transformers on the same model and batch, one
# after the other, and print a markdown table with the ratio.
#
# Usage: scripts/bench-train-step.sh [MODEL_DIR] [STEPS] [WARMUP]
#   PYTHON       interpreter with torch + transformers (default python3)
#   THREADS      threads for both sides (default 2)
#   ROUNDS       alternate the two sides this many times (default 1) and pool
#                the steps: on a machine shared with other work, load that
#                comes and goes then hits both sides alike
#   CARGO_FLAGS  extra flags for the cargo build; SKIP_BUILD=1 uses the binary already built
# CARGO_TARGET_DIR is honoured.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
model="${1:-$root/models/all-MiniLM-L6-v2}"
steps="${2:-20}"
warmup="${3:-3}"
python="${PYTHON:-python3}"
threads="${THREADS:-2}"
rounds="${ROUNDS:-1}"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cd "$root"
if [ -z "${SKIP_BUILD:-}" ]; then
    # shellcheck disable=SC2086
    cargo build --release --quiet --example bench_train_step ${CARGO_FLAGS:-}
fi
target="${CARGO_TARGET_DIR:-$root/target}"

for round in $(seq "$rounds"); do
    echo "round $round/$rounds, stancekit: $steps steps after $warmup warm-up steps (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    RAYON_NUM_THREADS="$threads" "$target/release/examples/bench_train_step" \
        --model "$model" --steps "$steps" --warmup "$warmup" --save-batch "$tmp/batch.json" --json \
        >"$tmp/candle-$round.json"
    echo "round $round/$rounds, PyTorch: $steps steps after $warmup warm-up steps (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    "$python" "$root/scripts/bench_train_step.py" --batch "$tmp/batch.json" --model "$model" \
        --steps "$steps" --warmup "$warmup" --threads "$threads" >"$tmp/torch-$round.json" 2>"$tmp/torch.log" \
        || { cat "$tmp/torch.log" >&2; exit 1; }
done

"$python" - "$tmp" "$rounds" <<'PY'
import json, statistics, sys
tmp, rounds = sys.argv[1], int(sys.argv[2])
runs = {side: [json.load(open(f"{tmp}/{side}-{r}.json")) for r in range(1, rounds + 1)] for side in ("candle", "torch")}
c, t = runs["candle"][0], runs["torch"][0]
def pooled(side, key):
    return [x for run in runs[side] for x in run["samples"][key]]
def med(side, key):
    return statistics.median(pooled(side, key))
def mean_of(side, key):
    return statistics.mean(run[key] for run in runs[side])
n = sum(len(run["samples"]["step_ms"]) for run in runs["candle"])
print(f"Training step, batch 16 x 64 tokens, {c['threads']} threads, median of {n} steps"
      + (f" ({rounds} alternating rounds)" if rounds > 1 else "") + " (ms)")
print()
print(f"| phase | {c['system']} | {t['system']} | ratio |")
print("|---|---:|---:|---:|")
for key, name in [("forward_ms", "forward + loss"), ("backward_ms", "backward"),
                  ("optimizer_ms", "clip + AdamW"), ("step_ms", "step")]:
    a, b = med("candle", key), med("torch", key)
    print(f"| {name} | {a:.1f} | {b:.1f} | {a / b:.2f}x |")
a, b = min(pooled("candle", "step_ms")), min(pooled("torch", "step_ms"))
print(f"| fastest step | {a:.1f} | {b:.1f} | {a / b:.2f}x |")
a, b = mean_of("candle", "cpu_step_ms"), mean_of("torch", "cpu_step_ms")
print(f"| CPU time per step, all threads | {a:.1f} | {b:.1f} | {a / b:.2f}x |")
print(f"| minor page faults per step | {mean_of('candle', 'page_faults_per_step'):.0f} | {mean_of('torch', 'page_faults_per_step'):.0f} | |")
print(f"| loss, first -> last step of round 1 | {c['first_loss']:.4f} -> {c['last_loss']:.4f} | {t['first_loss']:.4f} -> {t['last_loss']:.4f} | |")
PY
