#!/usr/bin/env bash
# Every table of the leaderboard, one after the other (flags and DATA_DIR as for reproduce_<table>.sh).
#   DATA_DIR=../shared/data bash scripts/reproduce_all.sh --profile smoke
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
start=$(date +%s)
for table in text_classification sequence_tagging extractive_qa seq2seq language_modeling trustworthy; do
  bash "$here/reproduce_$table.sh" "$@"
done
echo "reproduce all tables: $(( $(date +%s) - start )) s wall time"
