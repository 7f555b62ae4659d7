#!/usr/bin/env bash
# Reproduce the sequence_tagging table of the leaderboard: for each sequence_tagging task whose card has the profile, the untrained
# model, the centralized baseline and FedAvg, FedProx and FedOpt on the canonical partitions over several seeds,
# then the board is rebuilt. A re-run skips the finished runs (resume after an interruption).
#   DATA_DIR=../shared/data bash scripts/reproduce_sequence_tagging.sh --profile smoke   # CPU, minutes
#   bash scripts/reproduce_sequence_tagging.sh --profile full                            # FedNLP's settings, GPUs, hub data
# Any other flag goes to `fednlp-bench reproduce` (--dry-run, --tasks, --seeds, --runs, --root, ...).
exec bash "$(dirname "${BASH_SOURCE[0]}")/_reproduce.sh" sequence_tagging "$@"
