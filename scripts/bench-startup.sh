#!/usr/bin/env bash
# Start-up cost of --precision int8: `stancekit predict` on three sentences,
# f32, int8 and int8 with `--int8-f32-columns none` in turn, RUNS times each
# (default 9); prints the median wall time and peak RSS of each, and their
# ratio to f32. What differs is loading the model (int8 quantizes the
# encoder's linear weights as it reads them, and by default then runs a
# built-in text once to choose its f32 columns), so this is the cost of
# quantizing at load, with and without choosing the columns.
#
#   scripts/bench-startup.sh MODEL_DIR [RUNS]
#
# MODEL_DIR is a classifier folder (a run, or bench-predict.sh's WORK_DIR/model).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
model="${1:?usage: scripts/bench-startup.sh MODEL_DIR [RUNS]}"
runs="${2:-9}"
# shellcheck source=scripts/bench_lib.sh
. "$root/scripts/bench_lib.sh"
bin=$(stancekit_binary)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf '%s\n' '{"text": "Kyiv must join the alliance now."}' '{"text": "The summit ended without a deal."}' \
    '{"text": "Europe should pay for its own defence."}' >"$work/in.jsonl"
echo "$(machine_line); model: $model"
for i in $(seq 1 "$runs"); do
    for variant in f32 int8 int8-none; do
        args=(--precision "${variant%-none}")
        [ "$variant" = int8-none ] && args+=(--int8-f32-columns none)
        /usr/bin/time -f "$variant %e %M" -a -o "$work/times" "$bin" predict --model "$model" \
            --input "$work/in.jsonl" --output "$work/out.jsonl" --device cpu "${args[@]}" 2>/dev/null
    done
done
python3 - "$work/times" "$runs" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1]) if line.split()[:1] and line.split()[0] in ("f32", "int8", "int8-none")]
med = lambda p, i: statistics.median(float(r[i]) for r in rows if r[0] == p)
names = {"f32": "f32", "int8": "int8 (columns chosen at load)", "int8-none": "int8, `--int8-f32-columns none`"}
print(f"\n| {sys.argv[2]} runs each, medians | wall time, whole process (s) | / f32 | peak RSS (MiB) | / f32 |\n|---|---:|---:|---:|---:|")
for v, name in names.items():
    print(f"| {name} | {med(v, 1):.2f} | {med(v, 1) / med('f32', 1):.2f}x | {med(v, 2) / 1024:.0f} | {med(v, 2) / med('f32', 2):.2f}x |")
PY
