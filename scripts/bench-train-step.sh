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
# PyTorch runs twice per round: as it comes, and with glibc's malloc set as
# stancekit sets its own (src/runtime.rs: no mmap, no trimming), which spares
# PyTorch the same page faults; the table gives the ratio to each.
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
# What src/runtime.rs's tune_malloc sets, as glibc tunables.
malloc_tunables="$("$target/release/examples/bench_train_step" --print-malloc-tunables)"

for round in $(seq "$rounds"); do
    echo "round $round/$rounds, stancekit: $steps steps after $warmup warm-up steps (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    RAYON_NUM_THREADS="$threads" "$target/release/examples/bench_train_step" \
        --model "$model" --steps "$steps" --warmup "$warmup" --save-batch "$tmp/batch.json" --json \
        >"$tmp/candle-$round.json"
    for side in torch torch-malloc; do
        tunables=""
        [ "$side" = torch-malloc ] && tunables="$malloc_tunables"
        echo "round $round/$rounds, $side: $steps steps after $warmup warm-up steps (load $(cut -d' ' -f1 /proc/loadavg))" >&2
        GLIBC_TUNABLES="$tunables" "$python" "$root/scripts/bench_train_step.py" --batch "$tmp/batch.json" \
            --model "$model" --steps "$steps" --warmup "$warmup" --threads "$threads" \
            >"$tmp/$side-$round.json" 2>"$tmp/torch.log" || { cat "$tmp/torch.log" >&2; exit 1; }
    done
done

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs;" \
    "flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|avx512f|avx512_vnni|avx_vnni|amx_int8|amx_bf16' | xargs);" \
    "model: $(basename "$model")"
"$python" - "$tmp" "$rounds" <<'PY'
import json, statistics, sys
tmp, rounds = sys.argv[1], int(sys.argv[2])
runs = {side: [json.load(open(f"{tmp}/{side}-{r}.json")) for r in range(1, rounds + 1)]
        for side in ("candle", "torch", "torch-malloc")}
c, t = runs["candle"][0], runs["torch"][0]
def pooled(side, key):
    return [x for run in runs[side] for x in run["samples"][key]]
def med(side, key):
    return statistics.median(pooled(side, key))
def mean_of(side, key):
    return statistics.mean(run[key] for run in runs[side])
def row(name, f, fmt="{:.1f}"):
    a, b, m = f("candle"), f("torch"), f("torch-malloc")
    print(f"| {name} | {fmt.format(a)} | {fmt.format(b)} | {a / b:.2f}x | {fmt.format(m)} | {a / m:.2f}x |")
n = sum(len(run["samples"]["step_ms"]) for run in runs["candle"])
print(f"Training step, batch 16 x 64 tokens, {c['threads']} threads, median of {n} steps"
      + (f" ({rounds} alternating rounds)" if rounds > 1 else "") + " (ms)")
print()
print(f"| phase | {c['system']} | {t['system']} | ratio | same, stancekit's malloc settings | ratio |")
print("|---|---:|---:|---:|---:|---:|")
for key, name in [("forward_ms", "forward + loss"), ("backward_ms", "backward"),
                  ("optimizer_ms", "clip + AdamW"), ("step_ms", "step")]:
    row(name, lambda side: med(side, key))
row("fastest step", lambda side: min(pooled(side, "step_ms")))
row("CPU time per step, all threads", lambda side: mean_of(side, "cpu_step_ms"))
faults = [f"{mean_of(side, 'page_faults_per_step'):.0f}" for side in ("candle", "torch", "torch-malloc")]
print(f"| minor page faults per step | {faults[0]} | {faults[1]} | | {faults[2]} | |")
print(f"| loss, first -> last step of round 1 | {c['first_loss']:.4f} -> {c['last_loss']:.4f} "
      f"| {t['first_loss']:.4f} -> {t['last_loss']:.4f} | | | |")
PY
