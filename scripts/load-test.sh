#!/usr/bin/env bash
# Load test: `stancekit serve` under 1, 8 and 64 concurrent clients, against
# `stancekit predict` on the same sentences, on localhost, in one run.
#
#   scripts/load-test.sh [WORK_DIR]
#
# Each round starts one server and runs, for each client level, `predict`
# and then the level: the ratio pairs runs a minute apart (speed on a shared
# machine drifts by a third over longer spans).
#
# Environment: MODEL (default: WORK_DIR/model, trained here in seconds from
# BASE_MODEL, default models/all-MiniLM-L6-v2, with --freeze-encoder, the
# frozen recipe); N (default
# 2048) sentences, datasets/bench/news-sentences.txt repeated; CLIENTS (default
# "1 8 64"); ROUNDS (default 2) alternating rounds of predict and every client
# level, the median is reported; MAX_WAIT_MS (default 5) and SERVE_ARGS (extra
# `serve` flags); PYTHON (default python3, stdlib only); CARGO_TARGET_DIR as
# for cargo.
#
# Every request carries 1 to 16 sentences (sizes drawn once, the same in every
# round) and is sent once: each level sends the N sentences `predict` reads,
# and stops after 10 minutes at most. The latency goal (p99 at 1 client
# within --max-wait-ms plus one batch's compute) is checked per request: its
# latency less its own compute (tokenising, its model call, writing its rows,
# from the server's Server-Timing header). The server listens on 127.0.0.1 only.
# Throughput is sentences answered per second of the level's wall time
# (first request sent to last answer); predict's is its summary line's (input
# to output, model loading excluded). Peak RSS: predict's from GNU time, the
# server's VmHWM after all its levels.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d)}"
python="${PYTHON:-python3}"
n="${N:-2048}"
levels="${CLIENTS:-1 8 64}"
rounds="${ROUNDS:-2}"
max_wait="${MAX_WAIT_MS:-5}"
mkdir -p "$work"
# shellcheck source=scripts/bench_lib.sh
. "$root/scripts/bench_lib.sh"
stancekit=$(release_binary "$work")
model=$(bench_model "$stancekit" "$work")
awk -v n="$n" 'NF {s[k++] = $0} END {for (i = 0; i < n; i++) print s[i % k]}' \
    "$root/datasets/bench/news-sentences.txt" >"$work/sentences.txt"

run_predict() {
    /usr/bin/time -v -o "$work/predict.time" "$stancekit" predict --model "$model" --lines \
        --input "$work/sentences.txt" --output "$work/predict.jsonl" 2>"$work/predict.stderr"
    local rate rss
    rate=$(grep -o '([0-9.]* sentences/s)' "$work/predict.stderr" | tr -d '(' | cut -d' ' -f1)
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/predict.time")
    printf 'predict\t%s\t%s\n' "$rate" "$rss" >>"$work/predict.tsv"
}

# Starts the server on a free port; sets $server and $port.
start_server() {
    # shellcheck disable=SC2086
    "$stancekit" serve --model "$model" --addr 127.0.0.1:0 --max-wait-ms "$max_wait" ${SERVE_ARGS:-} \
        2>"$work/serve.stderr" &
    server=$!
    for _ in $(seq 600); do
        port=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/serve.stderr" | cut -d: -f3 || true)
        [ -n "$port" ] && return 0
        kill -0 "$server" 2>/dev/null || break
        sleep 0.1
    done
    cat "$work/serve.stderr" >&2
    exit 1
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$work/predict.tsv"
: >"$work/serve.jsonl"
: >"$work/serve-rss.tsv"
for round in $(seq 1 "$rounds"); do
    start_server
    # predict right before each level (the server idle meanwhile): each ratio
    # compares two runs a minute apart, not the ends of a long run on a shared machine.
    for clients in $levels; do
        run_predict
        "$python" "$root/scripts/load_client.py" --port "$port" --sentences "$work/sentences.txt" \
            --clients "$clients" --max-seconds 600 >>"$work/serve.jsonl"
        echo "round $round, $clients clients: predict $(tail -1 "$work/predict.tsv" | cut -f2), serve $(tail -1 "$work/serve.jsonl" | "$python" -c 'import json, sys; print(round(json.load(sys.stdin)["sentences_per_s"], 1))') sentences/s" >&2
    done
    awk '/VmHWM/ {print $2}' "/proc/$server/status" >>"$work/serve-rss.tsv"
    kill -TERM "$server"
    wait "$server" || { echo "serve exited with $? after SIGTERM" >&2; exit 1; }
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo "$(machine_line); model: $model; load average at start $load_before, at end $load_after"
"$python" - "$work" "$n" "$rounds" "$max_wait" <<'EOF'
import json, statistics, sys
work, n, rounds, max_wait = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
predict = [line.split("\t") for line in open(f"{work}/predict.tsv").read().splitlines()]
serve = [json.loads(line) for line in open(f"{work}/serve.jsonl")]
rss = [int(x) for x in open(f"{work}/serve-rss.tsv").read().split()]
for row, p in zip(serve, predict):  # each level ran right after its own predict run
    row["predict"], row["ratio"] = float(p[1]), row["sentences_per_s"] / float(p[1])
levels = sorted({r["clients"] for r in serve})
med = lambda c, k: statistics.median(r[k] for r in serve if r["clients"] == c)
failed = lambda c: sum(sum(r["failures"].values()) for r in serve if r["clients"] == c)
print(f"\n{n} sentences x 3 targets, requests of 1-16 sentences, --max-wait-ms {max_wait:g}, "
      f"median of {rounds} round(s); predict ran right before each level\n")
print("| clients | serve sentences/s | predict sentences/s | serve / predict | p50 ms | p95 ms | p99 ms "
      "| failed requests | model call p99 ms | p99 beyond compute, ms |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for c in levels:
    print(f"| {c} | {med(c, 'sentences_per_s'):.1f} | {med(c, 'predict'):.1f} | {med(c, 'ratio'):.2f}x | "
          f"{med(c, 'p50_ms'):.1f} | {med(c, 'p95_ms'):.1f} | {med(c, 'p99_ms'):.1f} | {failed(c)} | "
          f"{med(c, 'model_call_p99_ms'):.1f} | {med(c, 'beyond_compute_p99_ms'):.1f} |")
predict_rss = max(int(r[2]) for r in predict) / 1024
print(f"\npeak RSS: serve {max(rss) / 1024:.0f} MiB (through all levels), predict {predict_rss:.0f} MiB")
top, one = max(levels), min(levels)
ratio, beyond = med(top, "ratio"), med(one, "beyond_compute_p99_ms")
total_failed = sum(failed(c) for c in levels)
verdict = lambda ok: "met" if ok else "NOT met"
print(f"goals: {top} clients / predict = {ratio:.2f}x (>= 0.9: {verdict(ratio >= 0.9)}); "
      f"failed requests {total_failed} ({verdict(total_failed == 0)}); at {one} client, p99 of a request's latency "
      f"beyond its compute {beyond:.1f} ms <= --max-wait-ms {max_wait:g} "
      f"(p99 latency <= max wait + compute): {verdict(beyond <= max_wait)}")
print(f"at {one} client: p99 wait for the model call {med(one, 'queue_p99_ms'):.2f} ms, "
      f"p50 check and tokenise {med(one, 'prepare_p50_ms'):.2f} ms, p99 compute {med(one, 'compute_p99_ms'):.1f} ms, "
      f"p50 beyond compute {med(one, 'beyond_compute_p50_ms'):.2f} ms")
EOF
