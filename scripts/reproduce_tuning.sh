#!/usr/bin/env bash
# Reproduce the tuning table (standard profile): FedAvg with full fine-tuning beside LoRA (r 8), BitFit, prompt
# tuning and freezing the embeddings and layers 0-2, on agnews with all-MiniLM-L6-v2 (IID and alpha 1), and LoRA
# beside full fine-tuning on wnut17; each task's reference is full fine-tuning trained centrally to convergence.
# The methods and their settings are the `tuning:` blocks of tasks/agnews.yaml and tasks/wnut17.yaml.
# Usage: DATA_DIR=../shared/data bash scripts/reproduce_tuning.sh --profile standard [reproduce options]
exec bash "$(dirname "${BASH_SOURCE[0]}")/_reproduce.sh" tuning "$@"
