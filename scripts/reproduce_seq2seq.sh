#!/usr/bin/env bash
# Reproduce the seq2seq table of the leaderboard: for each seq2seq task whose card has the profile, the untrained
# model, the centralized baseline and FedAvg, FedProx and FedOpt on the canonical partitions over several seeds,
# then the board is rebuilt. A re-run skips the finished runs (resume after an interruption).
#   DATA_DIR=../shared/data bash scripts/reproduce_seq2seq.sh --profile smoke   # CPU, minutes
#   bash scripts/reproduce_seq2seq.sh --profile full                            # FedNLP's settings, GPUs, hub data
# Any other flag goes to `fednlp-bench reproduce` (--dry-run, --tasks, --seeds, --runs, --root, ...).
exec bash "$(dirname "${BASH_SOURCE[0]}")/_reproduce.sh" seq2seq "$@"
