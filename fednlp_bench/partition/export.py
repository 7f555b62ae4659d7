"""Export a client partition to a folder, in one of several formats, with a manifest.

Formats:

* ``index-json``: partition.json = {"train": {"0": [ids], ...}, "test": {...}}.
* ``index-parquet``: train.parquet and test.parquet, columns client_id, example_id (int64).
* ``shards-parquet`` / ``shards-jsonl``: one data file per client and split
  (train/client_00000.parquet, test/...), rows = example_id, text, label, label_name, plus
  the family's own columns (tagging: tokens, tags; QA: id, question, context, answers;
  seq2seq: source, target; label is then the skew label); each loads with
  ``datasets.load_dataset("parquet" | "json", data_files=...)``.
* ``fednlp-h5``: partition_index.h5 in FedNLP's key layout, plus data.h5 when the
  dataset is given. Test ids are offset by num_train in these files (see
  :mod:`fednlp_bench.partition.fednlp_h5`).

Every export writes manifest.json last, into a temporary sibling folder that is renamed
into place only when everything was written, so no half-written export is ever left.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from .fednlp_h5 import DATA_FILE, PARTITION_FILE, write_data_h5, write_partition_index
from .manifest import build_manifest, write_manifest
from .model import Partition

FORMATS = ("index-json", "index-parquet", "shards-parquet", "shards-jsonl", "fednlp-h5")
SHARD_FORMATS = ("shards-parquet", "shards-jsonl")


def shard_name(client: int, ext: str) -> str:
    """File name of one client's shard, e.g. client_00007.parquet."""
    return f"client_{client:05d}.{ext}"


def _dataset_info(partition: Partition, data: Any, dataset_info: dict[str, Any] | None) -> dict[str, Any]:
    info: dict[str, Any] = {"name": None, "fingerprint": None, "num_train": None, "num_test": None}
    if data is not None:
        info.update(name=data.name, fingerprint=data.fingerprint,
                    num_train=len(data.train_texts), num_test=len(data.test_texts))
    if dataset_info:
        info.update({k: v for k, v in dataset_info.items() if v is not None})
    return info


def _check_ids(partition: Partition, info: dict[str, Any]) -> None:
    if len(partition.train) != len(partition.test):
        raise UserError(
            f"partition has {len(partition.train)} train clients but {len(partition.test)} test clients",
            "build train and test partitions with the same number of clients",
        )
    for split, parts in (("train", partition.train), ("test", partition.test)):
        size = info.get(f"num_{split}")
        for ids in parts:
            ids = np.asarray(ids)
            if ids.size and (ids.min() < 0 or (size is not None and ids.max() >= size)):
                bad = int(ids.min()) if ids.min() < 0 else int(ids.max())
                raise UserError(
                    f"{split} id {bad} is out of range for a {split} split of {size} examples",
                    "export the partition with the dataset it was made for",
                )


def _write_index_json(partition: Partition, tmp: Path) -> list[str]:
    doc = {
        split: {str(c): [int(i) for i in np.asarray(ids).reshape(-1)] for c, ids in enumerate(parts)}
        for split, parts in (("train", partition.train), ("test", partition.test))
    }
    (tmp / "partition.json").write_text(json.dumps(doc) + "\n", encoding="utf-8")
    return ["partition.json"]


def _write_index_parquet(partition: Partition, tmp: Path) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = []
    for split, parts in (("train", partition.train), ("test", partition.test)):
        ids = [np.asarray(p, dtype=np.int64).reshape(-1) for p in parts]
        client = np.repeat(np.arange(len(ids), dtype=np.int64), [len(p) for p in ids])
        example = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        table = pa.table({"client_id": pa.array(client, pa.int64()),
                          "example_id": pa.array(example, pa.int64())})
        pq.write_table(table, tmp / f"{split}.parquet")
        files.append(f"{split}.parquet")
    return files


def _rows(data: Any, split: str, ids: np.ndarray) -> dict[str, list[Any]]:
    texts = data.train_texts if split == "train" else data.test_texts
    labels = np.asarray(data.train_labels if split == "train" else data.test_labels)
    names = list(data.label_names)
    rows = {
        "example_id": [int(i) for i in ids],
        "text": [texts[int(i)] for i in ids],
        "label": [int(labels[int(i)]) for i in ids],
        "label_name": [names[int(labels[int(i)])] for i in ids],
    }
    if hasattr(data, "export_fields"):  # tagging, QA, seq2seq: the family's own columns (label = the skew label)
        rows.update(data.export_fields(split, ids))
    return rows


