#!/usr/bin/env bash
# Reproduce the trustworthy-FL table (sst2, agnews_lm): FedAvg on quantity skew under uniform / activity /
# power-of-choice selection, static vs continual data, without / with client-level and example-level DP,
# each with a loss-threshold membership-inference audit; then submit and rebuild the board.
# Usage: DATA_DIR=../shared/data scripts/reproduce_trustworthy.sh [--seeds 1] [reproduce options]
exec bash "$(dirname "${BASH_SOURCE[0]}")/_reproduce.sh" trustworthy "$@"
