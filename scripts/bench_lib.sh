# Shared steps of the benchmark scripts (scripts/load-test.sh,
# scripts/bench-spark.sh, and the int8 ones); source it, with $root set.

# Builds the release binary and copies it to $1/stancekit (a shared target
# folder may be rebuilt from another checkout meanwhile); prints the copy's path.
release_binary() {
    echo "building the release binary..." >&2
    (cd "$root" && cargo build --release --quiet)
    cp "${CARGO_TARGET_DIR:-$root/target}/release/stancekit" "$1/stancekit"
    echo "$1/stancekit"
}

# Prints STANCEKIT if set, else the release binary's path, built if missing.
stancekit_binary() {
    local bin="${STANCEKIT:-$root/target/release/stancekit}"
    [ -x "$bin" ] || (cd "$root" && cargo build --release --quiet)
    echo "$bin"
}

# Prints MODEL if set, else $2/model, trained first if missing: the frozen
# recipe on BASE_MODEL (default models/all-MiniLM-L6-v2), seconds of work.
# $1 is the stancekit binary.
bench_model() {
    local model="${MODEL:-$2/model}"
    if [ ! -f "$model/config.json" ]; then
        echo "training $model (frozen recipe on ${BASE_MODEL:-models/all-MiniLM-L6-v2})..." >&2
        (cd "$root" && "$1" train --model "${BASE_MODEL:-models/all-MiniLM-L6-v2}" --freeze-encoder \
            --train datasets/train.jsonl --dev datasets/dev.jsonl --out "$model" >"$2/train.log" 2>&1) ||
            { cat "$2/train.log" >&2; return 1; }
    fi
    echo "$model"
}

# The CPU line both scripts print above their tables.
machine_line() {
    local cpu flags
    cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
    flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|avx512f|avx512_vnni|avx_vnni|amx_int8|amx_bf16' | xargs)
    echo "machine: $cpu, $(nproc) CPUs, flags: $flags"
}
