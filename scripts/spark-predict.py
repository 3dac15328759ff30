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
import collections
import itertools
import os
import re
import subprocess
import sys
import tempfile
import threading
import uuid

from pyspark import SparkConf, SparkContext, TaskContext


# Lines kept per partition to quote the one stancekit names in an error: it
# reads ahead of its answers by a few batches, far fewer lines than this.
RECENT_LINES = 50_000
# The marker of a partition's failure, found again in Spark's error on the driver.
FAILED = "stancekit-partition-failed: "


def predict_partition(command, threads, replaced):
    """The function each partition runs: its lines through one stancekit process, rows out."""

    def run(lines):
        lines = iter(lines)
        first = next(lines, None)
        if first is None:  # an empty partition does not load the model
            return
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
        recent = collections.deque(maxlen=RECENT_LINES)  # (line number in the partition, text)
        with tempfile.TemporaryFile() as stderr:
            process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env)

            def feed():
                try:
                    for number, line in enumerate(itertools.chain([first], lines), 1):
                        recent.append((number, line))
                        if "\ufffd" in line:
                            replaced.add(1)
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
            stderr.seek(0)
            message = stderr.read().decode("utf-8", "replace")
            partition = TaskContext.get().partitionId()
            if process.wait() != 0:
                raise RuntimeError(FAILED + failure(command, process.returncode, partition, message, recent) + "\n")
            # Skipped records, cut sentences: what stancekit warns of, with its partition (not its speed).
            notes = [line for line in message.splitlines()
                     if line.strip() and (not line.startswith("predicted ") or "; skipped" in line)]
            if notes:
                print("".join(f"partition {partition}: {line}\n" for line in notes), end="", file=sys.stderr)

    return run


def failure(command, status, partition, message, recent):
    """What a failed partition says: stancekit's message, and the text of the lines it names."""
    quoted = []
    for number in sorted({int(n) for n in re.findall(r"^-:(\d+):", message, re.MULTILINE)})[:5]:
        text = next((line for n, line in recent if n == number), None)
        if text is not None:
            quoted.append(f"  line {number} of partition {partition} reads: {text[:200]!r}")
    return (f"{os.path.basename(command[0])} exited with {status} on partition {partition} of the input "
            f"(`-:N` is the partition's line N):\n"
            + message[-4000:].rstrip("\n") + ("\n" + "\n".join(quoted) if quoted else ""))


def partition_source(lines, partition):
    """Where partition `partition` of `sc.textFile`'s lines comes from: its Hadoop split's file
    and first byte, asked of the driver's JVM (a task cannot tell). None if the JVM's RDD is
    not laid out as expected."""
    try:
        hadoop_rdd = lines._jrdd.rdd().dependencies().head().rdd()  # textFile maps a HadoopRDD
        split = hadoop_rdd.partitions()[partition].inputSplit().value()
        return f"{split.getPath().toString()} from byte {split.getStart()}"
    except Exception:  # noqa: BLE001 -- only a better message is lost
        return None


def hadoop_path(sc, name):
    """A path of Spark's file systems (local, HDFS, S3...), made absolute, and its file system."""
    path = sc._jvm.org.apache.hadoop.fs.Path(name)
    fs = path.getFileSystem(sc._jsc.hadoopConfiguration())
    return fs.makeQualified(path), fs


def hidden_inputs(sc, pattern):
    """Files Hadoop's readers leave out (names starting with `_` or `.`) under the input folders,
    but for the ones meant to be left out: a job's `_SUCCESS` and commit markers, checksums."""
    path, fs = hadoop_path(sc, pattern)
    hidden = []
    for status in fs.globStatus(path) or []:
        if status.isDirectory():
            names = [s.getPath().getName() for s in fs.listStatus(status.getPath()) if s.isFile()]
            hidden += [n for n in names if n[:1] in ("_", ".") and not re.match(r"_SUCCESS$|_committed_|_started_", n)
                       and not n.endswith(".crc")]
    return hidden


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
    # Partitions are written as they come: CSV would repeat its header in each.
    flags = " ".join(args.predict_flags)
    if re.search(r"--(format|input-format)(=| )", flags):
        parser.error("--format and --input-format are set here: JSONL in, JSONL out")

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
    status = run_job(sc, args)
    sc.stop()
    sys.exit(status)


def run_job(sc, args):
    """Runs the job; 0, or 1 with a short message last (after Spark's own logs)."""
    out, fs = hadoop_path(sc, args.output)
    if fs.exists(out):
        print(f"error: --output {args.output} exists: choose a new folder, or remove it", file=sys.stderr)
        return 1
    hidden = hidden_inputs(sc, args.input)
    if hidden:
        print(f"warning: {len(hidden)} input file(s) are left out, as Hadoop leaves out names starting with "
              f"`_` or `.`: {', '.join(sorted(hidden)[:5])}", file=sys.stderr)
    # Written beside --output under a hidden name and renamed once whole: a failure (or a second
    # run of the same command) never removes or half-fills a folder the user may already have.
    staging, _ = hadoop_path(sc, f"{out.getParent().toString()}/_{out.getName()}.stancekit-{uuid.uuid4().hex}")
    threads = args.threads or int(sc.getConf().get("spark.task.cpus", "1"))
    command = [args.stancekit, "predict", "--model", args.model, "--input", "-", "--output", "-",
               "--input-format", "jsonl", *args.predict_flags]
    # Lines end at `\n` alone, as stancekit reads them: Hadoop's default also ends one at a `\r`.
    sc._jsc.hadoopConfiguration().set("textinputformat.record.delimiter", "\n")
    lines = sc.textFile(args.input, minPartitions=args.partitions) if args.partitions else sc.textFile(args.input)
    replaced = sc.accumulator(0)
    try:
        lines.mapPartitions(predict_partition(command, threads, replaced)).saveAsTextFile(staging.toString())
    except Exception as e:  # Py4JJavaError: the partition's own message is inside its Java trace
        text = str(e)
        start = text.find(FAILED)
        why = text[start + len(FAILED):text.find("\n\tat ", start)] if start >= 0 else text[-2000:]
        failed = re.search(r"on partition (\d+) of the input", why)
        source = failed and partition_source(lines, int(failed.group(1)))
        if source:
            why = why.replace(f"on partition {failed.group(1)} of the input",
                              f"on partition {failed.group(1)} of the input ({source})", 1)
        fs.delete(staging, True)
        print(f"error: the job failed; nothing was written to {args.output}:\n{why.strip()}", file=sys.stderr)
        return 1
    # HDFS's rename moves a folder into an existing one: the check comes right before it.
    if fs.exists(out) or not fs.rename(staging, out):
        print(f"error: --output {args.output} appeared while the job ran; the rows are in {staging.toString()}",
              file=sys.stderr)
        return 1
    if replaced.value:
        print(f"warning: {replaced.value} line(s) hold U+FFFD, which Spark's text reader puts in place of bytes "
              f"that are not UTF-8 (stancekit predict would refuse those lines): check the input", file=sys.stderr)
    return 0


if __name__ == "__main__":
    main()
