#!/usr/bin/env python3
"""Stance of a corpus on Spark: `stancekit predict` as a map stage.

    python scripts/spark-predict.py --stancekit BIN --model RUN --input DIR --output DIR
        [--master local[2]] [--partitions N] [--threads T] [-- PREDICT_FLAGS...]
    spark-submit scripts/spark-predict.py ...   (the same flags; --master from spark-submit)

Reads every file of --input (a folder or glob Spark reads as text: JSONL
records as `predict` reads them, each with an `id` unique in the corpus, since
a record without one would be numbered within its partition), pipes each
partition through one `stancekit predict --input - --output -` process
(mapPartitions, the process fed on a thread while its rows are read), and
writes the rows as JSONL partitions (part-00000, ...) under --output. Flags
after `--` go to predict (`--targets a,b`, `--precision int8`, ...).

Each process runs --threads threads (default spark.task.cpus, 1), so that
local[N] or N cores of an executor run N processes side by side without
oversubscribing the cores. A partition loads the model once: keep partitions
large (Spark's default split of the input files is usually right).

--stancekit and --model are paths on the workers: the same path on every
machine, or files shipped with the job, e.g. an archive of both unpacked into
each executor's working directory:

    tar czf bundle.tgz stancekit run/
    spark-submit --master yarn --archives bundle.tgz#bundle scripts/spark-predict.py \\
        --stancekit ./bundle/stancekit --model ./bundle/run --input hdfs:///corpus --output hdfs:///stance
"""

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import threading

from pyspark import SparkConf, SparkContext, TaskContext


def predict_partition(command, threads):
    """The function each partition runs: its lines through one stancekit process, rows out."""

    def run(lines):
        lines = iter(lines)
        first = next(lines, None)
        if first is None:  # an empty partition does not load the model
            return
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
        with tempfile.TemporaryFile() as stderr:
            process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env)

            def feed():
                try:
                    for line in itertools.chain([first], lines):
                        process.stdin.write(line.encode("utf-8") + b"\n")
                except BrokenPipeError:
                    pass  # stancekit stopped early: its exit status says why
                finally:
                    try:
                        process.stdin.close()
                    except BrokenPipeError:
                        pass

            writer = threading.Thread(target=feed, daemon=True)
            writer.start()
            for row in process.stdout:
                yield row.decode("utf-8").rstrip("\n")
            writer.join()
            if process.wait() != 0:
                stderr.seek(0)
                message = stderr.read().decode("utf-8", "replace")[-4000:]
                partition = TaskContext.get().partitionId()
                raise RuntimeError(f"{' '.join(command)} exited with {process.returncode} on partition {partition} "
                                   f"of the input (line numbers count within the partition):\n{message}")

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="folder or glob of JSONL files (records with unique ids)")
    parser.add_argument("--output", required=True, help="folder to write JSONL partitions to (must not exist)")
    parser.add_argument("--model", required=True, help="trained run folder, a path on the workers")
    parser.add_argument("--stancekit", default="stancekit", help="the binary, a path on the workers")
    parser.add_argument("--master", help="Spark master (default: spark-submit's, else local[*])")
    parser.add_argument("--partitions", type=int, help="minimum input partitions (default: Spark's split)")
    parser.add_argument("--threads", type=int, help="threads per stancekit process (default: spark.task.cpus)")
    parser.add_argument("predict_flags", nargs="*", help="after --: more `stancekit predict` flags")
    args = parser.parse_args()

    conf = SparkConf().setAppName("stancekit predict")
    if args.master:
        conf.setMaster(args.master)
    elif not conf.contains("spark.master"):
        conf.setMaster("local[*]")
    if conf.get("spark.master").startswith("local"):
        # Local workers run this Python (the one with pyspark), not whatever `python3` is first on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    sc = SparkContext(conf=conf)
    sc.setLogLevel("WARN")
    threads = args.threads or int(sc.getConf().get("spark.task.cpus", "1"))
    command = [args.stancekit, "predict", "--model", args.model, "--input", "-", "--output", "-",
               "--input-format", "jsonl", *args.predict_flags]
    lines = sc.textFile(args.input, minPartitions=args.partitions) if args.partitions else sc.textFile(args.input)
    lines.filter(str.strip).mapPartitions(predict_partition(command, threads)).saveAsTextFile(args.output)
    sc.stop()


if __name__ == "__main__":
    main()
