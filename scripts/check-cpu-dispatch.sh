#!/usr/bin/env bash
# Run-time kernel dispatch on CPUs this machine is not, under qemu's
# user-mode emulation (`qemu-x86_64`, Debian's qemu-user). Its TCG emulates
# no AVX-512, so an AVX-512 instruction that runs outside the dispatch ends
# the process with SIGILL. `stancekit embed` on three sentences, as:
#
# - Haswell (AVX2 and FMA; no AVX-512, no VNNI: what the Zen 3 machines some
#   sessions get offer the kernels): f32 and int8 run, int8 on the `avx2`
#   kernel; f32 agrees with this machine's run within 1e-5, int8 with this
#   machine's `STANCEKIT_INT8_KERNEL=avx2` run within 1e-2;
# - Westmere (no AVX): f32 runs and agrees within 1e-5; int8 exits with
#   status 1 and the error that names AVX2, not a signal.
#
# Why int8 gets a looser bound: its kernels give the same bits on every CPU,
# but the f32 parts around them do not (gemm's AVX2 and AVX-512 kernels sum
# attention's products in different orders, 1e-7 apart), and int8 rounds
# every activation row to 255 steps of its range: such a last-bit difference
# now and then moves a value across a rounding boundary, a whole step, and
# that carries through the layers. On MPNet's three sentences here the two
# int8 runs were 2.4e-3 apart, each about 4e-3 from f32: int8's own error.
# The emulation is not the cause: built without gemm's AVX-512 kernels
# (`--no-default-features`), this machine gave the emulated int8 output to
# the bit.
#
#   scripts/check-cpu-dispatch.sh [MODEL_DIR]   (default models/all-MiniLM-L6-v2)
#
# BIN (default target/release/stancekit, built when missing). Speed under
# emulation means nothing; this checks what runs, not how fast.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
model="${1:-$root/models/all-MiniLM-L6-v2}"
bin="${BIN:-${CARGO_TARGET_DIR:-$root/target}/release/stancekit}"
command -v qemu-x86_64 >/dev/null || {
    echo "check-cpu-dispatch: no qemu-x86_64 (apt-get install qemu-user)" >&2
    exit 2
}
[ -x "$bin" ] || (cd "$root" && cargo build --release --quiet --bin stancekit)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf '%s\n' "Ukraine should join NATO as soon as possible." \
    "The talks ended without any agreement on the border." \
    "Europe must pay more for its own defence." >"$work/in.txt"

# embed NAME CPU [ARGS...]: CPU "" runs on this machine; leaves NAME.jsonl,
# NAME.err and the exit status in NAME.rc.
embed() {
    local name=$1 cpu=$2
    shift 2
    local run=("$bin")
    [ -z "$cpu" ] || run=(qemu-x86_64 -cpu "$cpu" "$bin")
    set +e
    "${run[@]}" embed --model "$model" --input "$work/in.txt" --output "$work/$name.jsonl" --device cpu "$@" \
        2>"$work/$name.err"
    echo $? >"$work/$name.rc"
    set -e
}

# agree A B BOUND: the largest |difference| of two runs' embeddings, failing over BOUND.
agree() {
    python3 - "$work/$1.jsonl" "$work/$2.jsonl" "$3" <<'EOF'
import json, sys
a, b = ([json.loads(line)["embedding"] for line in open(path)] for path in sys.argv[1:3])
assert len(a) == len(b) == 3, f"{len(a)} and {len(b)} embeddings"
worst = max(abs(x - y) for u, v in zip(a, b) for x, y in zip(u, v))
print(f"{worst:.1e}")
sys.exit(0 if worst <= float(sys.argv[3]) else 1)
EOF
}

fail() {
    echo "check-cpu-dispatch: FAILED: $*" >&2
    exit 1
}

ok_run() {
    [ "$(cat "$work/$1.rc")" = 0 ] || fail "$1 exited $(cat "$work/$1.rc"): $(tail -3 "$work/$1.err")"
}

embed native-f32 ""
STANCEKIT_INT8_KERNEL=avx2 embed native-int8 "" --precision int8
ok_run native-f32
ok_run native-int8

embed haswell-f32 Haswell
embed haswell-int8 Haswell --precision int8
embed westmere-f32 Westmere
embed westmere-int8 Westmere --precision int8
for name in haswell-f32 haswell-int8 westmere-f32; do ok_run "$name"; done
grep -q "kernel avx2" "$work/haswell-int8.err" || fail "int8 on Haswell did not run the avx2 kernel: $(tail -1 "$work/haswell-int8.err")"
[ "$(cat "$work/westmere-int8.rc")" = 1 ] || fail "int8 on Westmere exited $(cat "$work/westmere-int8.rc"), not 1"
grep -q "needs a CPU with AVX2" "$work/westmere-int8.err" || fail "int8 on Westmere: $(tail -1 "$work/westmere-int8.err")"

d1=$(agree native-f32 haswell-f32 1e-5) || fail "f32 on Haswell differs from this machine's by $d1"
d2=$(agree native-int8 haswell-int8 1e-2) || fail "int8 on Haswell differs from this machine's (avx2 kernel) by $d2"
d3=$(agree native-f32 westmere-f32 1e-5) || fail "f32 on Westmere differs from this machine's by $d3"
echo "| emulated CPU | f32 | int8 |"
echo "|---|---|---|"
echo "| Haswell (AVX2, no AVX-512) | runs, max \|Δ\| $d1 | $(grep -o 'kernel [a-z0-9-]*' "$work/haswell-int8.err"), max \|Δ\| $d2 |"
echo "| Westmere (no AVX) | runs, max \|Δ\| $d3 | exit 1: $(grep -o 'needs a CPU with AVX2[^,]*' "$work/westmere-int8.err") |"
echo "check-cpu-dispatch: OK ($(basename "$model"); max |Δ| against this machine's run)"
