#!/usr/bin/env bash
# Shared by scripts/reproduce_<table>.sh: run `fednlp-bench reproduce TABLE` from the repository root, so the
# results are submitted to this checkout's leaderboard/ against its partition/ recipes.
# DATA_DIR: folder with local copies of the datasets (one sub-folder per task, as ../shared/data);
# without it each task is read from the Hugging Face hub.
set -euo pipefail
TABLE=$1
shift
if [[ -n "${DATA_DIR:-}" ]]; then
  [[ -d "$DATA_DIR" ]] || { echo "reproduce: error: DATA_DIR '$DATA_DIR' is not a folder; point it at the datasets (e.g. DATA_DIR=../shared/data)" >&2; exit 2; }
  FEDNLP_DATA_DIR=$(cd "$DATA_DIR" && pwd)
  export FEDNLP_DATA_DIR
fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$(date +%s)
fednlp-bench reproduce "$TABLE" "$@"
echo "reproduce $TABLE: $(( $(date +%s) - start )) s wall time"
