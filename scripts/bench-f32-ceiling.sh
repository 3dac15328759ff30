#!/usr/bin/env bash
# How close f32 matrix products come to what the CPU can do: one thread's
# f32 multiply-adds per second (independent FMAs on registers), against
# stancekit's f32 linear layer (candle's matmul, the gemm crate) and
# PyTorch's (torch.nn.functional.linear, MKL or oneDNN), on the encoders'
# layer shapes. The products are most of an f32 forward pass (see the
# profiles in docs/performance.md), so this bounds how far stancekit f32 can get ahead
# of PyTorch f32 on this CPU.
#
#   scripts/bench-f32-ceiling.sh
#
# Environment: PYTHON (default python3) must have torch; ROWS (default 800:
# a batch of 32 pairs of about 25 tokens) input rows; ROUNDS (default 3)
# alternating runs of each side, each the fastest of 9 timings; the table
# gives the medians of the rounds. One thread on each side.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/bench_lib.sh
. "$root/scripts/bench_lib.sh"
python="${PYTHON:-python3}"
rows="${ROWS:-800}"
rounds="${ROUNDS:-3}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "building the example..." >&2
(cd "$root" && cargo build --release --quiet --example bench_int8_gemm)
example="${CARGO_TARGET_DIR:-$root/target}/release/examples/bench_int8_gemm"

for round in $(seq 1 "$rounds"); do
    RAYON_NUM_THREADS=1 "$example" --rows "$rows" --reps 9 --best --peak --kernel none >"$work/stancekit.$round"
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 "$python" "$root/scripts/bench_predict.py" linear --rows "$rows" --threads 1 \
        --reps 9 >"$work/torch.$round"
    echo "round $round done" >&2
done

machine_line
echo "rows: $rows, one thread, medians of $rounds rounds (each the fastest of 9 runs)"
echo
"$python" - "$work" "$rounds" <<'PY'
import re
import statistics
import sys
from pathlib import Path

work, rounds = Path(sys.argv[1]), int(sys.argv[2])
peaks, ours, theirs = [], {}, {}
for r in range(1, rounds + 1):
    text = (work / f"stancekit.{r}").read_text()
    peak = re.search(r"f32 peak, one thread: ([0-9.]+) GMAC/s \(([^)]*)\)", text)
    peaks.append(float(peak.group(1)))
    how = peak.group(2)
    for inputs, outputs, rate in re.findall(r"^\| (\d+) × (\d+) \| ([0-9.]+) \|", text, re.M):
        ours.setdefault((int(inputs), int(outputs)), []).append(float(rate))
    for line in (work / f"torch.{r}").read_text().split("\n"):
        if line.strip():
            inputs, outputs, rate = line.split()
            theirs.setdefault((int(inputs), int(outputs)), []).append(float(rate))
peak = statistics.median(peaks)
print(f"f32 peak, one thread ({how}): {peak:.1f} GMAC/s")
print()
print("| inputs × outputs | stancekit f32 GMAC/s | of peak | PyTorch f32 GMAC/s | of peak | stancekit / PyTorch |")
print("|---|---:|---:|---:|---:|---:|")
for shape in ours:
    a, b = statistics.median(ours[shape]), statistics.median(theirs[shape])
    print(f"| {shape[0]} × {shape[1]} | {a:.1f} | {a / peak:.0%} | {b:.1f} | {b / peak:.0%} | {a / b:.2f}× |")
PY
