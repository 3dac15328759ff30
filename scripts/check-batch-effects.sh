#!/usr/bin/env bash
# How far batching moves a model's probabilities: `stancekit predict` with
# --batch-size 1 (every sentence alone, unpadded) against the default (32,
# sorted by length within a window), at f32 and at int8. Which sentences share
# a forward pass decides how far each is padded, and so the order of its
# float sums; `serve` batches requests as they arrive, so its rows differ
# from `predict`'s by as much.
#
#   scripts/check-batch-effects.sh RUN [INPUT]
#
# INPUT defaults to datasets/dev.jsonl. Environment: STANCEKIT (default: the
# release binary, built if missing), WORK (default: a temporary folder).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
model="${1:?usage: scripts/check-batch-effects.sh RUN [INPUT]}"
input="${2:-$root/datasets/dev.jsonl}"
# shellcheck source=scripts/bench_lib.sh
. "$root/scripts/bench_lib.sh"
bin=$(stancekit_binary)
work="${WORK:-$(mktemp -d)}"
mkdir -p "$work"
echo "$(machine_line); model: $model; input: $input"
for precision in f32 int8; do
    for batch in 1 32; do
        "$bin" predict --model "$model" --input "$input" --precision "$precision" --batch-size "$batch" \
            --output "$work/$precision-$batch.jsonl" 2>/dev/null
    done
done
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
rows = lambda name: [json.loads(line) for line in open(f"{work}/{name}.jsonl")]
print("| precision | rows | max |Δp|, batch 1 vs 32 | rows whose max |Δp| > 1e-3 | labels changed |")
print("|---|---|---|---|---|")
for precision in ("f32", "int8"):
    alone, batched = rows(f"{precision}-1"), rows(f"{precision}-32")
    assert [(a["id"], a["target"]) for a in alone] == [(b["id"], b["target"]) for b in batched]
    deltas = [max(abs(a["probs"][k] - b["probs"][k]) for k in a["probs"]) for a, b in zip(alone, batched)]
    changed = sum(a["label"] != b["label"] for a, b in zip(alone, batched))
    print(f"| {precision} | {len(deltas)} | {max(deltas):.1e} | {sum(d > 1e-3 for d in deltas)} | {changed} |")
PY
