"""The in-memory form of a text-classification dataset (train/test texts with integer labels; language-modelling
corpora use it too), label encoding, fingerprints, the seeded test and validation splits every family uses, and the
checks of classification data (one label, empty texts, a leaked test split)."""

from __future__ import annotations

import hashlib
import math
import struct
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import DataWarning, UserError


NO_LABEL = "all"  # the one label of every example of a dataset without a label column (language modelling)


@dataclass
class TextClassificationData:
    """Train and test splits of a text-classification task, labels as int64 ids 0..L-1."""

    name: str
    train_texts: list[str]
    train_labels: np.ndarray  # int64 class ids 0..L-1
    test_texts: list[str]
    test_labels: np.ndarray
    label_names: list[str]
    fingerprint: str  # sha256 hex of the texts+labels of both splits (stable across runs)
    train_groups: list[str] | None = None  # natural client id per example (user, author, domain), when known
    test_groups: list[str] | None = None

    @classmethod
    def create(
        cls,
        name: str,
        train_texts: Sequence[str],
        train_labels: Sequence[int] | np.ndarray,
        test_texts: Sequence[str],
        test_labels: Sequence[int] | np.ndarray,
        label_names: Sequence[str],
    ) -> "TextClassificationData":
        """Build the dataset, checking shapes and computing the fingerprint."""
        train_texts = [str(t) for t in train_texts]
        test_texts = [str(t) for t in test_texts]
        train_ids = np.asarray(train_labels, dtype=np.int64).reshape(-1)
        test_ids = np.asarray(test_labels, dtype=np.int64).reshape(-1)
        label_names = [str(n) for n in label_names]
        if len(train_texts) != len(train_ids) or len(test_texts) != len(test_ids):
            raise ValueError("texts and labels differ in length")
        for ids in (train_ids, test_ids):
            if ids.size and (ids.min() < 0 or ids.max() >= len(label_names)):
                raise ValueError(f"label ids must lie in 0..{len(label_names) - 1}")
        return cls(
            name=name,
            train_texts=train_texts,
            train_labels=train_ids,
            test_texts=test_texts,
            test_labels=test_ids,
            label_names=label_names,
            fingerprint=fingerprint_of(train_texts, train_ids, test_texts, test_ids, label_names),
        )

    @property
    def num_labels(self) -> int:
        """Number of classes."""
        return len(self.label_names)

    def subset(self, train_idx: np.ndarray, test_idx: np.ndarray) -> "TextClassificationData":
        """The examples at the given ids of each split (order kept); the fingerprint follows the subset."""
        from dataclasses import replace

        tr, te = np.asarray(train_idx, np.int64), np.asarray(test_idx, np.int64)
        out = replace(
            self,
            train_texts=[self.train_texts[i] for i in tr],
            train_labels=self.train_labels[tr],
            test_texts=[self.test_texts[i] for i in te],
            test_labels=self.test_labels[te],
            train_groups=[self.train_groups[i] for i in tr] if self.train_groups else None,
            test_groups=[self.test_groups[i] for i in te] if self.test_groups else None,
        )
        return replace(out, fingerprint=data_fingerprint(out))

    def summary(self) -> str:
        """One line: name, sizes, classes and a short fingerprint."""
        return (
            f"{self.name}: {len(self.train_texts)} train / {len(self.test_texts)} test, "
            f"{self.num_labels} labels, fingerprint {self.fingerprint[:12]}"
        )


def fingerprint_of(
    train_texts: Sequence[str],
    train_labels: Sequence[int] | np.ndarray,
    test_texts: Sequence[str],
    test_labels: Sequence[int] | np.ndarray,
    label_names: Sequence[str] | None = None,
) -> str:
    """SHA-256 hex digest of both splits' texts and labels (and label names, when given).

    Every item is length-prefixed, so no two different datasets share a byte stream.
    """
    h = hashlib.sha256()

    def put(data: bytes) -> None:
        h.update(struct.pack("<Q", len(data)))
        h.update(data)

    for texts, labels in ((train_texts, train_labels), (test_texts, test_labels)):
        ids = np.asarray(labels, dtype="<i8").reshape(-1)
        put(struct.pack("<Q", len(texts)))
        for text in texts:
            put(str(text).encode("utf-8"))
        put(ids.tobytes())
    if label_names is not None:
        put(struct.pack("<Q", len(label_names)))
        for label in label_names:
            put(str(label).encode("utf-8"))
    return h.hexdigest()


def _label_key(raw: Any, where: str, index: int) -> str:
    """Canonical string form of one raw label; integral floats (1.0) become '1'."""
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        raise UserError(
            f"{where} row {index + 1} has no label",
            "fill in the label column for every row or drop the unlabeled rows",
        )
    if isinstance(raw, bool):
        return str(raw).lower()
    if isinstance(raw, (int, np.integer)):
        return str(int(raw))
    if isinstance(raw, (float, np.floating)):
        return str(int(raw)) if float(raw).is_integer() else repr(float(raw))
    key = str(raw).strip()
    if not key:
        raise UserError(
            f"{where} row {index + 1} has an empty label",
            "fill in the label column for every row or drop the unlabeled rows",
        )
    return key


