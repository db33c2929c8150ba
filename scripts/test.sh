#!/usr/bin/env bash
# `make test`: install what is missing, the whole suite on SQLite, then the database-sensitive part
# (`-m postgres`, chosen in tests/conftest.py) on a private PostgreSQL cluster. Ends with one
# wall-time line per phase, so every CI log shows where the time went.
set -uo pipefail
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
PY=${PY:-.venv/bin/python}
times=()
status=0

phase() {  # phase NAME COMMAND...: runs it unless an earlier phase failed, and times it
  local name=$1 started=$SECONDS rc=0
  shift
  if [ "$status" != 0 ]; then times+=("$name: skipped"); return; fi
  "$@" || rc=$?
  times+=("$name: $((SECONDS - started)) s$([ "$rc" = 0 ] || echo " (exit $rc)")")
  status=$rc
}

phase install "$MAKE" --no-print-directory test-deps
phase SQLite "$PY" -m pytest --durations=25 "$@"
phase PostgreSQL bash scripts/test-postgres.sh -m postgres --durations=25 "$@"
echo
for line in "${times[@]}"; do echo "wall time, $line"; done
exit "$status"
