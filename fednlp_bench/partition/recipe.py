"""A partition recipe (task, method, clients, alpha/beta, seed, ...) and the function that builds it.

Recipes are what canonical partitions (top-level partition/*.yaml) and exports record: the
same recipe on the same data gives the same digest on any machine.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..errors import UserError
from . import make_partition
from .model import Partition

METHODS = ("uniform", "label", "quantity", "cluster", "natural")


@dataclass
class PartitionRecipe:
    task: str = "demo"
    method: str = "uniform"
    clients: int | None = 10  # natural: keep the C largest ids (None = every id)
    alpha: float | None = None
    beta: float | None = None
    seed: int = 42
    k: int = 10  # cluster: number of K-means clusters
    embed_model: str | None = None  # cluster: 'minilm', a model folder, or None for TF-IDF + SVD
    merge_small: bool = False  # natural: pool ids beyond the C largest into one client
    data_dir: str | None = None
    max_train: int | None = None
    max_test: int | None = None
    local_train: str | None = None  # split files of the task's local folder other than the card's (a profile's)
    local_test: str | None = None
    expected_digest: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def validate(self) -> None:
        if self.method not in METHODS:
            raise UserError(f"unknown partition method '{self.method}'", f"choose one of: {', '.join(METHODS)}")
        if self.method in ("label", "cluster") and (self.alpha is None or not self.alpha > 0):
            raise UserError(f"{self.method} skew needs alpha > 0 (got {self.alpha})", "pass --alpha, e.g. 0.1")
        if self.method == "quantity" and (self.beta is None or not self.beta > 0):
            raise UserError(f"quantity skew needs beta > 0 (got {self.beta})", "pass --beta, e.g. 5")
        if self.method != "natural" and (self.clients is None or self.clients < 1):
            raise UserError(f"--clients must be a positive integer (got {self.clients})", "pass --clients 10 or more")


def load_recipe(path: str | Path) -> PartitionRecipe:
    """Read a recipe YAML (keys as in PartitionRecipe, dashes or underscores)."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text())
    except FileNotFoundError as exc:
        raise UserError(f"recipe not found: {p}", "check the path") from exc
    except yaml.YAMLError as exc:
        raise UserError(f"recipe {p} is not valid YAML", "fix its syntax") from exc
    known = {f.name for f in fields(PartitionRecipe)}
    if not isinstance(raw, dict) or not set(k.replace("-", "_") for k in raw) <= known:
        raise UserError(f"recipe {p} has unknown keys", f"use only: {', '.join(sorted(known))}")
    return PartitionRecipe(**{k.replace("-", "_"): v for k, v in raw.items()})


def load_recipe_data(recipe: PartitionRecipe):
    """The recipe's dataset (subsampled as it says), through the task registry."""
    from ..tasks.registry import load_task_data, subsample

    data = load_task_data(recipe.task, recipe.data_dir, seed=recipe.seed, local_train=recipe.local_train,
                          local_test=recipe.local_test)
    return subsample(data, recipe.max_train, recipe.max_test, recipe.seed)


def build_partition(recipe: PartitionRecipe, data, progress: bool = False) -> tuple[Partition, dict[str, np.ndarray]]:
    """Partition train and test of `data` by the recipe (each split separately, same seed).

    Returns the partition and, per split, the labels its skew is over (class ids, or cluster ids
    for feature skew), for statistics.
    """
    recipe.validate()
    params = {k: v for k, v in recipe.to_dict().items() if k in ("alpha", "beta", "seed", "k", "embed_model")}
    if recipe.method == "natural":
        return _natural(recipe, data), {"train": data.train_labels, "test": data.test_labels}
    if recipe.method == "cluster":
        from .feature_skew import assign_clusters, embed_splits, fit_clusters

        tr_emb, te_emb = embed_splits(data.train_texts, data.test_texts, model=recipe.embed_model, seed=recipe.seed,
                                      progress=progress)
        km = fit_clusters(tr_emb, recipe.k, recipe.seed)  # test examples take the train centroids
        labels = {"train": assign_clusters(km, tr_emb), "test": assign_clusters(km, te_emb)}
        method = "label"
    else:
        labels = {"train": data.train_labels, "test": data.test_labels}
        method = recipe.method
    parts = {}
    for split, lab in labels.items():
        if recipe.clients > len(lab):
            raise UserError(f"the {split} split has {len(lab)} examples, too few for {recipe.clients} clients",
                            f"use at most {len(lab)} clients (--clients)")
        parts[split] = make_partition(method, np.asarray(lab), recipe.clients, recipe.seed, recipe.alpha, recipe.beta)
    return Partition(recipe.method, parts["train"], parts["test"], params), labels


def _natural(recipe: PartitionRecipe, data) -> Partition:
    from .natural import natural_partition

    if not data.train_groups:
        raise UserError(f"task '{recipe.task}' has no natural client id", "use a task with one (e.g. multidomain_sentiment)")
    train, names = natural_partition(np.asarray(data.train_groups), max_clients=recipe.clients,
                                     merge_small=recipe.merge_small)
    kept = set(names)
    test_groups = np.asarray(data.test_groups or [])
    merged = np.isin(test_groups, list(kept), invert=True)
    test = []
    for name in names:
        mask = merged if name == "__merged__" else (test_groups == name)
        test.append(np.flatnonzero(mask).astype(np.int64))
    return Partition("natural", train, test, {"id_column": "domain", "client_names": names, "seed": recipe.seed})
