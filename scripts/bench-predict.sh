#!/usr/bin/env bash
# Benchmark: `stancekit predict` (f32 and --precision int8) against PyTorch
# transformers (f32, bf16 autocast, dynamic int8) on the same model and the
# same 2,048 news-style sentences, 2 threads each, batch 32, in one run.
#
#   scripts/bench-predict.sh [WORK_DIR]
#
# Environment: PYTHON (default python3) must have torch and transformers;
# BASE_MODEL (default models/all-MiniLM-L6-v2); N (default 2048) sentences;
# ROUNDS (default 3) alternating runs of each side, the median is reported;
# THREADS (default 2); BATCH (default 32); CARGO_TARGET_DIR as for cargo.
# SKIP (default none): setups left out, of stancekit-int8, torch-bf16 and
# torch-int8 (the two f32 setups always run: the others are compared with
# them). On a CPU without bf16 instructions, autocast runs 7x slower than f32
# and took 557 of the 814 s of an MPNet round on a Zen 3.
#
# Both sides load one classifier folder: BASE_MODEL's encoder with a seeded
# random 3-label head (transformers saves it, stancekit reads the same files).
# Throughput is timed inside each process from reading the input to the last
# output row (stancekit's summary line; the Python timer): model loading and
# interpreter start-up are left out of it but are in the wall time column.
# Peak RSS is GNU time's "Maximum resident set size" of the whole process.
# STANCEKIT_INT8_KERNEL=avx2 (avx-vnni, avx512-vnni) forces stancekit's int8 kernel;
# CARGO_FLAGS are added to the cargo build (e.g. --no-default-features: f32
# products on gemm's AVX2 kernels). An AVX2-only CPU stood in for by an AVX-512
# one: those two, and PyTorch held to AVX2 by ATEN_CPU_CAPABILITY=avx2
# ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 FBGEMM_ENABLE_INSTRUCTIONS=AVX2
# (stancekit's own small kernels, GELU, softmax and layer norm, keep their
# AVX-512 forms).
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
skip=" ${SKIP:-} "
for side in ${SKIP:-}; do
    case "$side" in
        stancekit-int8 | torch-bf16 | torch-int8) ;;
        *) echo "bench-predict: SKIP: $side is not one of stancekit-int8, torch-bf16, torch-int8" >&2; exit 2 ;;
    esac
done
runs() { [[ "$skip" != *" $1 "* ]]; }

