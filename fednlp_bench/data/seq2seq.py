"""The in-memory form of a sequence-to-sequence dataset (summarisation, headlines, dialogue) and its loaders.

Sources and targets come from local files (.csv, .tsv, .jsonl, .json: a JSON list, {"data": [...]} or JSON
lines) or from the Hugging Face Hub. `train_texts` / `test_texts` are the *source* texts: they are what a
client holds and what feature-skew (cluster) partitions embed; the targets are a function of the source.
The label-skew label is uniform (every example 0, label name "all"): seq2seq data has no class, so label-skew
partitions degenerate to uniform ones and a non-IID split should use feature (cluster) skew.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import UserError
from .splits import seeded_split
from .local import _default_name, _read_table

DEFAULT_SOURCE_COLUMN = "source"
DEFAULT_TARGET_COLUMN = "target"
UNIFORM_LABEL = "all"

# (source column, target column) of well-known Hub datasets, used when no columns are given.
HUB_COLUMNS: dict[str, tuple[str, str]] = {
    "gigaword": ("document", "summary"),
    "Harvard/gigaword": ("document", "summary"),
    "xsum": ("document", "summary"),
    "EdinburghNLP/xsum": ("document", "summary"),
    "cnn_dailymail": ("article", "highlights"),
    "abisee/cnn_dailymail": ("article", "highlights"),
    "samsum": ("dialogue", "summary"),
    "Samsung/samsum": ("dialogue", "summary"),
    "ag_news": ("description", "title"),
}


@dataclass
class Seq2SeqData:
    """Train and test splits of source/target text pairs. `train_texts` are the sources."""

    name: str
    train_texts: list[str]  # source text per example
    train_targets: list[str]
    test_texts: list[str]
    test_targets: list[str]
    fingerprint: str = ""  # sha256 hex of sources, targets and labels of both splits
    train_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # uniform skew label (all 0)
    test_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    label_names: list[str] = field(default_factory=lambda: [UNIFORM_LABEL])
    train_groups: list[str] | None = None  # natural client id per example, when known
    test_groups: list[str] | None = None

    def __post_init__(self) -> None:
        for split, texts, targets in (("train", self.train_texts, self.train_targets),
                                      ("test", self.test_texts, self.test_targets)):
            if len(texts) != len(targets):
                raise ValueError(f"{split}: {len(texts)} sources but {len(targets)} targets")
        if len(self.train_labels) != len(self.train_texts):
            self.train_labels = np.zeros(len(self.train_texts), np.int64)
        if len(self.test_labels) != len(self.test_texts):
            self.test_labels = np.zeros(len(self.test_texts), np.int64)
        self.train_labels = np.asarray(self.train_labels, np.int64)
        self.test_labels = np.asarray(self.test_labels, np.int64)
        if not self.fingerprint:
            self.fingerprint = seq2seq_fingerprint(self)

    @classmethod
    def create(
        cls,
        name: str,
        train_sources: Sequence[str],
        train_targets: Sequence[str],
        test_sources: Sequence[str],
        test_targets: Sequence[str],
    ) -> "Seq2SeqData":
        """Build the dataset (uniform skew labels), computing the fingerprint."""
        return cls(
            name=name,
            train_texts=[str(t) for t in train_sources],
            train_targets=[str(t) for t in train_targets],
            test_texts=[str(t) for t in test_sources],
            test_targets=[str(t) for t in test_targets],
        )

    @property
    def train_sources(self) -> list[str]:
        return self.train_texts

    @property
    def test_sources(self) -> list[str]:
        return self.test_texts

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    FEDNLP_TASK_TYPE = "seq2seq"

    def export_fields(self, split: str, ids: Sequence[int]) -> dict[str, list]:
        """Full-fidelity columns of some examples for partition export: source and target text."""
        src, tgt = (self.train_texts, self.train_targets) if split == "train" else (self.test_texts, self.test_targets)
        return {"source": [src[int(i)] for i in ids], "target": [tgt[int(i)] for i in ids]}

    def subset(self, train_idx: np.ndarray, test_idx: np.ndarray) -> "Seq2SeqData":
        """The examples at the given ids of each split (fingerprint recomputed)."""
        tr = np.asarray(train_idx, np.int64).reshape(-1)
        te = np.asarray(test_idx, np.int64).reshape(-1)
        return Seq2SeqData(
            name=self.name,
            train_texts=[self.train_texts[i] for i in tr],
            train_targets=[self.train_targets[i] for i in tr],
            test_texts=[self.test_texts[i] for i in te],
            test_targets=[self.test_targets[i] for i in te],
            train_labels=self.train_labels[tr],
            test_labels=self.test_labels[te],
            label_names=list(self.label_names),
            train_groups=[self.train_groups[i] for i in tr] if self.train_groups else None,
            test_groups=[self.test_groups[i] for i in te] if self.test_groups else None,
        )

    def summary(self) -> str:
        """One line: name, sizes, mean source/target words and a short fingerprint."""

        def words(texts: list[str]) -> float:
            return float(np.mean([len(t.split()) for t in texts])) if texts else 0.0

        return (
            f"{self.name}: {len(self.train_texts)} train / {len(self.test_texts)} test source/target pairs, "
            f"{words(self.train_texts):.0f} source / {words(self.train_targets):.0f} target words on average "
            f"(train), fingerprint {self.fingerprint[:12]}"
        )


def seq2seq_fingerprint(data: Seq2SeqData) -> str:
    """SHA-256 hex of every source, target, skew label, label name and group of both splits (length-prefixed)."""
    h = hashlib.sha256()

    def put(raw: bytes) -> None:
        h.update(struct.pack("<Q", len(raw)))
        h.update(raw)

    put(b"seq2seq/v1")
    for texts, targets, labels, groups in (
        (data.train_texts, data.train_targets, data.train_labels, data.train_groups),
        (data.test_texts, data.test_targets, data.test_labels, data.test_groups),
    ):
        put(struct.pack("<Q", len(texts)))
        for src, tgt in zip(texts, targets):
            put(src.encode("utf-8"))
            put(tgt.encode("utf-8"))
        put(np.asarray(labels, dtype="<i8").tobytes())
        put(b"\x01" if groups else b"\x00")
        for g in groups or []:
            put(str(g).encode("utf-8"))
    put(struct.pack("<Q", len(data.label_names)))
    for label in data.label_names:
        put(str(label).encode("utf-8"))
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------- helpers


def _columns(columns: list[str] | str | None, target_column: str | None,
             default: tuple[str, str] = (DEFAULT_SOURCE_COLUMN, DEFAULT_TARGET_COLUMN)) -> tuple[list[str], str]:
    if isinstance(columns, str):
        columns = [columns]
    sources = list(columns) if columns else [default[0]]
    return sources, target_column or default[1]


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value if isinstance(value, str) else str(value)


def _pairs(
    table: dict[str, list[Any]],
    have: list[str],
    where: str,
    unit: str,
    source_columns: list[str],
    target_column: str,
    option_hint: str,
) -> tuple[list[str], list[str]]:
    """Sources (several columns joined with a space) and targets; missing columns and empty cells are UserErrors."""
    missing = [c for c in [*source_columns, target_column] if c not in have]
    if missing:
        kind = "target column" if missing == [target_column] else "column"
        raise UserError(
            f"{kind}{'s' if len(missing) > 1 else ''} {', '.join(repr(c) for c in missing)} not in {where} "
            f"(it has: {', '.join(have) or 'no columns'})",
            f"pass the right names with {option_hint}",
        )
    cols = [[_cell(v) for v in table[c]] for c in source_columns]
    sources = cols[0] if len(cols) == 1 else [" ".join(p for p in parts if p) for parts in zip(*cols)]
    targets = [_cell(v) for v in table[target_column]]
    for i, (src, tgt) in enumerate(zip(sources, targets)):
        if not tgt.strip():
            raise UserError(
                f"{where} {unit} {i + 1} has an empty target (column '{target_column}')",
                "fill in the target for every example or drop that row",
            )
        if not src.strip():
            raise UserError(
                f"{where} {unit} {i + 1} has an empty source (column{'s' if len(source_columns) > 1 else ''} "
                f"{', '.join(repr(c) for c in source_columns)})",
                "fill in the source text for every example or drop that row",
            )
    return sources, targets


def _read_file(path: str, option: str):
    """The file as a DataFrame (local.py's reader); a .json file holding JSON lines is read as JSON lines."""
    p = Path(path)
    try:
        return _read_table(path, option)
    except UserError as err:
        if p.suffix.lower() != ".json" or not str(err).startswith("could not parse"):
            raise
    from .local import _read_json_records
    import pandas as pd

    frame = pd.DataFrame(_read_json_records(p, ".jsonl"))
    if len(frame) == 0:
        raise UserError(f"data file has no data rows: {path}", f"pass a file with data rows to {option}")
    return frame


def _file_pairs(path: str, option: str, sources: list[str], target: str) -> tuple[list[str], list[str]]:
    frame = _read_file(path, option)
    unit = "record" if Path(path).suffix.lower() in (".jsonl", ".json") else "row"
    table = {str(c): frame[c].tolist() for c in frame.columns}
    return _pairs(table, list(table), path, unit, sources, target, "--text-column (source) / --target-column")


# ----------------------------------------------------------------------------------------------- loaders


def load_seq2seq_local(
    train_path: str,
    test_path: str | None,
    columns: list[str] | None,
    target_column: str | None,
    *,
    test_fraction: float = 0.2,
    seed: int = 42,
    name: str = "seq2seq",
    **options: Any,
) -> Seq2SeqData:
    """Source/target pairs from local files (.csv, .tsv, .jsonl, .json).

    `columns` names the source column (default "source"; several are joined with a space), `target_column`
    the target (default "target"). Without `test_path` the train file is split at random (seeded).
    `options` (the adapter's options) are accepted and not used here.
    """
    sources, target = _columns(columns, target_column)
    train_src, train_tgt = _file_pairs(train_path, "--train-file", sources, target)
    if test_path is not None:
        test_src, test_tgt = _file_pairs(test_path, "--test-file", sources, target)
    else:
        tr, te = seeded_split(len(train_src), test_fraction, seed, train_path, "row")
        test_src, test_tgt = [train_src[i] for i in te], [train_tgt[i] for i in te]
        train_src, train_tgt = [train_src[i] for i in tr], [train_tgt[i] for i in tr]
    return Seq2SeqData.create(name or _default_name(train_path), train_src, train_tgt, test_src, test_tgt)


def _one_line(exc: BaseException, limit: int = 200) -> str:
    reason = " ".join(f"{type(exc).__name__}: {exc}".split())
    return reason if len(reason) <= limit else reason[: limit - 3] + "..."


def load_seq2seq_hub(
    hub_name: str,
    config_name: str | None,
    columns: list[str] | None,
    target_column: str | None,
    *,
    train_split: str = "train",
    test_split: str | None = "test",
    name: str | None = None,
    cache_dir: str | None = None,
    test_fraction: float = 0.2,
    seed: int = 42,
    **options: Any,
) -> Seq2SeqData:
    """Load `hub_name` (optionally `config_name`) through datasets.load_dataset, then `seq2seq_from_hub`.

    Known datasets (gigaword, xsum, cnn_dailymail, samsum, ag_news) get their source/target columns by default.
    """
    shown = hub_name if config_name is None else f"{hub_name}/{config_name}"
    try:
        import datasets

        dsd = datasets.load_dataset(hub_name, config_name, cache_dir=cache_dir)
    except Exception as e:  # no network, no cache, unknown name, broken script ...
        raise UserError(
            f"could not load Hugging Face dataset '{shown}' ({_one_line(e)})",
            "connect to the network once to fill the cache, or use local files with --train-file",
        ) from None
    return seq2seq_from_hub(dsd, shown, columns, target_column, train_split=train_split, test_split=test_split,
                            name=name or shown, test_fraction=test_fraction, seed=seed)


def seq2seq_from_hub(
    dsd: Any,
    shown: str,
    columns: list[str] | None,
    target_column: str | None,
    *,
    train_split: str = "train",
    test_split: str | None = "test",
    name: str | None = None,
    test_fraction: float = 0.2,
    seed: int = 42,
) -> Seq2SeqData:
    """Convert a DatasetDict (or a mapping split -> datasets.Dataset) into Seq2SeqData."""
    base = shown.split("/")
    default = HUB_COLUMNS.get(shown) or HUB_COLUMNS.get("/".join(base[:2])) or HUB_COLUMNS.get(base[0]) \
        or (DEFAULT_SOURCE_COLUMN, DEFAULT_TARGET_COLUMN)
    sources, target = _columns(columns, target_column, default)
    available = list(dsd.keys()) if hasattr(dsd, "keys") else []
    for split in [train_split] + ([test_split] if test_split is not None else []):
        if split not in available:
            raise UserError(
                f"Hugging Face dataset '{shown}' has no split '{split}' (it has: {', '.join(available) or 'none'})",
                "pass an existing split name for the train/test split",
            )

    def pairs(split: str) -> tuple[list[str], list[str]]:
        ds = dsd[split]
        have = list(ds.column_names)
        table = {c: list(ds[c]) for c in [*sources, target] if c in have}
        return _pairs(table, have, f"Hugging Face dataset '{shown}' split '{split}'", "example", sources, target,
                      "--text-column (source) / --target-column")

    train_src, train_tgt = pairs(train_split)
    if test_split is not None:
        test_src, test_tgt = pairs(test_split)
    else:
        tr, te = seeded_split(len(train_src), test_fraction, seed, f"'{shown}' split '{train_split}'")
        test_src, test_tgt = [train_src[i] for i in te], [train_tgt[i] for i in te]
        train_src, train_tgt = [train_src[i] for i in tr], [train_tgt[i] for i in tr]
    return Seq2SeqData.create(name or shown, train_src, train_tgt, test_src, test_tgt)


# The registry calls every family through these two names (tasks/registry.py: family_loaders).
LOCAL_LOADER = load_seq2seq_local
HUB_LOADER = load_seq2seq_hub
