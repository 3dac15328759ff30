#!/usr/bin/env bash
# Benchmark: `stancekit predict` against PyTorch transformers on the same model
# and the same 2,048 news-style sentences, 2 threads each, batch 32.
#
#   scripts/bench-predict.sh [WORK_DIR]
#
# Environment: PYTHON (default python3) must have torch and transformers;
# BASE_MODEL (default models/all-MiniLM-L6-v2); N (default 2048) sentences;
# ROUNDS (default 3) alternating runs of each side, the median is reported;
# THREADS (default 2); BATCH (default 32); CARGO_TARGET_DIR as for cargo.
#
# Both sides load one classifier folder: BASE_MODEL's encoder with a seeded
# random 3-label head (transformers saves it, stancekit reads the same files).
# Throughput is timed inside each process from reading the input to the last
# output row (stancekit's summary line; the Python timer): model loading and
# interpreter start-up are left out of it but are in the wall time column.
# Peak RSS is GNU time's "Maximum resident set size" of the whole process.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d)}"
python="${PYTHON:-python3}"
base="${BASE_MODEL:-$root/models/all-MiniLM-L6-v2}"
n="${N:-2048}"
rounds="${ROUNDS:-3}"
threads="${THREADS:-2}"
batch="${BATCH:-32}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
helper="$root/scripts/bench_predict.py"
mkdir -p "$work"

echo "building the release binary..." >&2
(cd "$root" && cargo build --release --quiet)
# A private copy: a shared target folder may be rebuilt from another checkout meanwhile.
cp "$target_dir/release/stancekit" "$work/stancekit"
stancekit="$work/stancekit"
"$stancekit" predict --help >/dev/null

if [ ! -f "$work/model/config.json" ]; then
    "$python" "$helper" make-model "$base" "$work/model" >/dev/null 2>&1
fi
"$python" "$helper" data "$root/datasets/bench/news-sentences.txt" "$n" "$work/input.jsonl"

# Runs a command under GNU time; prints "WALL_S PEAK_KB" and leaves its stdout/stderr in files.
timed() {
    local name=$1
    shift
    /usr/bin/time -v -o "$work/$name.time" "$@" >"$work/$name.stdout" 2>"$work/$name.stderr"
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s}' "$work/$name.time")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/$name.time")
    echo "$wall $rss"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$work/results.tsv"
for round in $(seq 1 "$rounds"); do
    read -r wall rss < <(RAYON_NUM_THREADS="$threads" timed stancekit "$stancekit" predict --model "$work/model" \
        --input "$work/input.jsonl" --output "$work/stancekit.jsonl" --batch-size "$batch" --device cpu)
    rate=$(grep -o '([0-9.]* sentences/s)' "$work/stancekit.stderr" | tr -d '(' | cut -d' ' -f1)
    printf 'stancekit\t%s\t%s\t%s\n' "$rate" "$rss" "$wall" >>"$work/results.tsv"

    # PyTorch twice: OpenMP's default (spinning) wait policy, and PASSIVE, its
    # counterpart of candle's spin limit 0; the faster one is its best setting.
    for policy in default PASSIVE; do
        wait_policy=$([ "$policy" = PASSIVE ] && echo OMP_WAIT_POLICY=PASSIVE || echo OMP_UNUSED=1)
        read -r wall rss < <(OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads" timed torch env "$wait_policy" \
            "$python" "$helper" torch "$work/model" "$work/input.jsonl" "$work/torch.jsonl" \
            --batch-size "$batch" --threads "$threads")
        rate=$("$python" -c 'import json, sys; print(round(json.load(sys.stdin)["sentences_per_s"], 1))' <"$work/torch.stdout")
        printf 'pytorch-%s\t%s\t%s\t%s\n' "$policy" "$rate" "$rss" "$wall" >>"$work/results.tsv"
    done
    echo "round $round: $(tail -3 "$work/results.tsv" | tr '\t\n' ' ')" >&2
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

diff=$("$python" "$helper" compare "$work/stancekit.jsonl" "$work/torch.jsonl")
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|avx512f|avx512_vnni|avx_vnni|amx_int8|amx_bf16' | xargs)

echo "machine: $cpu, $(nproc) CPUs, flags: $flags; model: $(basename "$base"); load average at start $load_before, at end $load_after"
"$python" - "$work/results.tsv" "$diff" "$n" "$threads" "$batch" "$rounds" <<'EOF'
import json, statistics, sys
rows = [line.split("\t") for line in open(sys.argv[1]).read().splitlines()]
def median(side, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == side)
def peak(side):
    return max(float(r[2]) for r in rows if r[0] == side) / 1024
s = "stancekit"
t = max(["pytorch-default", "pytorch-PASSIVE"], key=lambda side: median(side, 1))
diff = json.loads(sys.argv[2])
print(f"{sys.argv[3]} sentences x 1 target, {sys.argv[4]} threads, batch {sys.argv[5]}, "
      f"median of {sys.argv[6]} alternating runs; PyTorch column: the faster of its OpenMP wait policies ({t[8:]})\n")
print(f"| | PyTorch, OMP default | PyTorch, OMP_WAIT_POLICY=PASSIVE | stancekit | stancekit / best PyTorch |")
print("|---|---|---|---|---|")
row = lambda name, f, fmt: print(f"| {name} | {fmt(f('pytorch-default'))} | {fmt(f('pytorch-PASSIVE'))} | {fmt(f(s))} | {f(s) / f(t):.2f}x |")
row("sentences/s (in-process, input to output)", lambda side: median(side, 1), lambda v: f"{v:.1f}")
row("peak RSS (MiB, max of runs)", peak, lambda v: f"{v:.0f}")
row("wall time, whole process (s)", lambda side: median(side, 3), lambda v: f"{v:.2f}")
print(f"\nmax |probability difference|, stancekit vs PyTorch, over {diff['rows']} rows: {diff['max_abs_diff']:.2e}")
EOF
