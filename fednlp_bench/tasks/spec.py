"""TaskSpec: the in-memory form of a task card (fednlp_bench/tasks/cards.py builds it from YAML); the task families,
their primary metrics and each metric's direction."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FAMILIES = ("text_classification", "sequence_tagging", "extractive_qa", "seq2seq", "language_modeling")

# The primary metric of each family (what a card's `metric` must say; the adapters' primary_metric).
FAMILY_METRIC = {
    "text_classification": "accuracy",
    "sequence_tagging": "f1",
    "extractive_qa": "f1",
    "seq2seq": "rougeL",
    "language_modeling": "perplexity",
}

# Metrics where a smaller value is better; every other metric is better when larger.
LOWER_IS_BETTER = frozenset({"perplexity", "loss"})


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of `metric` is better (False for perplexity and loss)."""
    return metric not in LOWER_IS_BETTER

# What --text-column and --label-column (alias --target-column) name in each family.
COLUMN_ROLES = {
    "text_classification": ("text column(s)", "label column"),
    "sequence_tagging": ("token column", "tag column"),
    "extractive_qa": ("question and context columns", "answers column"),
    "seq2seq": ("source column", "target column"),
    "language_modeling": ("text column", "label column (optional: the label-skew label)"),
}


@dataclass(frozen=True)
class TaskSpec:
    """How to load one benchmark task. Local files are named relative to a data folder."""

    name: str
    family: str
    description: str
    text_columns: tuple[str, ...] = ("text",)
    label_column: str | None = "label"  # None: no label (language modelling without a skew label)
    hub_name: str | None = None
    hub_config: str | None = None
    hub_text_columns: tuple[str, ...] | None = None
    hub_splits: tuple[str, str] = ("train", "test")
    local_train: str | None = None
    local_test: str | None = None  # None: split local_train (seeded)
    layout: str = "files"  # files: local_train/local_test; domains: one folder per domain (natural clients)
    folder: str | None = None  # folder under FEDNLP_DATA_DIR when not the task's name
    default_model: str = "tiny"
    max_length: int = 128
    tags: tuple[str, ...] = field(default_factory=tuple)
    metric: str | None = None  # the family's primary metric (FAMILY_METRIC)
    embedded: str | None = None  # "demo": the embedded offline dataset when no --train-file is given
    # FedNLP's published settings per algorithm (what `--profile full` starts from)
    fednlp: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False, hash=False)
    # run profiles: {"smoke" | "full": {setting: value, algorithm: {...}, "seeds": [...], "partitions": [...]}}
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False, hash=False)
    notes: str = ""
    card: str | None = None  # the card file this spec was read from
