#!/usr/bin/env bash
# Benchmark: scripts/spark-predict.py on local Spark, local[1] and local[2],
# against plain `stancekit predict` on the same corpus, in one run.
#
#   scripts/bench-spark.sh [WORK_DIR]
#
# Environment: PYTHON (default python3) must import pyspark, and java must run
# (scripts/install-spark.sh); MODEL (default: WORK_DIR/model, trained here in
# seconds with the frozen recipe on BASE_MODEL, default models/all-MiniLM-L6-v2);
# N (default 6000) sentences in FILES (default 6) JSONL files
# (scripts/make_corpus.py); ROUNDS (default 1) alternating rounds, the median
# is reported; CARGO_TARGET_DIR as for cargo.
#
# Times are wall times of whole commands: Spark's include starting the JVM and
# each partition's model loading, predict's its own start-up. Each Spark task
# runs one stancekit process with one thread (spark.task.cpus), so local[2]
# runs two side by side; predict runs on every core (rayon's default).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d)}"
python="${PYTHON:-python3}"
n="${N:-6000}"
files="${FILES:-6}"
rounds="${ROUNDS:-1}"
mkdir -p "$work"
# shellcheck source=scripts/bench_lib.sh
. "$root/scripts/bench_lib.sh"
stancekit=$(release_binary "$work")
model=$(bench_model "$stancekit" "$work")
rm -rf "$work/corpus"
"$python" "$root/scripts/make_corpus.py" "$work/corpus" "$n" "$files"

# Runs a command and appends "NAME SECONDS" to results.tsv.
timed() {
    local name=$1 started
    shift
    started=$(date +%s.%N)
    "$@" >"$work/$name.log" 2>&1 || { tail -30 "$work/$name.log" >&2; exit 1; }
    printf '%s\t%s\n' "$name" "$(echo "$(date +%s.%N) - $started" | bc)" >>"$work/results.tsv"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$work/results.tsv"
for round in $(seq 1 "$rounds"); do
    timed predict "$stancekit" predict --model "$model" --input "$work"/corpus/*.jsonl --output "$work/predict.jsonl"
    for cores in 1 2; do
        rm -rf "$work/spark-$cores"
        timed "spark-local-$cores" "$python" "$root/scripts/spark-predict.py" --master "local[$cores]" \
            --stancekit "$stancekit" --model "$model" --input "$work/corpus" --output "$work/spark-$cores"
    done
    echo "round $round: $(tail -3 "$work/results.tsv" | tr '\t\n' ' ')" >&2
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo "$(machine_line); model: $model; load average at start $load_before, at end $load_after"
"$python" - "$work" "$n" "$files" "$rounds" <<'EOF'
import glob, json, statistics, sys
work, n, files, rounds = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
rows = [line.split("\t") for line in open(f"{work}/results.tsv").read().splitlines()]
seconds = lambda name: statistics.median(float(r[1]) for r in rows if r[0] == name)
def probs(paths):
    out = {}
    for path in paths:
        for line in open(path, encoding="utf-8"):
            row = json.loads(line)
            out[row["id"], row["target"]] = list(row["probs"].values())
    return out
single = probs([f"{work}/predict.jsonl"])
print(f"\n{n} sentences x 3 targets in {files} files; wall time of the whole command, median of {rounds} round(s)\n")
print("| | wall s | sentences/s | / predict | max abs probability difference vs predict |")
print("|---|---:|---:|---:|---:|")
base = seconds("predict")
for name, label in [("predict", "`stancekit predict`, one process"), ("spark-local-1", "Spark `local[1]`"),
                    ("spark-local-2", "Spark `local[2]`")]:
    diff = "—"
    if name != "predict":
        spark = probs(glob.glob(f"{work}/spark-{name[-1]}/part-*"))
        assert spark.keys() == single.keys(), f"{name}: other rows than predict's"
        diff = f"{max(abs(a - b) for k in single for a, b in zip(single[k], spark[k])):.1e}"
    print(f"| {label} | {seconds(name):.1f} | {n / seconds(name):.1f} | {base / seconds(name):.2f}x | {diff} |")
EOF
