"""Built-in tasks: where their data comes from, which columns, which model and lengths by default."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable
from pathlib import Path

import numpy as np

from ..data import demo_dataset, load_domains, load_hub, load_local
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
    folder: str | None = None  # folder under FEDNLP_DATA_DIR when not the task's name
    default_model: str = "tiny"
    max_length: int = 128
    tags: tuple[str, ...] = field(default_factory=tuple)


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in [
        # text classification
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
        # sequence tagging
        TaskSpec("wnut17", "sequence_tagging", "WNUT-17 emerging entities NER, 6 types, BIO (FedNLP's w_nut)",
                 text_columns=("tokens",), label_column="ner_tags", hub_name="leondz/wnut_17",
                 local_train="train.conll", local_test="test.conll", max_length=128),
        TaskSpec("conll2003", "sequence_tagging", "CoNLL-2003 English NER, 4 types", text_columns=("tokens",),
                 label_column="ner_tags", hub_name="eriktks/conll2003", max_length=128),
        TaskSpec("tagging", "sequence_tagging",
                 "your own CoNLL files (token ... tag per line): --train-file [--test-file] [--tag-scheme]",
                 text_columns=("tokens",), label_column="ner_tags"),
        # extractive QA
        TaskSpec("squad", "extractive_qa", "SQuAD v1.1 extractive QA (SQuAD 2.0 files: answerable questions)",
                 text_columns=("question", "context"), label_column="answers", hub_name="rajpurkar/squad",
                 hub_splits=("train", "validation"), local_train="dev-subset.json", local_test=None, max_length=192),
        TaskSpec("mrqa", "extractive_qa", "MRQA 2019 shared task, 6 training domains = natural clients",
                 text_columns=("question", "context"), label_column="answers", hub_name="mrqa-workshop/mrqa",
                 hub_splits=("train", "validation"), max_length=192),
        TaskSpec("qa", "extractive_qa", "your own SQuAD-format JSON: --train-file [--test-file]",
                 text_columns=("question", "context"), label_column="answers", max_length=192),
        # seq2seq
        TaskSpec("agnews_headline", "seq2seq", "AG News headline generation: description -> title",
                 text_columns=("description",), label_column="title", folder="agnews",
                 local_train="test.csv", local_test=None, max_length=128),
        TaskSpec("cnn_dailymail", "seq2seq", "CNN/DailyMail summarisation: article -> highlights",
                 text_columns=("article",), label_column="highlights", hub_name="abisee/cnn_dailymail",
                 hub_config="3.0.0", max_length=512, default_model="facebook/bart-base"),
        TaskSpec("xsum", "seq2seq", "XSum one-sentence summarisation: document -> summary",
                 text_columns=("document",), label_column="summary", hub_name="EdinburghNLP/xsum", max_length=512,
                 default_model="facebook/bart-base"),
        TaskSpec("samsum", "seq2seq", "SAMSum dialogue summarisation: dialogue -> summary",
                 text_columns=("dialogue",), label_column="summary", hub_name="knkarthick/samsum", max_length=512,
                 default_model="facebook/bart-base"),
        TaskSpec("seq2seq", "seq2seq", "your own csv/tsv/jsonl pairs: --train-file [--test-file] "
                 "--text-column SOURCE --target-column TARGET", text_columns=("source",), label_column="target"),
    ]
}

FAMILIES = ("text_classification", "sequence_tagging", "extractive_qa", "seq2seq")

# What --text-column and --label-column (alias --target-column) name in each family.
COLUMN_ROLES = {
    "text_classification": ("text column(s)", "label column"),
    "sequence_tagging": ("token column", "tag column"),
    "extractive_qa": ("question and context columns", "answers column"),
    "seq2seq": ("source column", "target column"),
}


def shared_data_dir() -> Path | None:
    """FEDNLP_DATA_DIR, the root that holds one folder per task (sst2/, agnews/, ...)."""
    root = os.environ.get("FEDNLP_DATA_DIR")
    return Path(root) if root else None


def get_spec(name: str) -> TaskSpec:
    if name not in TASKS:
        raise UserError(f"unknown task '{name}'", f"choose one of: {', '.join(TASKS)} (see `fednlp-bench tasks`)")
    return TASKS[name]


def subsample(data, max_train: int | None, max_test: int | None, seed: int):
    """Seeded subsets of each split (for quick runs); the fingerprint follows the subset."""
    if not max_train and not max_test:
        return data
    rng = np.random.default_rng([seed, 0xDA7A])

    def pick(n: int, cap: int | None) -> np.ndarray:
        return np.sort(rng.permutation(n)[:cap]) if cap and cap < n else np.arange(n)

    return data.subset(pick(len(data.train_texts), max_train), pick(len(data.test_texts), max_test))


def family_loaders(family: str) -> tuple[Callable, Callable]:
    """(local-files loader, hub loader) of a task family, with one signature for all families."""
    if family == "text_classification":
        def local(train, test, cols, label, *, test_fraction, seed, name, **_):
            return load_local(train, test, cols, label, test_fraction=test_fraction, seed=seed, name=name)

        def hub(hub_name, config, cols, label, *, train_split, test_split, name, **_):
            return load_hub(hub_name, cols, label, train_split=train_split, test_split=test_split, config_name=config)

        return local, hub
    if family == "sequence_tagging":
        from ..data import tagging as mod
    elif family == "extractive_qa":
        from ..data import qa as mod
    elif family == "seq2seq":
        from ..data import seq2seq as mod
    else:
        raise UserError(f"unknown task family '{family}'", f"choose one of: {', '.join(FAMILIES)}")
    return mod.LOCAL_LOADER, mod.HUB_LOADER


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
    **options: Any,
):
    """Load a task's data: the embedded demo, your files, a local copy (--data-dir / FEDNLP_DATA_DIR) or the hub.

    The result is the family's data class (TextClassificationData for classification); `options` are the
    family's loading options (e.g. tag_scheme for tagging).
    """
    spec = get_spec(name)
    cols = list(text_columns) if text_columns else list(spec.text_columns)
    label = label_column or spec.label_column
    if spec.name == "demo" and not train_file:
        return demo_dataset(num_train=demo_size[0], num_test=demo_size[1], seed=0)
    local, hub = family_loaders(spec.family)
    kw = dict(test_fraction=test_fraction, seed=seed, name=spec.name, **options)
    if train_file:
        return local(train_file, test_file, cols, label, **kw)
    if spec.local_train is None and spec.hub_name is None:
        raise UserError(f"task '{name}' needs data files", "pass --train-file (and --test-file) with your data")
    root = shared_data_dir()
    folder = Path(data_dir) if data_dir else (root / (spec.folder or name) if root and spec.local_train else None)
    if folder is not None and spec.layout == "domains":
        return load_domains(str(folder), cols, label, spec.local_train, spec.local_test, name=spec.name)
    if folder is not None:
        if spec.local_train is None:
            raise UserError(f"task '{name}' has no local file layout", "pass --train-file (and --test-file) instead of --data-dir")
        if not folder.is_dir():
            raise UserError(f"data folder not found: {folder}", f"point --data-dir at the folder holding {spec.local_train}")
        test = str(folder / spec.local_test) if spec.local_test else None
        return local(str(folder / spec.local_train), test, cols, label, **kw)
    if spec.hub_name is None:
        raise UserError(f"task '{name}' has no hub source", "pass --data-dir with a local copy (or set FEDNLP_DATA_DIR)")
    hub_cols = list(text_columns) if text_columns else list(spec.hub_text_columns or spec.text_columns)
    return hub(spec.hub_name, spec.hub_config, hub_cols, label, train_split=spec.hub_splits[0],
               test_split=spec.hub_splits[1], name=spec.name, **options)