echo "building the release binary..." >&2
# shellcheck disable=SC2086
(cd "$root" && cargo build --release --quiet ${CARGO_FLAGS:-})
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
    done_before=$(wc -l <"$work/results.tsv")
    for precision in f32 int8; do
        runs "stancekit-$precision" || continue
        read -r wall rss < <(RAYON_NUM_THREADS="$threads" timed "stancekit-$precision" "$stancekit" predict \
            --model "$work/model" --input "$work/input.jsonl" --output "$work/stancekit-$precision.jsonl" \
            --batch-size "$batch" --device cpu --precision "$precision")
        rate=$(grep -o '([0-9.]* sentences/s)' "$work/stancekit-$precision.stderr" | tr -d '(' | cut -d' ' -f1)
        printf 'stancekit-%s\t%s\t%s\t%s\n' "$precision" "$rate" "$rss" "$wall" >>"$work/results.tsv"
    done
    # PyTorch under OpenMP's default (spinning) wait policy, the faster of the
    # two measured before (PASSIVE, candle's counterpart, was 15 % slower).
    for mode in f32 bf16 int8; do
        runs "torch-$mode" || continue
        read -r wall rss < <(OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads" timed "torch-$mode" \
            "$python" "$helper" torch "$work/model" "$work/input.jsonl" "$work/torch-$mode.jsonl" \
            --batch-size "$batch" --threads "$threads" --mode "$mode")
        rate=$("$python" -c 'import json, sys; print(round(json.load(sys.stdin)["sentences_per_s"], 1))' <"$work/torch-$mode.stdout")
        printf 'torch-%s\t%s\t%s\t%s\n' "$mode" "$rate" "$rss" "$wall" >>"$work/results.tsv"
    done
    echo "round $round: $(tail -n +$((done_before + 1)) "$work/results.tsv" | cut -f1,2 | tr '\t\n' ' ')" >&2
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

: >"$work/diffs.tsv"
for side in torch-bf16 torch-int8 stancekit-f32 stancekit-int8; do
    runs "$side" || continue
    printf '%s\t%s\n' "$side" "$("$python" "$helper" compare "$work/$side.jsonl" "$work/torch-f32.jsonl")" >>"$work/diffs.tsv"
done
if runs stancekit-int8; then
    printf '%s\t%s\n' "stancekit-int8-vs-f32" "$("$python" "$helper" compare "$work/stancekit-int8.jsonl" "$work/stancekit-f32.jsonl")" >>"$work/diffs.tsv"
fi
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|avx512f|avx512_vnni|avx_vnni|amx_int8|amx_bf16' | xargs)
kernel=
if runs stancekit-int8; then
    kernel=$(grep -o 'int8 (kernel [a-z0-9-]*' "$work/stancekit-int8.stderr" | head -1 | sed 's/.*kernel //')
fi

echo "machine: $cpu, $(nproc) CPUs, flags: $flags; model: $(basename "$base"); stancekit int8 kernel: ${kernel:-?}; load average at start $load_before, at end $load_after"
"$python" - "$work/results.tsv" "$work/diffs.tsv" "$n" "$threads" "$batch" "$rounds" <<'EOF'
import json, statistics, sys
rows = [line.split("\t") for line in open(sys.argv[1]).read().splitlines()]
diffs = {k: json.loads(v) for k, v in (line.split("\t") for line in open(sys.argv[2]).read().splitlines())}
all_sides = {"torch-f32": "PyTorch f32", "torch-bf16": "PyTorch bf16 autocast", "torch-int8": "PyTorch dynamic int8",
             "stancekit-f32": "stancekit f32", "stancekit-int8": "stancekit int8"}
# The setups that ran (SKIP leaves some out), in this order.
sides = [s for s in all_sides if any(r[0] == s for r in rows)]
names = [all_sides[s] for s in sides]
def median(side, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == side)
def peak(side):
    return max(float(r[2]) for r in rows if r[0] == side) / 1024
print(f"{sys.argv[3]} sentences x 1 target, {sys.argv[4]} threads, batch {sys.argv[5]}, "
      f"median of {sys.argv[6]} alternating runs\n")
print("| | " + " | ".join(names) + " |")
print("|---|" + "---|" * len(sides))
line = lambda name, values: print(f"| {name} | " + " | ".join(values) + " |")
line("sentences/s (in-process, input to output)", [f"{median(s, 1):.1f}" for s in sides])
line("peak RSS (MiB, max of runs)", [f"{peak(s):.0f}" for s in sides])
line("wall time, whole process (s)", [f"{median(s, 3):.2f}" for s in sides])
line("max abs probability difference vs PyTorch f32", ["—"] + [f"{diffs[s]['max_abs_diff']:.2e}" for s in sides[1:]])
rate = lambda s: median(s, 1)
print(f"\nstancekit f32 / PyTorch f32: {rate('stancekit-f32') / rate('torch-f32'):.2f}x")
if "stancekit-int8" in sides:
    fastest = max((s for s in sides if s.startswith("torch-")), key=rate)
    print(f"stancekit int8 / fastest PyTorch run ({all_sides[fastest]}): {rate('stancekit-int8') / rate(fastest):.2f}x; "
          f"stancekit int8 / stancekit f32: {rate('stancekit-int8') / rate('stancekit-f32'):.2f}x")
    print(f"peak RSS, stancekit int8 / stancekit f32: {peak('stancekit-int8') / peak('stancekit-f32'):.2f}x; "
          f"max abs probability difference, stancekit int8 vs stancekit f32: {diffs['stancekit-int8-vs-f32']['max_abs_diff']:.2e}")
EOF
