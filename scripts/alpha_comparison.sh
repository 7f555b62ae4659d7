#!/usr/bin/env bash
# The alpha table of docs/partitions.md: our label skew vs flwr-datasets' DirichletPartitioner on the same labels.
# flwr-datasets pins datasets<5, so it lives in a throw-away venv; of ours only numpy (the partition package) is used.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${BENCH_VENV:-.bench-venv}
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv"; "$venv/bin/pip" install -q flwr-datasets pandas tabulate; }
PYTHONPATH=. "$venv/bin/python" scripts/alpha_comparison.py "$@"