def _as_number(key: str) -> float | None:
    try:
        value = float(key)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def encode_labels(
    raw_train: Sequence[Any], raw_test: Sequence[Any]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Map raw labels (ints or strings) to int64 ids 0..L-1.

    The classes are those seen in train, sorted numerically when every label is a
    number (so '2' < '10'), else as strings. A test label not seen in train is an error.
    Returns (train_ids, test_ids, label_names).
    """
    train_keys = [_label_key(r, "train", i) for i, r in enumerate(raw_train)]
    test_keys = [_label_key(r, "test", i) for i, r in enumerate(raw_test)]
    classes = set(train_keys)
    if not classes and test_keys:
        raise UserError("the train split has no labeled rows", "pass a train file with data rows")
    numbers = {k: _as_number(k) for k in classes}
    if all(v is not None for v in numbers.values()):
        label_names = sorted(classes, key=lambda k: (numbers[k], k))
    else:
        label_names = sorted(classes)
    index = {k: i for i, k in enumerate(label_names)}
    unseen = sorted({k for k in test_keys if k not in index})
    if unseen:
        shown = ", ".join(repr(k) for k in unseen[:5]) + (" ..." if len(unseen) > 5 else "")
        raise UserError(
            f"test labels not seen in train: {shown} (train has {len(label_names)} labels)",
            "make sure train and test use the same label column and label values",
        )
    train_ids = np.array([index[k] for k in train_keys], dtype=np.int64)
    test_ids = np.array([index[k] for k in test_keys], dtype=np.int64)
    return train_ids, test_ids, label_names


def data_fingerprint(data: TextClassificationData) -> str:
    """Fingerprint of a dataset's texts, labels and natural client ids (when it has them)."""
    return fingerprint_of(
        list(data.train_texts) + list(data.train_groups or []),
        data.train_labels,
        list(data.test_texts) + list(data.test_groups or []),
        data.test_labels,
        data.label_names,
    )


def seeded_split(n: int, test_fraction: float, seed: int, what: str, unit: str = "example") -> tuple[np.ndarray, np.ndarray]:
    """(train ids, test ids), both sorted: a seeded shuffle holds out round(n * test_fraction) ids (at least one
    each side). Every family splits a single file this way, so the same seed gives the same split everywhere."""
    if not 0.0 < test_fraction < 1.0:
        raise UserError(f"test fraction must lie strictly between 0 and 1, got {test_fraction}",
                        "give a separate --test-file")
    if n < 2:
        raise UserError(f"cannot split {what} into train and test: it has only {n} {unit}(s)",
                        f"add {unit}s or give a separate --test-file")
    order = np.random.default_rng(seed).permutation(n)
    n_test = min(max(int(round(n * test_fraction)), 1), n - 1)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def holdout_validation(data: Any, fraction: float, seed: int) -> tuple[Any, Any]:
    """(training data, validation data) of any family's dataset: a seeded `fraction` of the training split is held
    out. The training data keeps the rest of the training split and the whole test split; the validation data has
    the same training split (so a tokenizer or model built from it is the same) and the held-out examples as its
    test split. Works for every dataset class with `train_*` / `test_*` field pairs and a `subset` method."""
    from dataclasses import fields as dc_fields, replace

    n_train, n_test = len(data.train_texts), len(data.test_texts)
    keep, held = seeded_split(n_train, fraction, int(np.random.SeedSequence([seed, 0x7A11]).generate_state(1)[0]),
                              "the training split", "training example")
    names = {f.name for f in dc_fields(data)}
    # a copy whose test split is the training split, so that `subset` can pick validation examples from it
    train_as_test = replace(data, **{"test_" + n[len("train_"):]: getattr(data, n) for n in names
                                     if n.startswith("train_") and "test_" + n[len("train_"):] in names})
    return data.subset(keep, np.arange(n_test)), train_as_test.subset(keep, held)


LEAK_WARNING_FRACTION = 0.05  # warn when this share of the test texts is also in the training split


def check_classification_data(data: TextClassificationData, source: str = "", subset: str = "") -> None:
    """What a classifier can learn from: some non-empty text in each split and at least two training labels (else a
    UserError); empty texts among the rest are kept, with one DataWarning. `source` names the data in the messages
    (default: its name), `subset` says how it was cut (e.g. " (the --max-train 50 subset)"). A test split whose texts
    are 5% or more also training texts gives one DataWarning (a leaked test set)."""
    what = (source or f"'{data.name}'") + subset
    empty = {split: sum(1 for t in texts if not t.strip())
             for split, texts in (("training", data.train_texts), ("test", data.test_texts))}
    for split, texts in (("training", data.train_texts), ("test", data.test_texts)):
        if texts and empty[split] == len(texts):
            raise UserError(f"every {split} text of {what} is empty",
                            "check --text-column (it must name the column holding the text)")
    labels = np.unique(np.asarray(data.train_labels))
    if len(labels) == 1:
        label = int(labels[0])
        name = data.label_names[label] if 0 <= label < len(data.label_names) else label
        raise UserError(f"every training example of {what} has the same label ('{name}'), so there is nothing to "
                        "classify", "check --label-column, or use data with at least two labels")
    train_set = {t.strip() for t in data.train_texts if t.strip()}
    seen = sum(1 for t in data.test_texts if t.strip() and t.strip() in train_set)
    if data.test_texts and seen >= LEAK_WARNING_FRACTION * len(data.test_texts):
        warnings.warn(DataWarning(f"{seen} of {len(data.test_texts)} test examples of {what} also appear in its "
                                  "training split, so the test metric partly measures memorization: test on a "
                                  "held-out file"), stacklevel=2)
    total = empty["training"] + empty["test"]
    if total:
        n = len(data.train_texts) + len(data.test_texts)
        warnings.warn(DataWarning(f"{total} of {n} examples of {what} have an empty text ({empty['training']} "
                                  f"training, {empty['test']} test); they are kept as empty inputs: check "
                                  "--text-column, or fill in or remove those rows"), stacklevel=2)
