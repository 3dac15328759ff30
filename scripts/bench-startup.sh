#!/usr/bin/env bash
# Start-up cost of --precision int8: `stancekit predict` on three sentences,
# f32 and int8 in turn, RUNS times each (default 9); prints the median wall
# time and peak RSS of each, and their ratio. What differs between the two is
# loading the model (int8 quantizes the encoder's linear weights as it reads
# them), so this is the cost of quantizing at load.
#
#   scripts/bench-startup.sh MODEL_DIR [RUNS]
#
# MODEL_DIR is a classifier folder (a run, or bench-predict.sh's WORK_DIR/model).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
model="${1:?usage: scripts/bench-startup.sh MODEL_DIR [RUNS]}"
runs="${2:-9}"
bin="${STANCEKIT:-$root/target/release/stancekit}"
[ -x "$bin" ] || (cd "$root" && cargo build --release --quiet)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf '%s\n' '{"text": "Kyiv must join the alliance now."}' '{"text": "The summit ended without a deal."}' \
    '{"text": "Europe should pay for its own defence."}' >"$work/in.jsonl"
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|avx512f|avx512_vnni|avx_vnni|amx_int8|amx_bf16' | xargs)
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs; flags: $flags; model: $model"
for i in $(seq 1 "$runs"); do
    for precision in f32 int8; do
        /usr/bin/time -f "$precision %e %M" -a -o "$work/times" "$bin" predict --model "$model" \
            --input "$work/in.jsonl" --output "$work/out.jsonl" --device cpu --precision "$precision" 2>/dev/null
    done
done
python3 - "$work/times" "$runs" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1]) if line[:3] in ("f32", "int")]
med = lambda p, i: statistics.median(float(r[i]) for r in rows if r[0] == p)
print(f"\n| {sys.argv[2]} runs each, medians | f32 | int8 | int8 / f32 |\n|---|---:|---:|---:|")
print(f"| wall time, whole process (s) | {med('f32', 1):.2f} | {med('int8', 1):.2f} | {med('int8', 1) / med('f32', 1):.2f}x |")
print(f"| peak RSS (MiB) | {med('f32', 2) / 1024:.0f} | {med('int8', 2) / 1024:.0f} | {med('int8', 2) / med('f32', 2):.2f}x |")
PY
