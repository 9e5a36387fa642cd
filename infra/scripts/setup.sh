#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: Python venv with the locked packages, and the JVM jars
# resolved once from Maven Central into .cache/jars. A second call only checks stamps.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
VENV=$ROOT/.venv
STAMPS=$ROOT/.cache/stamps
mkdir -p "$STAMPS"

hash_of() { cat "$@" | sha256sum | cut -c1-16; }

# --- Python ---------------------------------------------------------------------------------
py_hash=$(hash_of requirements.lock pyproject.toml infra/scripts/setup.sh)
if [ ! -f "$STAMPS/python-$py_hash" ] || [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] Python environment (.venv) from requirements.lock"
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q "uv==0.13.9"
  # --compile-bytecode: every job runs in a fresh Python (spark-submit, Airflow tasks, kernels),
  # and where PYTHONDONTWRITEBYTECODE is set (as on this machine) each would compile Airflow,
  # Great Expectations, pandas... from source again: about 8 s per spark-submitted job.
  "$VENV/bin/uv" pip sync -q --compile-bytecode --python "$VENV/bin/python" requirements.lock
  "$VENV/bin/uv" pip install -q --python "$VENV/bin/python" --no-deps -e .
  # pyspark and pyspark-client share site-packages/pyspark; prove the pair did not clobber it.
  "$VENV/bin/python" -c "import pyspark, pyspark.sql, delta; assert pyspark.__version__ == '4.1.3', pyspark.__version__"
  rm -f "$STAMPS"/python-*
  touch "$STAMPS/python-$py_hash"
fi

# --- JVM jars -------------------------------------------------------------------------------
jar_hash=$(hash_of infra/jars/pom.xml infra/scripts/setup.sh)
JARS=$ROOT/.cache/jars
if [ ! -f "$STAMPS/jars-$jar_hash" ] || [ -z "$(ls "$JARS" 2>/dev/null)" ]; then
  echo "[setup] JVM jars from Maven Central into .cache/jars"
  rm -rf "$JARS" && mkdir -p "$JARS"
  mvn -q -B -f infra/jars/pom.xml dependency:copy-dependencies \
      -DoutputDirectory="$JARS" -DincludeScope=runtime
  # Drop every jar whose artifact the pyspark wheel already ships (scala, jackson, hadoop client,
  # parquet, ...): two copies of a class on the classpath is how sessions break at random.
  SPARK_JARS=$("$VENV/bin/python" -c "import pyspark, os; print(os.path.join(os.path.dirname(pyspark.__file__), 'jars'))")
  for jar in "$JARS"/*.jar; do
    artifact=$(basename "$jar" .jar | sed -E 's/-[0-9][^-]*(-[A-Za-z0-9.]+)?$//')
    if ls "$SPARK_JARS/$artifact"-[0-9]*.jar >/dev/null 2>&1; then rm -f "$jar"; fi
  done
  rm -f "$JARS"/commons-logging-*.jar  # jcl-over-slf4j in pyspark provides these classes
  rm -f "$STAMPS"/jars-*
  touch "$STAMPS/jars-$jar_hash"
fi
