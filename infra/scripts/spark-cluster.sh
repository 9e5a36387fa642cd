#!/usr/bin/env bash
# A real Spark standalone cluster on loopback, from the pyspark installation alone:
#   spark-cluster.sh start DIR MASTER_PORT [WORKERS]   master + workers, waits until registered
#   spark-cluster.sh stop DIR                           stops them by their own pids
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-$PWD/.venv/bin/python}
SPARK_HOME=$("$PY" -c "import os, pyspark; print(os.path.dirname(pyspark.__file__))")
export SPARK_HOME SPARK_LOCAL_IP=127.0.0.1 PYSPARK_PYTHON=$PY
CLASS=$SPARK_HOME/bin/spark-class

case "${1:-}" in
  start)
    dir=${2:?dir}; port=${3:?master port}; workers=${4:-1}
    mkdir -p "$dir"
    ui=$((port + 1))
    export SPARK_LOG_DIR=$dir SPARK_WORKER_DIR=$dir/work
    nohup "$CLASS" org.apache.spark.deploy.master.Master --host 127.0.0.1 --port "$port" \
      --webui-port "$ui" > "$dir/master.log" 2>&1 &
    echo $! > "$dir/master.pid"
    for i in $(seq 1 "$workers"); do
      nohup "$CLASS" org.apache.spark.deploy.worker.Worker "spark://127.0.0.1:$port" \
        --host 127.0.0.1 --cores 2 --memory 3g --webui-port $((ui + i)) \
        --work-dir "$dir/work" > "$dir/worker-$i.log" 2>&1 &
      echo $! > "$dir/worker-$i.pid"
    done
    for _ in $(seq 1 150); do
      alive=$(curl -sf "http://127.0.0.1:$ui/json/" 2>/dev/null \
        | "$PY" -c "import json,sys; print(json.load(sys.stdin).get('aliveworkers', 0))" \
        2>/dev/null || echo 0)
      if [ "$alive" -ge "$workers" ]; then
        echo "[spark] master spark://127.0.0.1:$port with $alive worker(s)"
        exit 0
      fi
      sleep 0.2
    done
    echo "[spark] cluster did not come up; logs in $dir" >&2
    tail -20 "$dir"/*.log >&2
    exit 1
    ;;
  stop)
    dir=${2:?dir}
    for pid in "$dir"/*.pid; do
      [ -f "$pid" ] && { kill "$(cat "$pid")" 2>/dev/null || true; rm -f "$pid"; }
    done
    ;;
  *)
    echo "usage: $0 start DIR MASTER_PORT [WORKERS] | stop DIR" >&2
    exit 2
    ;;
esac
