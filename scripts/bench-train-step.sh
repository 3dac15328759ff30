#!/usr/bin/env bash
# Time one fine-tuning step (batch 16, 64 tokens, AdamW, clipping) in stancekit
# and in PyTorch transformers on the same model and batch, one after the other,
# and print a markdown table with the ratio.
#
# Usage: scripts/bench-train-step.sh [MODEL_DIR] [STEPS] [WARMUP]
#   PYTHON   interpreter with torch + transformers (default python3)
#   THREADS  threads for both sides (default 2)
#   CARGO_FLAGS  extra flags for the cargo build; SKIP_BUILD=1 uses the binary already built.
# CARGO_TARGET_DIR is honoured.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
model="${1:-$root/models/all-MiniLM-L6-v2}"
steps="${2:-20}"
warmup="${3:-3}"
python="${PYTHON:-python3}"
threads="${THREADS:-2}"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cd "$root"
if [ -z "${SKIP_BUILD:-}" ]; then
    # shellcheck disable=SC2086
    cargo build --release --quiet --example bench_train_step ${CARGO_FLAGS:-}
fi
target="${CARGO_TARGET_DIR:-$root/target}"

echo "stancekit: $steps steps after $warmup warm-up steps ..." >&2
RAYON_NUM_THREADS="$threads" "$target/release/examples/bench_train_step" \
    --model "$model" --steps "$steps" --warmup "$warmup" --save-batch "$tmp/batch.json" --json >"$tmp/candle.json"
echo "PyTorch: $steps steps after $warmup warm-up steps ..." >&2
"$python" "$root/scripts/bench_train_step.py" --batch "$tmp/batch.json" --model "$model" \
    --steps "$steps" --warmup "$warmup" --threads "$threads" >"$tmp/torch.json"

"$python" - "$tmp/candle.json" "$tmp/torch.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
t = json.load(open(sys.argv[2]))
print(f"Training step, batch 16 x 64 tokens, {c['threads']} threads, median of {c['steps']} steps (ms)")
print()
print(f"| phase | {c['system']} | {t['system']} | ratio |")
print("|---|---:|---:|---:|")
for key, name in [("forward_ms", "forward + loss"), ("backward_ms", "backward"),
                  ("optimizer_ms", "clip + AdamW"), ("step_ms", "step")]:
    print(f"| {name} | {c[key]:.1f} | {t[key]:.1f} | {c[key] / t[key]:.2f}x |")
print(f"| CPU time per step, all threads | {c['cpu_step_ms']:.1f} | {t['cpu_step_ms']:.1f} | {c['cpu_step_ms'] / t['cpu_step_ms']:.2f}x |")
print(f"| minor page faults per step | {c['page_faults_per_step']:.0f} | {t['page_faults_per_step']:.0f} | |")
print(f"| step min-max | {c['step_min_ms']:.0f}-{c['step_max_ms']:.0f} | {t['step_min_ms']:.0f}-{t['step_max_ms']:.0f} | |")
print(f"| loss first -> last | {c['first_loss']:.4f} -> {c['last_loss']:.4f} | {t['first_loss']:.4f} -> {t['last_loss']:.4f} | |")
PY
