#!/usr/bin/env bash
# A real S3-compatible server on loopback for development and tests: MinIO, built from source
# with the Go toolchain (no Docker, no prebuilt binary). MinIO is AGPL-3.0; it is built here as
# a local development tool only and is never shipped with or linked into the platform.
#
#   s3-server.sh install              build .cache/bin/minio (idempotent)
#   s3-server.sh start DIR PORT       start on 127.0.0.1:PORT with data in DIR, wait until live
#   s3-server.sh stop DIR             stop the server started for DIR (by its own pid)
set -euo pipefail
cd "$(dirname "$0")/../.."
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c   # the release go install resolved 2026-11
BIN=$PWD/.cache/bin/minio

case "${1:-}" in
  install)
    if [ -x "$BIN" ] && [ -f "$BIN.version" ] && [ "$(cat "$BIN.version")" = "$MINIO_VERSION" ]; then
      exit 0
    fi
    echo "[setup] building MinIO $MINIO_VERSION from source (first time: a few minutes)"
    mkdir -p "$(dirname "$BIN")"
    GOBIN="$(dirname "$BIN")" GOFLAGS=-buildvcs=false go install "github.com/minio/minio@$MINIO_VERSION"
    echo "$MINIO_VERSION" > "$BIN.version"
    ;;
  start)
    dir=${2:?data dir}; port=${3:?port}
    mkdir -p "$dir/data"
    : "${AWS_ACCESS_KEY_ID:?set AWS_ACCESS_KEY_ID}" "${AWS_SECRET_ACCESS_KEY:?set AWS_SECRET_ACCESS_KEY}"
    MINIO_ROOT_USER=$AWS_ACCESS_KEY_ID MINIO_ROOT_PASSWORD=$AWS_SECRET_ACCESS_KEY \
    MINIO_BROWSER=off MINIO_UPDATE=off \
      nohup "$BIN" server "$dir/data" --address "127.0.0.1:$port" --quiet \
      > "$dir/minio.log" 2>&1 &
    echo $! > "$dir/minio.pid"
    for _ in $(seq 1 100); do
      if curl -sf "http://127.0.0.1:$port/minio/health/live" >/dev/null; then
        echo "[s3] MinIO live on http://127.0.0.1:$port (pid $(cat "$dir/minio.pid"))"
        exit 0
      fi
      sleep 0.2
    done
    echo "[s3] MinIO did not come up on port $port; log:" >&2
    cat "$dir/minio.log" >&2
    exit 1
    ;;
  stop)
    dir=${2:?data dir}
    if [ -f "$dir/minio.pid" ]; then
      kill "$(cat "$dir/minio.pid")" 2>/dev/null || true
      rm -f "$dir/minio.pid"
    fi
    ;;
  *)
    echo "usage: $0 install | start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
