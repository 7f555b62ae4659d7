#!/usr/bin/env bash
# Smoke profile of the benchmark on the embedded demo task (offline, ~2 minutes on 2 CPU cores):
# centralized, FedAvg/FedProx/FedOpt on the canonical IID and label-skew partitions (partition/demo_*.yaml),
# FedAvg across alpha, then every result is submitted to the leaderboard and the board is rebuilt.
# Usage: bash scripts/smoke_leaderboard.sh [RUNS_DIR] [LEADERBOARD_DIR]
set -euo pipefail
RUNS=${1:-runs/smoke}
BOARD=${2:-leaderboard}
PROFILE="smoke: demo task, tiny model, 10 clients, 5 per round, 10 rounds, seed 42"
COMMON=(--task demo --clients 10 --clients-per-round 5 --rounds 10 --seed 42 --output "$RUNS" --no-progress)

fednlp-bench centralized "${COMMON[@]}"
for algo in fedavg fedprox fedopt; do
  fednlp-bench run "${COMMON[@]}" --algorithm "$algo" --partition uniform
  fednlp-bench run "${COMMON[@]}" --algorithm "$algo" --partition label --alpha 0.1
done
for alpha in 1 100; do
  fednlp-bench run "${COMMON[@]}" --algorithm fedavg --partition label --alpha "$alpha"
done

for result in "$RUNS"/demo-*.json; do
  fednlp-bench leaderboard submit "$result" --root "$BOARD" --submitter "fednlp-bench maintainers" \
    --profile "$PROFILE" --no-build || echo "not submitted: $result"
done
fednlp-bench leaderboard build --root "$BOARD"
