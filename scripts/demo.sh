#!/usr/bin/env bash
# Quick start: set up and run the demo campus on the embedded defaults (SQLite + private Redis).
# Extra arguments go to `campuscard demo` (e.g. --port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/campuscard demo "$@"
