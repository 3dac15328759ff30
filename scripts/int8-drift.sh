#!/usr/bin/env bash
# int8 against f32 on unlabelled text: how far int8 moves a model's outputs.
# For a base model (sentence-transformers folder), `stancekit embed` at f32 and
# int8: mean and max 1 - cosine of each sentence's embedding. For a classifier
# (a `train` run), `stancekit predict`: the share of (sentence, target) labels
# that stay the same and the largest probability change. Each int8 setting is
# one column: the default (f32 columns chosen at load) and `none`.
#
#   scripts/int8-drift.sh MODEL INPUT.jsonl
#
# INPUT is anything `embed`/`predict --input` reads. Environment: STANCEKIT
# (default: the release binary, built if missing), WORK (default: a temporary
# folder), INT8_SETTINGS (default "default none": `default` is no flag, any
# other word is passed as `--int8-f32-columns WORD`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
model="${1:?usage: scripts/int8-drift.sh MODEL INPUT.jsonl}"
input="${2:?usage: scripts/int8-drift.sh MODEL INPUT.jsonl}"
# shellcheck source=scripts/bench_lib.sh
. "$root/scripts/bench_lib.sh"
bin=$(stancekit_binary)
work="${WORK:-$(mktemp -d)}"
mkdir -p "$work"
if grep -q '"stancekit"' "$model/config.json"; then command=predict; else command=embed; fi
echo "$(machine_line); model: $model; input: $input; stancekit $command"
"$bin" "$command" --model "$model" --input "$input" --output "$work/f32.jsonl" 2>/dev/null
for setting in ${INT8_SETTINGS:-default none}; do
    extra=()
    [ "$setting" = default ] || extra=(--int8-f32-columns "$setting")
    "$bin" "$command" --model "$model" --input "$input" --output "$work/$setting.jsonl" \
        --precision int8 "${extra[@]}" 2>"$work/$setting.log"
    echo "int8 $setting: $(tail -n 1 "$work/$setting.log" | grep -o 'int8 (.*')"
done
python3 - "$work" "$command" ${INT8_SETTINGS:-default none} <<'PY'
import json, math, sys
work, command, settings = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = lambda name: [json.loads(line) for line in open(f"{work}/{name}.jsonl")]
f32 = rows("f32")
for s in settings:
    got = rows(s)
    assert len(got) == len(f32), f"{s}: {len(got)} rows against {len(f32)}"
    if command == "embed":
        def gap(a, b):
            dot = sum(x * y for x, y in zip(a, b))
            return 1 - dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
        gaps = [gap(a["embedding"], b["embedding"]) for a, b in zip(f32, got)]
        print(f"| int8 {s} | {len(gaps)} sentences | mean 1 - cos {sum(gaps) / len(gaps):.2e} | max {max(gaps):.2e} |")
    else:
        same = sum(a["label"] == b["label"] for a, b in zip(f32, got))
        dp = max(abs(x - y) for a, b in zip(f32, got) for x, y in zip(a["probs"].values(), b["probs"].values()))
        print(f"| int8 {s} | {len(got)} pairs | same label {same} ({100 * same / len(got):.1f} %) | max |dp| {dp:.3f} |")
PY
