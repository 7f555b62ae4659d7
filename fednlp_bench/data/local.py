"""Load texts with labels from local files (.csv, .tsv, .jsonl, .json): text classification, and language-modelling
corpora (lm.py; the label column optional); the file readers the other families' loaders share."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import UserError
from .splits import NO_LABEL, TextClassificationData, encode_labels, seeded_split

SUPPORTED_EXTENSIONS = (".csv", ".tsv", ".jsonl", ".json")
_GENERIC_STEMS = {"train", "test", "dev", "valid", "validation", "data", "test-labeled", "all"}


def load_local(
    train_file: str,
    test_file: str | None,
    text_columns: list[str],
    label_column: str | None,
    test_fraction: float = 0.2,
    seed: int = 42,
    name: str | None = None,
) -> TextClassificationData:
    """Read train (and optionally test) files into a TextClassificationData.

    Several text columns are joined with a single space. Without a test file the train
    file is split at random (seeded) and `test_fraction` of its rows become the test set.
    """
    if isinstance(text_columns, str):
        text_columns = [text_columns]
    text_columns = list(text_columns)
    if not text_columns:
        raise UserError("no text column given", "name at least one text column, e.g. --text-column sentence")
    train_frame = _read_table(train_file, "--train-file")
    train_texts, train_raw = _extract(train_frame, train_file, text_columns, label_column)
    if test_file is not None:
        test_frame = _read_table(test_file, "--test-file")
        test_texts, test_raw = _extract(test_frame, test_file, text_columns, label_column)
        train_ids, test_ids, label_names = encode_labels(train_raw, test_raw)
    else:
        if not 0.0 < test_fraction < 1.0:
            raise UserError(
                f"test fraction must lie strictly between 0 and 1, got {test_fraction}",
                "pass e.g. --test-fraction 0.2, or give a separate --test-file",
            )
        train_idx, test_idx = seeded_split(len(train_texts), test_fraction, seed, train_file, "row")
        # Encode over the whole file so a rare class landing only in test is not an error.
        all_ids, _, label_names = encode_labels(train_raw, [])
        test_texts = [train_texts[i] for i in test_idx]
        test_ids = all_ids[test_idx]
        train_texts = [train_texts[i] for i in train_idx]
        train_ids = all_ids[train_idx]
    return TextClassificationData.create(
        name=name or _default_name(train_file),
        train_texts=train_texts,
        train_labels=train_ids,
        test_texts=test_texts,
        test_labels=test_ids,
        label_names=label_names,
    )


def _default_name(path: str) -> str:
    p = Path(path)
    stem = p.stem
    if stem.lower() in _GENERIC_STEMS and p.resolve().parent.name:
        return p.resolve().parent.name
    return stem


def _read_table(path: str, option: str) -> pd.DataFrame:
    """Read one data file into a DataFrame; every failure becomes a UserError."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"data file not found: {path}", f"check the path passed to {option}")
    if not p.is_file():
        raise UserError(f"data path is not a file: {path}", f"pass a file, not a folder, to {option}")
    ext = p.suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        raise UserError(
            f"unknown data file extension '{p.suffix or '(none)'}': {path}",
            "use one of " + ", ".join(SUPPORTED_EXTENSIONS),
        )
    if p.stat().st_size == 0:
        raise UserError(f"data file is empty: {path}", f"pass a file with a header and data rows to {option}")
    try:
        if ext in (".csv", ".tsv"):
            frame = pd.read_csv(
                p,
                sep="\t" if ext == ".tsv" else ",",
                quotechar='"',
                quoting=csv.QUOTE_MINIMAL,
                keep_default_na=False,
                dtype=str,
                encoding="utf-8",
            )
        else:
            frame = pd.DataFrame(_read_json_records(p, ext))
    except UserError:
        raise
    except pd.errors.EmptyDataError:
        raise UserError(f"data file is empty: {path}", f"pass a file with a header and data rows to {option}") from None
    except UnicodeDecodeError as e:
        raise UserError(f"data file is not UTF-8 text: {path} ({e.reason} at byte {e.start})", "save the file as UTF-8") from None
    except (pd.errors.ParserError, ValueError, csv.Error) as e:
        reason = " ".join(str(e).split())
        raise UserError(f"could not parse {path} ({reason})", f"check that the file is valid {ext[1:].upper()}") from None
    if len(frame) == 0:
        raise UserError(f"data file has no data rows: {path}", f"pass a file with data rows to {option}")
    return frame


def read_text_file(path: str, option: str, kind: str) -> str:
    """The whole text of a local data file (UTF-8, BOM dropped); a missing file, a folder or bad bytes is a
    UserError naming the file and the flag that passed it. `kind` names the expected file ("a CoNLL file")."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"data file not found: {path}", f"check the path passed to {option}")
    if not p.is_file():
        raise UserError(f"data path is not a file: {path}", f"pass {kind}, not a folder, to {option}")
    try:
        return p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"data file is not UTF-8 text: {path} ({e.reason} at byte {e.start})",
                        "save the file as UTF-8") from None


def _read_json_records(p: Path, ext: str) -> list[dict[str, Any]]:
    text = p.read_text(encoding="utf-8-sig")
    if not text.strip():
        raise UserError(f"data file is empty: {p}", "pass a file with records")
    if ext == ".jsonl":
        records = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise UserError(f"could not parse {p} line {lineno} ({e.msg})", "check that each line is one JSON object") from None
    else:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(f"could not parse {p} ({e.msg} at line {e.lineno})", "check that the file is valid JSON") from None
        if isinstance(obj, dict) and isinstance(obj.get("data"), list):
            records = obj["data"]
        elif isinstance(obj, list):
            records = obj
        else:
            raise UserError(
                f"unexpected JSON layout in {p}",
                'use a list of records, or an object {"data": [records]}',
            )
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise UserError(
                f"record {i + 1} of {p} is a {type(rec).__name__}, not an object",
                'write every record as {"column": value, ...}',
            )
    return records


def _cell_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value if isinstance(value, str) else str(value)


def _extract(frame: pd.DataFrame, path: str, text_columns: list[str],
             label_column: str | None) -> tuple[list[str], list[Any]]:
    """Joined texts and raw labels from a frame (label "all" everywhere when `label_column` is None, as for
    language modelling without a skew label); a missing column is a UserError."""
    have = [str(c) for c in frame.columns]
    missing = [c for c in [*text_columns, *([label_column] if label_column else [])] if c not in frame.columns]
    if missing:
        kind = "label column" if missing == [label_column] else "column"
        raise UserError(
            f"{kind}{'s' if len(missing) > 1 else ''} {', '.join(repr(c) for c in missing)} not in {path} "
            f"(it has: {', '.join(have)})",
            "pass the right names with --text-column / --label-column",
        )
    columns = [[_cell_text(v) for v in frame[c].tolist()] for c in text_columns]
    texts = columns[0] if len(columns) == 1 else [" ".join(p for p in parts if p) for parts in zip(*columns)]
    return texts, frame[label_column].tolist() if label_column else [NO_LABEL] * len(texts)
