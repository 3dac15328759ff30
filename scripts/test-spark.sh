#!/usr/bin/env bash
# Test: scripts/spark-predict.py on local Spark writes, sorted by id, exactly
# the rows single-process `stancekit predict` writes for the same files (byte
# for byte); a bad record fails the job with stancekit's message and the line
# it names, and writes nothing; an existing output and CSV are refused.
#
#   scripts/test-spark.sh [WORK_DIR]
#
# Environment: PYTHON (default python3) must import pyspark, and java must run
# (scripts/install-spark.sh installs both and prints that PYTHON); STANCEKIT
# (default: the debug binary, built here); MODEL (default: the tests' tiny
# random classifier, written by examples/tiny_classifier.rs in seconds); N
# (default 3000) sentences in FILES (default 5) files, from the datasets' texts
# (scripts/make_corpus.py); MASTER (default local[2]); CARGO_TARGET_DIR as for cargo.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d)}"
python="${PYTHON:-python3}"
n="${N:-3000}"
files="${FILES:-5}"
master="${MASTER:-local[2]}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$work"

stancekit="${STANCEKIT:-}"
if [ -z "$stancekit" ]; then
    (cd "$root" && cargo build --quiet)
    # A private copy: a shared target folder may be rebuilt from another checkout meanwhile.
    cp "$target_dir/debug/stancekit" "$work/stancekit"
    stancekit="$work/stancekit"
fi
model="${MODEL:-}"
if [ -z "$model" ]; then
    (cd "$root" && cargo run --quiet --example tiny_classifier -- "$work/model")
    model="$work/model"
fi

rm -rf "$work/corpus" "$work/spark-out" "$work/bad" "$work/bad-out" "$work/cr" "$work/cr-out"
"$python" "$root/scripts/make_corpus.py" "$work/corpus" "$n" "$files"
# One pair per forward pass on both sides: which sentences share a batch (and
# so how far they are padded) moves a probability by a float32 rounding or so,
# and Spark's partitions cut the input into other batches than one process
# does. Alone, every pair gets the same arithmetic on both sides, so the rows
# can be compared byte for byte.
"$stancekit" predict --model "$model" --input "$work"/corpus/*.jsonl --output "$work/predict.jsonl" \
    --batch-size 1 2>"$work/predict.log"

spark() {
    "$python" "$root/scripts/spark-predict.py" --master "$master" --stancekit "$stancekit" --model "$model" "$@" \
        -- --batch-size 1
}
if ! spark --input "$work/corpus" --output "$work/spark-out" 2>"$work/spark.log"; then
    tail -40 "$work/spark.log" >&2
    echo "FAILED: spark-predict.py did not finish" >&2
    exit 1
fi

"$python" - "$work/predict.jsonl" "$work/spark-out" "$n" <<'EOF'
import glob, json, sys
def rows(paths):
    lines = [line for p in paths for line in open(p, encoding="utf-8").read().splitlines() if line]
    return sorted(lines, key=lambda line: (json.loads(line)["id"], json.loads(line)["target"]))
single = rows([sys.argv[1]])
parts = sorted(glob.glob(f"{sys.argv[2]}/part-*"))
spark = rows(parts)
ids = {json.loads(line)["id"] for line in single}
assert len(ids) == int(sys.argv[3]), f"predict scored {len(ids)} sentences, not {sys.argv[3]}"
if spark != single:
    wrong = [(a, b) for a, b in zip(single, spark) if a != b]
    print(f"FAILED: {len(spark)} Spark rows, {len(single)} predict rows, {len(wrong)} differ; first:\n"
          f"  predict {wrong[0][0] if wrong else '-'}\n  spark   {wrong[0][1] if wrong else '-'}", file=sys.stderr)
    sys.exit(1)
print(f"spark-predict: {len(spark)} rows ({len(ids)} sentences) from {len(parts)} partitions "
      f"equal predict's, byte for byte")
EOF

# A record without text fails its partition, and the job, with stancekit's
# message and the line it names, and writes nothing (the rows go to a hidden
# folder beside --output, renamed into place once whole).
mkdir -p "$work/bad"
head -3 "$work/corpus/part-000.jsonl" >"$work/bad/part-000.jsonl"
printf '\n{"id": "broken"}\n' >>"$work/bad/part-000.jsonl"
if spark --input "$work/bad" --output "$work/bad-out" --partitions 1 >"$work/bad.log" 2>&1; then
    echo "FAILED: a record without text did not fail the Spark job" >&2
    exit 1
fi
tail -6 "$work/bad.log" | grep -q ": text: missing" && tail -6 "$work/bad.log" | grep -q "line 5 of partition 0 reads: '{\"id\": \"broken\"}'" \
    && tail -8 "$work/bad.log" | grep -q "on partition 0 of the input (file:.*/bad/part-000.jsonl from byte 0)" \
    && [ ! -e "$work/bad-out" ] && ! ls -A "$work" | grep -q 'stancekit-' \
    || { tail -40 "$work/bad.log" >&2; echo "FAILED: no stancekit message last, or an output left" >&2; exit 1; }
echo "spark-predict: a record without text fails the job with stancekit's message and its line, last, and writes nothing"

# An output that exists is refused before the job; CSV out is refused; a
# carriage return inside a line is JSON whitespace, as predict reads it; a
# hidden input file is named.
mkdir -p "$work/cr" && rm -rf "$work/cr-out"
printf '{"id": "r1",\r"text": "Ukraine should join NATO."}\n' >"$work/cr/a.jsonl"
printf '{"id": "h1", "text": "Hidden."}\n' >"$work/cr/_hidden.jsonl"
if spark --input "$work/cr" --output "$work/spark-out" >"$work/exists.log" 2>&1 \
    || ! tail -1 "$work/exists.log" | grep -q "spark-out exists"; then
    tail -20 "$work/exists.log" >&2; echo "FAILED: an existing output was not refused" >&2; exit 1
fi
if "$python" "$root/scripts/spark-predict.py" --stancekit "$stancekit" --model "$model" --input "$work/cr" \
    --output "$work/cr-out" -- --format csv >"$work/csv.log" 2>&1; then
    echo "FAILED: --format csv was not refused" >&2; exit 1
fi
spark --input "$work/cr" --output "$work/cr-out" >"$work/cr.log" 2>&1 || { tail -20 "$work/cr.log" >&2; echo "FAILED: a carriage return inside a line" >&2; exit 1; }
grep -q '"id":"r1"' "$work"/cr-out/part-* && grep -q "_hidden.jsonl" "$work/cr.log" \
    || { tail -20 "$work/cr.log" >&2; echo "FAILED: the \\r line was not scored or the hidden file not named" >&2; exit 1; }
echo "spark-predict: an existing output and CSV are refused; a \\r inside a line reads; a hidden input is named"
echo "spark: 3 passed, 0 failed"
