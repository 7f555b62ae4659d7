"""Built-in tasks: where their data comes from, which columns, which model and lengths by default."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..data import TextClassificationData, data_fingerprint, demo_dataset, load_domains, load_hub, load_local
from ..errors import UserError


@dataclass(frozen=True)
class TaskSpec:
    """How to load one benchmark task. Local files are named relative to a data folder."""

    name: str
    family: str
    description: str
    text_columns: tuple[str, ...] = ("text",)
    label_column: str = "label"
    hub_name: str | None = None
    hub_config: str | None = None
    hub_text_columns: tuple[str, ...] | None = None
    hub_splits: tuple[str, str] = ("train", "test")
    local_train: str | None = None
    local_test: str | None = None  # None: split local_train (seeded)
    layout: str = "files"  # files: local_train/local_test; domains: one folder per domain (natural clients)
    default_model: str = "tiny"
    max_length: int = 128
    tags: tuple[str, ...] = field(default_factory=tuple)


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in [
        TaskSpec("demo", "text_classification", "embedded topic sentences, 8 classes, 10% label noise (offline)",
                 max_length=64),
        TaskSpec("sst2", "text_classification", "GLUE SST-2 sentiment, 2 classes", text_columns=("sentence",),
                 hub_name="glue", hub_config="sst2", hub_splits=("train", "validation"),
                 local_train="train.tsv", local_test="dev.tsv", max_length=64),
        TaskSpec("agnews", "text_classification", "AG News topics, 4 classes (title + description)",
                 text_columns=("title", "description"), hub_name="ag_news", hub_text_columns=("text",),
                 local_train="test.csv", local_test=None, max_length=128),
        TaskSpec("multidomain_sentiment", "text_classification",
                 "product/airline review sentiment, 2 classes, 5 domains = natural clients", text_columns=("sentence",),
                 layout="domains", local_train="train.tsv", local_test="test-labeled.tsv", max_length=128),
        TaskSpec("20news", "text_classification", "20 Newsgroups, 20 classes (FedNLP's flagship)",
                 hub_name="SetFit/20_newsgroups", max_length=256),
        TaskSpec("text_classification", "text_classification",
                 "your own files: --train-file [--test-file] --text-column --label-column"),
    ]
}


def shared_data_dir() -> Path | None:
    """FEDNLP_DATA_DIR, the root that holds one folder per task (sst2/, agnews/, ...)."""
    root = os.environ.get("FEDNLP_DATA_DIR")
    return Path(root) if root else None


def get_spec(name: str) -> TaskSpec:
    if name not in TASKS:
        raise UserError(f"unknown task '{name}'", f"choose one of: {', '.join(TASKS)} (see `fednlp-bench tasks`)")
    return TASKS[name]


def subsample(data: TextClassificationData, max_train: int | None, max_test: int | None, seed: int) -> TextClassificationData:
    """Seeded subsets of each split (for quick runs); the fingerprint follows the subset."""
    if not max_train and not max_test:
        return data
    rng = np.random.default_rng([seed, 0xDA7A])

    def pick(n: int, cap: int | None) -> np.ndarray:
        return np.sort(rng.permutation(n)[:cap]) if cap and cap < n else np.arange(n)

    tr, te = pick(len(data.train_texts), max_train), pick(len(data.test_texts), max_test)
    out = replace(
        data,
        train_texts=[data.train_texts[i] for i in tr],
        train_labels=data.train_labels[tr],
        test_texts=[data.test_texts[i] for i in te],
        test_labels=data.test_labels[te],
        train_groups=[data.train_groups[i] for i in tr] if data.train_groups else None,
        test_groups=[data.test_groups[i] for i in te] if data.test_groups else None,
    )
    return replace(out, fingerprint=data_fingerprint(out))


def load_task_data(
    name: str,
    data_dir: str | None = None,
    train_file: str | None = None,
    test_file: str | None = None,
    text_columns: list[str] | None = None,
    label_column: str | None = None,
    seed: int = 42,
    test_fraction: float = 0.2,
    demo_size: tuple[int, int] = (4000, 1000),
) -> TextClassificationData:
    """Load a task's data: the embedded demo, your files, a local copy (--data-dir / FEDNLP_DATA_DIR) or the hub."""
    spec = get_spec(name)
    cols = list(text_columns) if text_columns else list(spec.text_columns)
    label = label_column or spec.label_column
    if spec.name == "demo" and not train_file:
        return demo_dataset(num_train=demo_size[0], num_test=demo_size[1], seed=0)
    if train_file:
        return load_local(train_file, test_file, cols, label, test_fraction=test_fraction, seed=seed, name=spec.name)
    if spec.local_train is None:
        raise UserError(f"task '{name}' needs data files", "pass --train-file (and --test-file) with your data")
    folder = Path(data_dir) if data_dir else (shared_data_dir() / name if shared_data_dir() else None)
    if folder is not None and spec.layout == "domains":
        return load_domains(str(folder), cols, label, spec.local_train, spec.local_test, name=spec.name)
    if folder is not None:
        if not folder.is_dir():
            raise UserError(f"data folder not found: {folder}", f"point --data-dir at the folder holding {spec.local_train}")
        test = str(folder / spec.local_test) if spec.local_test else None
        return load_local(str(folder / spec.local_train), test, cols, label, test_fraction=test_fraction, seed=seed,
                          name=spec.name)
    if spec.hub_name is None:
        raise UserError(f"task '{name}' has no hub source", "pass --data-dir with a local copy")
    hub_cols = list(text_columns) if text_columns else list(spec.hub_text_columns or spec.text_columns)
    return load_hub(spec.hub_name, hub_cols, label, train_split=spec.hub_splits[0], test_split=spec.hub_splits[1],
                    config_name=spec.hub_config)
