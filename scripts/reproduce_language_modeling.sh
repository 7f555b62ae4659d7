#!/usr/bin/env bash
# Reproduce the language-modelling table (agnews_lm: centralized, FedAvg, FedProx, FedOpt on the canonical partitions).
# Usage: DATA_DIR=../shared/data scripts/reproduce_language_modeling.sh [--profile smoke|full] [reproduce options]
exec bash "$(dirname "${BASH_SOURCE[0]}")/_reproduce.sh" language_modeling "$@"
