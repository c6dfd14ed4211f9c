#!/usr/bin/env bash
# The Waybill benchmark in one command, from a fresh clone: loadtests/bench.sh [--quick] [--help]
# Needs PostgreSQL reachable at $WAYBILL_BENCH_SERVER (default postgresql://postgres@127.0.0.1:5432).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ ! -x .venv/bin/python ]; then
    echo "[bench] creating .venv and installing requirements-dev.txt" >&2
    python3 -m venv .venv
    .venv/bin/pip install --quiet -r requirements-dev.txt -c constraints.txt
fi
exec .venv/bin/python loadtests/bench.py "$@"
