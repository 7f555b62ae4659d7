"""Import a client partition: an export folder (with manifest.json) or a FedNLP partition_index.h5.

Export folders are verified: every file's sha256 must match the manifest and the
partition read back must have the manifest's digest. FedNLP files are matched by
method name with numbers compared as floats (``alpha=1`` == ``alpha=1.0``); their test
ids are global (offset by num_train) and are shifted back to split-local ids.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from .export import SHARD_FORMATS, shard_name
from .fednlp_h5 import PARTITION_FILE, method_params, read_data_h5, read_partition_index, same_method
from .manifest import MANIFEST_FILE, check_files, read_manifest, recipe_params
from .model import Partition

__all__ = ["import_partition", "read_fednlp_data_h5"]


def read_fednlp_data_h5(path: str | Path) -> dict[str, Any]:
    """Read FedNLP's data.h5: the parsed ``attributes`` JSON plus "X" and "Y" lists (by index_list)."""
    path = Path(path)
    if path.is_dir():
        path = path / "data.h5"
    if not path.is_file():
        raise UserError(f"{path} not found", "pass the path of a data.h5 file")
    return read_data_h5(path)


def import_partition(path: str | Path, method: str | None = None, num_train: int | None = None) -> Partition:
    """Load a partition from an export folder or a FedNLP partition_index.h5 (file or folder).

    method: the FedNLP method name to pick from a partition_index.h5 (needed when it holds
    several). num_train: size of the train split, to undo FedNLP's test-id offset when the
    file does not record it.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"partition path {path} does not exist", "pass an export folder or a partition_index.h5")
    if path.is_file() and path.name == MANIFEST_FILE:
        path = path.parent
    if path.is_dir() and (path / MANIFEST_FILE).is_file():
        return _import_export(path, method, num_train)
    if path.is_dir() and (path / PARTITION_FILE).is_file():
        path = path / PARTITION_FILE
    if path.is_file():
        return _import_fednlp(path, method, num_train)
    raise UserError(
        f"no partition found at {path} (no {MANIFEST_FILE} or {PARTITION_FILE})",
        "pass an export folder or a FedNLP partition_index.h5",
    )


def _import_fednlp(path: Path, method: str | None, num_train: int | None) -> Partition:
    group = read_partition_index(path, method, num_train)
    kind, params = method_params(group["name"])
    for key in ("alpha", "beta"):
        if key in group and key not in params and kind in ("label", "quantity", "cluster"):
            params[key] = group[key]
    return Partition(method=kind, train=group["train"], test=group["test"], params=params)


def _import_export(folder: Path, method: str | None, num_train: int | None) -> Partition:
    manifest = read_manifest(folder)
    check_files(folder, manifest)
    name = str(manifest["partition_name"])
    if method is not None and not same_method(method, name):
        raise UserError(
            f"{folder} holds partition {name!r}, not {method!r}",
            "pass the matching method name or another folder",
        )
    recipe = manifest["recipe"]
    clients = int(recipe.get("clients", 0))
    fmt = manifest["format"]
    if fmt == "index-json":
        train, test = _read_index_json(folder, clients)
    elif fmt == "index-parquet":
        train = _read_index_parquet(folder / "train.parquet", clients)
        test = _read_index_parquet(folder / "test.parquet", clients)
    elif fmt in SHARD_FORMATS:
        train, test = _read_shards(folder, fmt, clients)
    elif fmt == "fednlp-h5":
        known = manifest.get("dataset", {}).get("num_train")
        group = read_partition_index(folder / PARTITION_FILE, name, known if known is not None else num_train)
        train, test = group["train"], group["test"]
    else:
        raise UserError(f"{folder}: unknown export format {fmt!r}", "re-export the partition with this version")
    kind, params = recipe_params(recipe)
    partition = Partition(method=kind, train=train, test=test, params=params)
    if partition.digest != manifest["digest"]:
        raise UserError(f"{folder}: manifest digest does not match its files", "re-export the partition")
    return partition


def _bad(path: Path, exc: Exception) -> UserError:
    return UserError(f"cannot read {path} ({exc})", "re-export the partition")


def _read_index_json(folder: Path, clients: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    path = folder / "partition.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        out = []
        for split in ("train", "test"):
            block = doc[split]
            out.append([np.asarray(block.get(str(c), []), dtype=np.int64).reshape(-1) for c in range(clients)])
            extra = set(block) - {str(c) for c in range(clients)}
            if extra:
                raise UserError(f"{path}: unexpected client ids {sorted(extra)[:5]}", "re-export the partition")
    except UserError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _bad(path, exc) from exc
    return out[0], out[1]


def _read_index_parquet(path: Path, clients: int) -> list[np.ndarray]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=["client_id", "example_id"])
    except Exception as exc:  # pyarrow raises several unrelated types
        raise _bad(path, exc) from exc
    client = table.column("client_id").to_numpy().astype(np.int64)
    example = table.column("example_id").to_numpy().astype(np.int64)
    if client.size and (client.min() < 0 or client.max() >= clients):
        raise UserError(f"{path}: client_id outside 0..{clients - 1}", "re-export the partition")
    order = np.argsort(client, kind="stable")
    bounds = np.searchsorted(client[order], np.arange(clients + 1))
    return [example[order[bounds[c]:bounds[c + 1]]] for c in range(clients)]


def _read_shards(folder: Path, fmt: str, clients: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    import pyarrow.parquet as pq

    ext = "parquet" if fmt == "shards-parquet" else "jsonl"
    out: list[list[np.ndarray]] = []
    for split in ("train", "test"):
        parts = []
        for c in range(clients):
            path = folder / split / shard_name(c, ext)
            try:
                if ext == "parquet":
                    ids = pq.read_table(path, columns=["example_id"]).column("example_id").to_pylist()
                else:
                    with open(path, encoding="utf-8") as f:
                        ids = [json.loads(line)["example_id"] for line in f if line.strip()]
            except Exception as exc:  # missing file, bad parquet or JSON
                raise _bad(path, exc) from exc
            parts.append(np.asarray(ids, dtype=np.int64).reshape(-1))
        out.append(parts)
    return out[0], out[1]
