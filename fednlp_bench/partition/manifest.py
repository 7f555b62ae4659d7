"""The manifest.json written next to every exported partition.

It records the recipe that made the partition, the dataset it belongs to, the
partition's digests and the sha256 of every file, so an import can prove that the
files are the ones that were exported.
"""

from __future__ import annotations

import hashlib
import json
import numbers
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import fednlp_bench

from ..errors import UserError
from .model import Partition

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1
RECIPE_BASE_KEYS = ("dataset", "splits", "method", "clients")


def sha256_file(path: Path) -> str:
    """sha256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _plain(value: Any) -> Any:
    """Turn numpy scalars/arrays (and containers of them) into JSON-ready Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def build_manifest(
    partition: Partition,
    dataset: dict[str, Any],
    fmt: str,
    files: Sequence[str],
    root: str | Path | None = None,
) -> dict[str, Any]:
    """Build the manifest dict for an exported partition.

    dataset: {"name", "fingerprint", "num_train", "num_test"} (optional "splits").
    files: paths relative to ``root`` (the export folder); each is hashed.
    """
    params = _plain(dict(partition.params))
    recipe: dict[str, Any] = {
        "dataset": dataset.get("name"),
        "splits": list(dataset.get("splits") or ["train", "test"]),
        "method": partition.method,
        "clients": partition.num_clients,
        "seed": params.pop("seed", None),
    }
    for key, value in params.items():
        if key in RECIPE_BASE_KEYS:
            raise ValueError(f"partition parameter {key!r} clashes with a recipe key")
        recipe[key] = value
    base = Path(root) if root is not None else Path(".")
    return {
        "manifest_version": MANIFEST_VERSION,
        "package_version": fednlp_bench.__version__,
        "recipe": recipe,
        "dataset": {k: _plain(dataset.get(k)) for k in ("name", "fingerprint", "num_train", "num_test")},
        "digest": partition.digest,
        "train_digest": partition.train_digest,
        "test_digest": partition.test_digest,
        "partition_name": partition.name,
        "format": fmt,
        "files": {Path(f).as_posix(): sha256_file(base / f) for f in files},
    }


def recipe_params(recipe: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Recover (Partition.method, Partition.params) from a manifest recipe."""
    params = {k: v for k, v in recipe.items() if k not in RECIPE_BASE_KEYS}
    if params.get("seed") is None:
        params.pop("seed", None)
    return str(recipe.get("method")), params


def write_manifest(folder: str | Path, manifest: dict[str, Any]) -> Path:
    """Write folder/manifest.json (sorted keys, indent 2) and return its path."""
    path = Path(folder) / MANIFEST_FILE
    path.write_text(json.dumps(manifest, sort_keys=True, indent=2) + "\n", encoding="utf-8")
    return path


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """Read and sanity-check folder/manifest.json."""
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise UserError(f"{path} not found", "point to a folder written by the partition export")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read {path} ({exc})", "re-export the partition") from exc
    if not isinstance(manifest, dict):
        raise UserError(f"{path} is not a JSON object", "re-export the partition")
    version = manifest.get("manifest_version")
    if version != MANIFEST_VERSION:
        raise UserError(
            f"{path} has manifest_version {version!r}, this version reads {MANIFEST_VERSION}",
            "re-export the partition with this version of fednlp-bench",
        )
    for key in ("recipe", "dataset", "digest", "format", "files", "partition_name"):
        if key not in manifest:
            raise UserError(f"{path} has no key {key!r}", "re-export the partition")
    return manifest


def check_files(folder: str | Path, manifest: dict[str, Any]) -> None:
    """Raise UserError when a file listed in the manifest is missing or its sha256 differs."""
    folder = Path(folder)
    for name, expected in sorted(manifest.get("files", {}).items()):
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise UserError(f"manifest lists a file outside its folder: {name}", "re-export the partition")
        path = folder / name
        if not path.is_file():
            raise UserError(f"file {path} listed in the manifest is missing", "re-export the partition")
        if sha256_file(path) != expected:
            raise UserError(f"file {path} does not match its manifest (sha256 differs)", "re-export the partition")
