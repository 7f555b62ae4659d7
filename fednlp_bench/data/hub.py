"""Load texts with labels from the Hugging Face Hub through `datasets.load_dataset`: text classification, and
language-modelling corpora (lm.py; the label column optional)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import UserError
from .splits import NO_LABEL, TextClassificationData, encode_labels, seeded_split

_OFFLINE_FIX = "connect to the network once to fill the cache, or use local files with --train-file"


def _one_line(exc: BaseException, limit: int = 200) -> str:
    reason = " ".join(f"{type(exc).__name__}: {exc}".split())
    return reason if len(reason) <= limit else reason[: limit - 3] + "..."


def load_hub(
    name: str,
    text_columns: list[str],
    label_column: str | None,
    train_split: str = "train",
    test_split: str | None = "test",
    config_name: str | None = None,
    cache_dir: str | None = None,
    test_fraction: float = 0.2,
    seed: int = 42,
) -> TextClassificationData:
    """Load `name` (optionally `config_name`) from the Hub or its local cache.

    Labels use the ClassLabel names when the label feature has them. With
    `test_split=None` the train split is divided at random (seeded) instead.
    """
    if isinstance(text_columns, str):
        text_columns = [text_columns]
    text_columns = list(text_columns)
    if not text_columns:
        raise UserError("no text column given", "name at least one text column, e.g. --text-column text")
    shown = name if config_name is None else f"{name}/{config_name}"
    try:
        import datasets
    except ImportError as e:  # pragma: no cover - datasets is a dependency
        raise UserError(f"could not load Hugging Face dataset '{shown}' ({_one_line(e)})", "pip install datasets") from None
    try:
        dsd = datasets.load_dataset(name, config_name, cache_dir=cache_dir)
    except Exception as e:  # no network, no cache, unknown name, broken script ...
        raise UserError(f"could not load Hugging Face dataset '{shown}' ({_one_line(e)})", _OFFLINE_FIX) from None

    available = list(dsd.keys()) if hasattr(dsd, "keys") else []
    wanted = [train_split] + ([test_split] if test_split is not None else [])
    for split in wanted:
        if split not in available:
            raise UserError(
                f"Hugging Face dataset '{shown}' has no split '{split}' (it has: {', '.join(available) or 'none'})",
                "pass an existing split name for the train/test split",
            )
    train = dsd[train_split]
    columns = list(train.column_names)
    missing = [c for c in [*text_columns, *([label_column] if label_column else [])] if c not in columns]
    if missing:
        raise UserError(
            f"column{'s' if len(missing) > 1 else ''} {', '.join(repr(c) for c in missing)} not in "
            f"Hugging Face dataset '{shown}' (it has: {', '.join(columns)})",
            "pass the right names with --text-column / --label-column",
        )
    feature = train.features.get(label_column) if label_column else None
    class_names = list(feature.names) if isinstance(feature, datasets.ClassLabel) else None

    train_texts, train_raw = _texts_and_labels(train, text_columns, label_column)
    if test_split is not None:
        test_texts, test_raw = _texts_and_labels(dsd[test_split], text_columns, label_column)
        if class_names is not None:
            train_ids = _class_ids(train_raw, class_names, shown, train_split)
            test_ids = _class_ids(test_raw, class_names, shown, test_split)
            label_names = class_names
        else:
            train_ids, test_ids, label_names = encode_labels(train_raw, test_raw)
    else:
        if not 0.0 < test_fraction < 1.0:
            raise UserError(
                f"test fraction must lie strictly between 0 and 1, got {test_fraction}",
                "pass e.g. --test-fraction 0.2, or name a test split",
            )
        if class_names is not None:
            all_ids, label_names = _class_ids(train_raw, class_names, shown, train_split), class_names
        else:
            all_ids, _, label_names = encode_labels(train_raw, [])
        train_idx, test_idx = seeded_split(len(train_texts), test_fraction, seed, f"'{shown}' split '{train_split}'",
                                           "row")
        test_texts, test_ids = [train_texts[i] for i in test_idx], all_ids[test_idx]
        train_texts, train_ids = [train_texts[i] for i in train_idx], all_ids[train_idx]

    return TextClassificationData.create(
        name=shown,
        train_texts=train_texts,
        train_labels=train_ids,
        test_texts=test_texts,
        test_labels=test_ids,
        label_names=label_names,
    )


def _texts_and_labels(split: Any, text_columns: list[str], label_column: str | None) -> tuple[list[str], list[Any]]:
    for c in [*text_columns, *([label_column] if label_column else [])]:
        if c not in split.column_names:
            raise UserError(f"column '{c}' missing from a split (it has: {', '.join(split.column_names)})",
                            "pass column names that every split has")
    cols = [["" if v is None else str(v) for v in list(split[c])] for c in text_columns]
    texts = cols[0] if len(cols) == 1 else [" ".join(p for p in parts if p) for parts in zip(*cols)]
    return texts, list(split[label_column]) if label_column else [NO_LABEL] * len(texts)


def _class_ids(raw: list[Any], names: list[str], shown: str, split: str) -> np.ndarray:
    ids = np.asarray(raw, dtype=np.int64)
    if ids.size and ids.min() < 0:
        raise UserError(
            f"split '{split}' of '{shown}' is unlabeled ({int((ids < 0).sum())} rows have label -1)",
            "use a labeled split as the test split, e.g. --test-split validation",
        )
    if ids.size and ids.max() >= len(names):
        raise UserError(f"split '{split}' of '{shown}' has label ids beyond its {len(names)} class names",
                        "check the dataset's label feature")
    return ids
