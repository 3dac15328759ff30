#!/usr/bin/env python3
"""Closed-loop load client for `stancekit serve` on localhost (Python stdlib only).

    load_client.py --port PORT --sentences FILE --clients C [--seed S] [--max-seconds T]

Cuts FILE's sentences (one a line), in order, into requests of 1 to 16
(--min-texts, --max-texts; sizes drawn with --seed), and sends each once as
`{"texts": [...]}` to POST /v1/predict from C threads, each with its own
keep-alive connection, sending its next request as soon as the last is
answered. The load is bounded: every sentence once, and no longer than
--max-seconds. Prints one JSON object: throughput, latency percentiles,
failed requests by status, and from the server's own timing of each request
(its Server-Timing header): its model call, its compute (checking and
tokenising, the model call, writing the rows) and the rest of its latency
(waiting for the model call, HTTP and JSON).

The standard library is enough here: the server runs a model over tens of
requests a second, so the client's own CPU time (well under a millisecond a
request) does not bound the measurement, and nothing needs installing.
"""

import argparse
import http.client
import json
import math
import random
import re
import sys
import threading
import time


def cut(sentences, low, high, seed):
    rng = random.Random(seed)
    requests, i = [], 0
    while i < len(sentences):
        n = rng.randint(low, high)
        requests.append(sentences[i : i + n])
        i += n
    return requests


def percentile(values, p):
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def timing_ms(timing, name):
    match = re.search(name + r";dur=([0-9.]+)", timing or "")
    return float(match.group(1)) if match else None


class Run:
    def __init__(self, port, requests, targets, deadline):
        self.port, self.requests, self.targets, self.deadline = port, requests, targets, deadline
        self.next = 0
        self.lock = threading.Lock()
        self.latencies, self.timings, self.failures, self.sentences = [], [], {}, 0

    def take(self):
        with self.lock:
            if self.next >= len(self.requests) or time.monotonic() > self.deadline:
                return None
            self.next += 1
            return self.requests[self.next - 1]

    def client(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        while (texts := self.take()) is not None:
            body = json.dumps({"texts": texts})
            started = time.perf_counter()
            try:
                conn.request("POST", "/v1/predict", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                payload = response.read()
                status, timing = response.status, response.getheader("Server-Timing")
            except (OSError, http.client.HTTPException) as e:
                status, timing = type(e).__name__, None
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            elapsed = time.perf_counter() - started
            if status == 200 and len(json.loads(payload)["predictions"]) != len(texts) * self.targets:
                status = "wrong row count"
            with self.lock:
                if status == 200:
                    self.sentences += len(texts)
                    self.latencies.append(elapsed * 1e3)
                    self.timings.append({k: timing_ms(timing, k) for k in ("prepare", "queue", "model", "write")})
                else:
                    self.failures[str(status)] = self.failures.get(str(status), 0) + 1
        conn.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sentences", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--min-texts", type=int, default=1)
    parser.add_argument("--max-texts", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args()

    with open(args.sentences, encoding="utf-8") as f:
        sentences = [line.strip() for line in f if line.strip()]
    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
    conn.request("GET", "/v1/model")
    targets = len(json.loads(conn.getresponse().read())["targets"])
    conn.close()

    requests = cut(sentences, args.min_texts, args.max_texts, args.seed)
    run = Run(args.port, requests, targets, time.monotonic() + args.max_seconds)
    threads = [threading.Thread(target=run.client) for _ in range(args.clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started

    # The server's own timing of each answered request (its Server-Timing header).
    timed = [(t, x) for t, x in zip(run.latencies, run.timings) if None not in x.values()]
    p = lambda values, q: percentile(values, q) if values else float("nan")
    model = [x["model"] for _, x in timed]
    # A request's compute: checking and tokenising it, its model call, writing its rows.
    compute = [x["prepare"] + x["model"] + x["write"] for _, x in timed]
    # The rest of its latency: waiting for its model call, HTTP and JSON both ways.
    beyond = [t - c for (t, _), c in zip(timed, compute)]
    print(json.dumps({
        "clients": args.clients,
        "requests": run.next,
        "requests_planned": len(requests),
        "sentences": run.sentences,
        "seconds": seconds,
        "sentences_per_s": run.sentences / seconds,
        "failures": run.failures,
        "p50_ms": p(run.latencies, 50),
        "p95_ms": p(run.latencies, 95),
        "p99_ms": p(run.latencies, 99),
        "model_call_p99_ms": p(model, 99),
        "compute_p99_ms": p(compute, 99),
        "prepare_p50_ms": p([x["prepare"] for _, x in timed], 50),
        "queue_p99_ms": p([x["queue"] for _, x in timed], 99),
        "beyond_compute_p50_ms": p(beyond, 50),
        "beyond_compute_p99_ms": p(beyond, 99),
    }))


if __name__ == "__main__":
    sys.exit(main())
