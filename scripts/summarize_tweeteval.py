#!/usr/bin/env python3
"""Summarise TweetEval stance runs made by scripts/benchmark-tweeteval.sh.

Reads RUN/report-test/metrics.json (stancekit.metrics/1) and RUN/train_seconds
for each RUN given, and prints a Markdown table: pooled F_avg (the official
metric), per-target F_avg and macro-F1 per seed, then mean ± std (sample std)."""
import json
import statistics
import sys
from pathlib import Path


def row(run: Path):
    m = json.loads((run / "report-test" / "metrics.json").read_text())
    system = m["systems"][0]
    baselines = {s["name"]: s["pooled"]["f_avg"] for s in m["systems"] if s["kind"] == "baseline"}
    seconds = int((run / "train_seconds").read_text()) if (run / "train_seconds").exists() else None
    per_target = {t["target"]: t["f_avg"] for t in system["targets"]}
    return {
        "run": run.name,
        "pooled_f_avg": system["pooled"]["f_avg"],
        "pooled_macro_f1": system["pooled"]["macro_f1"],
        "targets": per_target,
        "baselines": baselines,
        "seconds": seconds,
    }


def fmt(values):
    if len(values) == 1:
        return f"{100 * values[0]:.1f}"
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


def main(runs):
    rows = [row(Path(r)) for r in runs]
    targets = sorted(rows[0]["targets"])
    print("| run | pooled F_avg | pooled macro-F1 | " + " | ".join(targets) + " | train s |")
    print("|---|---:|---:|" + "---:|" * len(targets) + "---:|")
    for r in rows:
        cells = [f"{100 * r['pooled_f_avg']:.1f}", f"{100 * r['pooled_macro_f1']:.1f}"]
        cells += [f"{100 * r['targets'][t]:.1f}" for t in targets]
        print(f"| {r['run']} | " + " | ".join(cells) + f" | {r['seconds']} |")
    mean = [fmt([r["pooled_f_avg"] for r in rows]), fmt([r["pooled_macro_f1"] for r in rows])]
    mean += [fmt([r["targets"][t] for r in rows]) for t in targets]
    print("| **mean ± std** | " + " | ".join(mean) + " | |")
    for name, value in rows[0]["baselines"].items():
        print(f"\nbaseline {name}: pooled F_avg {100 * value:.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
