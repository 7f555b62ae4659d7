"""Datasets stored one folder per domain (e.g. multi-domain sentiment): the domain is a natural client id."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import UserError
from .local import load_local
from .splits import TextClassificationData, data_fingerprint


def load_domains(
    folder: str,
    text_columns: list[str],
    label_column: str,
    train_name: str = "train.tsv",
    test_name: str = "dev.tsv",
    domains: list[str] | None = None,
    name: str = "multidomain",
) -> TextClassificationData:
    """Concatenate `<folder>/<domain>/{train,test}` files; each example keeps its domain in *_groups."""
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"data folder not found: {root}", "point --data-dir at the folder holding one folder per domain")
    found = sorted(d.name for d in root.iterdir() if (d / train_name).is_file())
    domains = domains or found
    if not domains:
        raise UserError(f"no domain folders with {train_name} under {root}", "point --data-dir at the parent of the domain folders")
    missing = [d for d in domains if d not in found]
    if missing:
        raise UserError(f"domain(s) {', '.join(missing)} not found under {root}", f"choose from: {', '.join(found)}")
    parts = [load_local(str(root / d / train_name), str(root / d / test_name), text_columns, label_column, name=d)
             for d in domains]
    names = parts[0].label_names
    for d, p in zip(domains, parts):
        if p.label_names != names:
            raise UserError(f"domain '{d}' has labels {p.label_names}, others {names}", "give every domain the same label set")
    train_texts = [t for p in parts for t in p.train_texts]
    test_texts = [t for p in parts for t in p.test_texts]
    train_labels = np.concatenate([p.train_labels for p in parts])
    test_labels = np.concatenate([p.test_labels for p in parts])
    train_groups = [d for d, p in zip(domains, parts) for _ in p.train_texts]
    test_groups = [d for d, p in zip(domains, parts) for _ in p.test_texts]
    data = TextClassificationData.create(name, train_texts, train_labels, test_texts, test_labels, names)
    data = replace(data, train_groups=train_groups, test_groups=test_groups)
    return replace(data, fingerprint=data_fingerprint(data))
