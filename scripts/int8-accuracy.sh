#!/usr/bin/env bash
# int8 against f32 on labelled data: `stancekit eval` at both precisions, then
# one table row per (run, data): pooled F_avg and macro-F1 (×100) of each, the
# label agreement and the largest probability difference over all pairs.
#
#   scripts/int8-accuracy.sh RUN:DATA [RUN:DATA ...]
#
# DATA is anything `eval --data` takes (a JSONL file, or FOLDER:SPLIT for
# TweetEval, e.g. ../shared/datasets/tweeteval-stance:test). Environment:
# STANCEKIT (default: the release binary, built if missing), WORK (default: a
# temporary folder), EVAL_ARGS (more `eval` flags, e.g. "--targets
# datasets/targets.json" for TweetEval), INT8_ARGS (flags for the int8 run
# alone, e.g. "--int8-keep-f32 ffn-out"), STANCEKIT_INT8_KERNEL to force a kernel.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
if [ $# -eq 0 ]; then
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
# shellcheck source=scripts/bench_lib.sh
. "$root/scripts/bench_lib.sh"
bin=$(stancekit_binary)
work="${WORK:-$(mktemp -d)}"
mkdir -p "$work"
echo "$(machine_line); kernel: ${STANCEKIT_INT8_KERNEL:-auto}; int8 flags: ${INT8_ARGS:-(defaults)}"
echo
echo "| run | data | pairs | F_avg f32 | F_avg int8 | Δ | macro-F1 f32 | macro-F1 int8 | Δ | same label | max abs Δp |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
i=0
for pair in "$@"; do
    run="${pair%%:*}"
    data="${pair#*:}"
    i=$((i + 1))
    for precision in f32 int8; do
        extra=""
        [ "$precision" = int8 ] && extra="${INT8_ARGS:-}"
        # shellcheck disable=SC2086
        "$bin" eval --model "$run" --data "$data" --precision "$precision" --device cpu ${EVAL_ARGS:-} $extra \
            --report "$work/$i-$precision" >"$work/$i-$precision.log" 2>&1 ||
            { cat "$work/$i-$precision.log" >&2; exit 1; }
    done
    python3 - "$run" "$data" "$work/$i-f32" "$work/$i-int8" <<'PY'
import json, os, sys
run, data, a, b = sys.argv[1:]
def load(d):
    m = json.load(open(os.path.join(d, "metrics.json")))["systems"][0]["pooled"]
    preds = [json.loads(l) for l in open(os.path.join(d, "predictions.jsonl"))]
    return m, preds
(ma, pa), (mb, pb) = load(a), load(b)
assert len(pa) == len(pb) and all((x["id"], x["target"]) == (y["id"], y["target"]) for x, y in zip(pa, pb))
same = sum(x["label"] == y["label"] for x, y in zip(pa, pb)) / len(pa)
dp = max(abs(x["probs"][k] - y["probs"][k]) for x, y in zip(pa, pb) for k in x["probs"])
f = lambda v: f"{100 * v:.1f}"
d = lambda x, y: f"{100 * (y - x):+.1f}"
print(f"| {os.path.basename(run.rstrip('/'))} | {data} | {len(pa)} | {f(ma['f_avg'])} | {f(mb['f_avg'])} | {d(ma['f_avg'], mb['f_avg'])} "
      f"| {f(ma['macro_f1'])} | {f(mb['macro_f1'])} | {d(ma['macro_f1'], mb['macro_f1'])} | {100 * same:.1f} % | {dp:.3f} |")
PY
done
