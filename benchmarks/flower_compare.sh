#!/usr/bin/env bash
# Build a throw-away venv with Flower's simulation engine (flwr[simulation] brings Ray) next to torch 2.13.0
# and this checkout, then run the side-by-side benchmark. Flower is never a dependency of fednlp-bench.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${FLOWER_VENV:-.flower-venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch==2.13.0
  "$venv/bin/pip" install -q -e . "flwr[simulation]" tabulate
fi
"$venv/bin/python" benchmarks/flower_compare.py "$@"
