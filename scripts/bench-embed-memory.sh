#!/usr/bin/env bash
# Peak memory of `stancekit embed` as its input grows: embed reads, embeds and
# writes a window of batches at a time, so the peak should stay flat however
# many texts there are. Inputs are the benchmark's 75 news sentences repeated
# (line i: "i SENTENCE"), one text per line, written as .npy.
#
#   scripts/bench-embed-memory.sh [MODEL]
#
# MODEL defaults to models/all-MiniLM-L6-v2. Environment: SIZES (default
# "10000 40000"), PRECISION (default int8), STANCEKIT (default: the release
# binary, built if missing).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
model="${1:-$root/models/all-MiniLM-L6-v2}"
sizes="${SIZES:-10000 40000}"
precision="${PRECISION:-int8}"
# shellcheck source=scripts/bench_lib.sh
. "$root/scripts/bench_lib.sh"
bin=$(stancekit_binary)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "$(machine_line); model: $model; --precision $precision"
echo
echo "| texts | wall time (s) | peak RSS (KiB) |"
echo "|---:|---:|---:|"
for n in $sizes; do
    awk -v n="$n" '{ s[NR - 1] = $0 } END { for (i = 0; i < n; i++) print i, s[i % NR] }' \
        "$root/datasets/bench/news-sentences.txt" >"$work/in.txt"
    /usr/bin/time -f "%e %M" -o "$work/time" "$bin" embed --model "$model" --input "$work/in.txt" \
        --output "$work/out.npy" --precision "$precision" 2>/dev/null
    read -r wall peak <"$work/time"
    echo "| $n | $wall | $peak |"
done
