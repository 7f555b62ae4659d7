"""Language-modelling corpora: one text per example from local files (.txt one per line, or csv/tsv/jsonl/json
with a text column) or the Hugging Face Hub. A label column is optional: when given it is the label that
label skew partitions by (e.g. sentiment or topic); without one every example has the one label "all".
Empty texts are dropped (raw wikitext has blank lines)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError
from .hub import load_hub
from .local import load_local, read_text_file
from .splits import NO_LABEL, TextClassificationData, seeded_split


def _drop_empty(data: TextClassificationData) -> TextClassificationData:
    """The corpus without examples whose text is blank; an empty split is a UserError."""
    keep_train = np.flatnonzero([bool(t.strip()) for t in data.train_texts])
    keep_test = np.flatnonzero([bool(t.strip()) for t in data.test_texts])
    for split, keep in (("train", keep_train), ("test", keep_test)):
        if len(keep) == 0:
            raise UserError(f"the {split} split of '{data.name}' has no non-empty text",
                            "check --text-column (it must name the column holding the text)")
    if len(keep_train) == len(data.train_texts) and len(keep_test) == len(data.test_texts):
        return data
    return data.subset(keep_train, keep_test)


def _read_lines(path: str, option: str) -> list[str]:
    return [line.strip() for line in read_text_file(path, option, "a text file").splitlines() if line.strip()]


def load_lm_local(train: str, test: str | None, cols: list[str], label: str | None, *, test_fraction: float,
                  seed: int, name: str | None = None, **_) -> TextClassificationData:
    """A local corpus: .txt files hold one example per line; table files are read like classification data."""
    if Path(train).suffix.lower() != ".txt":
        if test is not None and Path(test).suffix.lower() == ".txt":
            raise UserError(f"--test-file {test} is a .txt file but --train-file {train} is not",
                            "give both files in the same format")
        return _drop_empty(load_local(train, test, cols, label, test_fraction=test_fraction, seed=seed, name=name))
    if label:
        raise UserError(f"a .txt corpus has no columns, so no label column '{label}'",
                        "leave out --label-column, or use a csv/tsv/jsonl file with that column")
    train_texts = _read_lines(train, "--train-file")
    if test is not None:
        test_texts = _read_lines(test, "--test-file")
    else:
        if not 0.0 < test_fraction < 1.0:
            raise UserError(f"test fraction must lie strictly between 0 and 1, got {test_fraction}",
                            "pass e.g. --test-fraction 0.2, or give a separate --test-file")
        train_idx, test_idx = seeded_split(len(train_texts), test_fraction, seed, train, "line")
        train_texts, test_texts = [train_texts[i] for i in train_idx], [train_texts[i] for i in test_idx]
    data = TextClassificationData.create(
        name=name or Path(train).stem, train_texts=train_texts, train_labels=np.zeros(len(train_texts), np.int64),
        test_texts=test_texts, test_labels=np.zeros(len(test_texts), np.int64), label_names=[NO_LABEL])
    return _drop_empty(data)


def load_lm_hub(hub_name: str, config: str | None, cols: list[str], label: str | None, *, train_split: str,
                test_split: str, name: str | None = None, **_) -> TextClassificationData:
    """A corpus from the Hugging Face Hub (or its local cache), blank texts dropped."""
    return _drop_empty(load_hub(hub_name, cols, label, train_split=train_split, test_split=test_split,
                                config_name=config))


LOCAL_LOADER = load_lm_local
HUB_LOADER = load_lm_hub
