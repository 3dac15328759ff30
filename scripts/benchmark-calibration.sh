#!/usr/bin/env bash
# Temperature scaling measured: fits a trained run's temperature on held-out
# data (`stancekit calibrate --out`, the run itself untouched), scores the run
# and its calibrated copy on test data in one `stancekit eval`, and prints
# F_avg, ECE, Brier score and log loss of both. For a run trained with
# `--calibrate false` (or before calibration existed), this is what `train`'s
# default adds; the labels, so F_avg, must come out the same.
#
# Usage: VAL="FILE..." TEST="FILE..." scripts/benchmark-calibration.sh RUN
#   VAL   the data to fit the temperature on: the run's dev data (what `train` uses)
#   TEST  data neither saw
# Environment: BIN, the stancekit binary (default target/release/stancekit, built or brought up to date first).
# Writes RUN-calibrated/ (the calibrated copy) and RUN-calibrated/report-test/.
set -euo pipefail
run="${1:?usage: VAL=\"FILE...\" TEST=\"FILE...\" scripts/benchmark-calibration.sh RUN}"
read -r -a val <<< "${VAL:?set VAL to the data to fit the temperature on}"
read -r -a test <<< "${TEST:?set TEST to the data to score on}"
if [ -z "${BIN:-}" ]; then
    (cd "$(dirname "$0")/.." && cargo build --release --quiet)
    BIN="$(dirname "$0")/../target/release/stancekit"
fi
out="${run%/}-calibrated"
[ ! -e "$out" ] || { echo "$out exists; remove it first (this script writes the calibrated copy there)" >&2; exit 1; }
"$BIN" calibrate --model "$run" --data "${val[@]}" --out "$out"
"$BIN" eval --model "$run" --model "$out" --data "${test[@]}" --report "$out/report-test" --bootstrap 200 > /dev/null
python3 - "$out/report-test/metrics.json" "$run" "$out" <<'PY'
import json, sys
metrics = json.load(open(sys.argv[1]))
def temperature(run):
    spec = json.load(open(run + "/config.json"))["stancekit"]
    return spec.get("temperature")
print("| system | temperature | F_avg | ECE | Brier | log loss |")
print("|---|---:|---:|---:|---:|---:|")
runs = {s: r for s, r in zip([m["name"] for m in metrics["systems"] if m["kind"] != "baseline"], sys.argv[2:])}
for s in metrics["systems"]:
    if s["kind"] == "baseline":
        continue
    c, t = s["calibration"], temperature(runs[s["name"]])
    print(f"| {s['name']} | {'–' if t is None else f'{t:.2f}'} | {100 * s['pooled']['f_avg']:.1f} "
          f"| {c['ece']:.3f} | {c['brier']:.3f} | {c['log_loss']:.3f} |")
PY
