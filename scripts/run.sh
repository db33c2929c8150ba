#!/usr/bin/env bash
# Starts Redis (loopback, noeviction, append-only), one Celery worker on the cpu queue, the runtime
# server (model serving, loopback :8100, restarted by runtime_supervisor when it dies) and the web
# server (uvicorn, WEB_WORKERS processes) on http://127.0.0.1:8000. Ctrl-C stops every process this
# script started.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
REDIS_PORT=${REDIS_PORT:-6379}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:${REDIS_PORT}/0}
mkdir -p var/redis var/log
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo "Stopping quantdash..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  echo "Redis already answers on port $REDIS_PORT; using it (setting noeviction and appendonly)."
  redis-cli -p "$REDIS_PORT" config set maxmemory-policy noeviction >/dev/null
  redis-cli -p "$REDIS_PORT" config set appendonly yes >/dev/null
else
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$PWD/var/redis" \
    --appendonly yes --maxmemory-policy noeviction --save "" --daemonize no \
    --logfile "$PWD/var/log/redis.log" &
  pids+=($!)
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

"$VENV/bin/celery" -A quantdash worker -Q cpu --concurrency 1 --hostname "cpu@%h" --loglevel INFO --without-mingle &
pids+=($!)
"$VENV/bin/python" manage.py runtime_supervisor -- --host 127.0.0.1 --port "${RUNTIME_PORT:-8100}" &
pids+=($!)
export RUNTIME_URL=${RUNTIME_URL:-http://127.0.0.1:${RUNTIME_PORT:-8100}}
# WEB_WORKERS uvicorn processes (default: one per CPU; quantdash/web.py).
"$VENV/bin/python" -m quantdash.web --host 127.0.0.1 --port "${PORT:-8000}" &
pids+=($!)
echo "quantdash is starting on http://127.0.0.1:${PORT:-8000}/ (Ctrl-C stops it)"
wait -n "${pids[@]}"
