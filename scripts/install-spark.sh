#!/usr/bin/env bash
# Installs what scripts/spark-predict.py needs to run Spark locally: a Java
# runtime from Debian (when `java` is missing or older than the pyspark
# release needs) and pyspark from PyPI in a virtual environment.
#
#   scripts/install-spark.sh [VENV]     (default .venv-spark in the checkout)
#
# Environment: PYSPARK (default 4.0.5) is the pyspark version; pyspark 4
# needs Java 17 or newer, which is Debian 12's openjdk-17-jre-headless.
# Prints the venv's python on the last line; run the Spark scripts with it
# (PYTHON=VENV/bin/python scripts/test-spark.sh).
set -euo pipefail

venv="${1:-$(cd "$(dirname "$0")/.." && pwd)/.venv-spark}"
pyspark="${PYSPARK:-4.0.5}"
java_needed=17

java_major() {
    command -v java >/dev/null || { echo 0; return; }
    # `openjdk version "17.0.15" …` → 17; `"1.8.0_392"` → 8.
    java -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print (v[1] == 1 ? v[2] : v[1]); exit}'
}

if [ "$(java_major)" -lt "$java_needed" ]; then
    echo "installing openjdk-$java_needed-jre-headless..." >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "openjdk-$java_needed-jre-headless" >&2
fi
echo "java $(java_major) at $(command -v java)" >&2

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import pyspark, sys; sys.exit(pyspark.__version__ != '$pyspark')" 2>/dev/null; then
    echo "installing pyspark==$pyspark into $venv..." >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "pyspark==$pyspark" >&2
fi
"$venv/bin/python" -c "import pyspark; print('pyspark', pyspark.__version__)" >&2
echo "$venv/bin/python"