def _arrow_schema(data: Any):
    """Shard schema: the common columns plus the family's own, typed so every shard (even an empty one) agrees."""
    import pyarrow as pa

    fields = [("example_id", pa.int64()), ("text", pa.string()), ("label", pa.int64()), ("label_name", pa.string())]
    extra = {"tokens": pa.list_(pa.string()), "tags": pa.list_(pa.string()), "id": pa.string(),
             "question": pa.string(), "context": pa.string(), "source": pa.string(), "target": pa.string(),
             "answers": pa.list_(pa.struct([("text", pa.string()), ("answer_start", pa.int64())]))}
    if hasattr(data, "export_fields"):
        fields += [(k, extra[k]) for k in data.export_fields("train", [])]
    return pa.schema(fields)


def _write_shards(partition: Partition, tmp: Path, fmt: str, data: Any) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _arrow_schema(data)
    ext = "parquet" if fmt == "shards-parquet" else "jsonl"
    files = []
    for split, parts in (("train", partition.train), ("test", partition.test)):
        (tmp / split).mkdir()
        for c, ids in enumerate(parts):
            rows = _rows(data, split, np.asarray(ids, dtype=np.int64).reshape(-1))
            rel = f"{split}/{shard_name(c, ext)}"
            if ext == "parquet":
                pq.write_table(pa.table(rows, schema=schema), tmp / rel)
            else:
                with open(tmp / rel, "w", encoding="utf-8") as f:
                    for i in range(len(rows["example_id"])):
                        f.write(json.dumps({k: v[i] for k, v in rows.items()}, ensure_ascii=False) + "\n")
            files.append(rel)
    return files


def _write_fednlp(partition: Partition, tmp: Path, data: Any, info: dict[str, Any]) -> list[str]:
    num_train = info.get("num_train")
    if num_train is None:  # no dataset: the train split is taken to be exactly the ids used
        num_train = max((int(np.max(t)) for t in partition.train if np.size(t)), default=-1) + 1
        info["num_train"] = num_train
    write_partition_index(tmp / PARTITION_FILE, partition.name, partition.train, partition.test,
                          int(num_train), partition.params)
    files = [PARTITION_FILE]
    if data is not None:
        write_data_h5(tmp / DATA_FILE, data)
        files.append(DATA_FILE)
    return files


def _prepare_target(folder: Path, overwrite: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise UserError(f"export path {folder} is a file", "choose a folder path for --output")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise UserError(f"export folder {folder} exists and is not empty",
                        "pass --overwrite or choose another --output")


def export_partition(
    partition: Partition,
    folder: str | Path,
    fmt: str,
    data: Any = None,
    overwrite: bool = False,
    dataset_info: dict[str, Any] | None = None,
) -> Path:
    """Export ``partition`` into ``folder`` as ``fmt`` (one of FORMATS) and return the folder.

    data: the TextClassificationData the partition indexes (needed for shard formats,
    optional for fednlp-h5, where it adds data.h5). dataset_info overrides/supplies
    name, fingerprint, num_train, num_test for the manifest.
    """
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}", f"use one of: {', '.join(FORMATS)}")
    if fmt in SHARD_FORMATS and data is None:
        raise UserError("shard export needs the dataset", "pass --task")
    folder = Path(folder).absolute()
    _prepare_target(folder, overwrite)
    info = _dataset_info(partition, data, dataset_info)
    _check_ids(partition, info)

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        if fmt == "index-json":
            files = _write_index_json(partition, tmp)
        elif fmt == "index-parquet":
            files = _write_index_parquet(partition, tmp)
        elif fmt in SHARD_FORMATS:
            files = _write_shards(partition, tmp, fmt, data)
        else:
            files = _write_fednlp(partition, tmp, data, info)
        write_manifest(tmp, build_manifest(partition, info, fmt, files, root=tmp))
        _swap_into_place(tmp, folder, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _swap_into_place(tmp: Path, folder: Path, overwrite: bool) -> None:
    """Rename tmp to folder; an existing folder is moved aside first and removed after."""
    _prepare_target(folder, overwrite)  # re-check: something may have appeared meanwhile
    old = None
    if folder.exists():
        old = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
        folder.rename(old)
    try:
        tmp.rename(folder)
    except BaseException:
        if old is not None:
            old.rename(folder)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
