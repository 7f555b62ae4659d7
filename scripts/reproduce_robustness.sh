#!/usr/bin/env bash
# Reproduce the robustness table (agnews, standard profile): FedAvg, coordinate-wise median, trimmed mean (30%)
# and Krum (3 attackers tolerated) on the IID partition, without attacking clients and with 10% and 30% of the
# clients sending a boosted sign-flipped update (-4 x their delta); then submit and rebuild the board.
# Usage: DATA_DIR=../shared/data bash scripts/reproduce_robustness.sh --profile standard [reproduce options]
exec bash "$(dirname "${BASH_SOURCE[0]}")/_reproduce.sh" robustness "$@"
