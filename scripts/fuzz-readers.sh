#!/usr/bin/env bash
# A long fuzz campaign over every input reader (tests/fuzz_readers.rs): the
# property tests that `cargo test` runs with 256 cases each, here with CASES
# cases each (default 200000), in a release build.
#
#   scripts/fuzz-readers.sh [CASES]
#
# A failure is shrunk to a minimal input and saved under
# tests/proptest-regressions/, which later runs (plain `cargo test` too) replay
# first; turn it into a unit test beside the reader once fixed.
set -euo pipefail

cd "$(dirname "$0")/.."
cases=${1:-200000}
start=$(date +%s)
status=0
STANCEKIT_FUZZ_CASES=$cases cargo test --release --test fuzz_readers || status=$?
echo "fuzz-readers: $cases cases per property, $(($(date +%s) - start)) s (build included), exit status $status"
exit "$status"
