#!/usr/bin/env bash
# Build a throw-away venv with flwr-datasets (it pins datasets<5, so it stays out of the project's
# environment), then time both partitioners side by side. Only numpy/pandas of ours are needed.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${BENCH_VENV:-.bench-venv}
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv"; "$venv/bin/pip" install -q flwr-datasets pandas tabulate; }
PYTHONPATH=. "$venv/bin/python" benchmarks/partition_speed.py "$@"
