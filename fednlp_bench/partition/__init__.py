"""Client partitions: uniform, label skew (Dirichlet alpha) and quantity skew (Dirichlet beta) by `make_partition`
(`partition_name`: FedNLP's name for them); feature skew and natural ids (feature_skew.py, natural.py), recipes that
build any method, digests, statistics, plots, export/import (FedNLP's h5 too) and the `fednlp-bench partition` CLI."""

from __future__ import annotations

from typing import Callable

import numpy as np

from fednlp_bench.errors import UserError

from ._checks import check_clients, check_positive, check_seed
from .digest import partition_digest
from .iid import uniform_partition
from .label_skew import dirichlet_label_partition
from .quantity_skew import quantity_skew_partition
from .stats import client_label_histograms, mean_pairwise_jsd, size_stats

PARTITIONERS: dict[str, Callable[..., list[np.ndarray]]] = {
    "uniform": uniform_partition,
    "label": dirichlet_label_partition,
    "quantity": quantity_skew_partition,
}

__all__ = [
    "PARTITIONERS",
    "make_partition",
    "partition_name",
    "uniform_partition",
    "dirichlet_label_partition",
    "quantity_skew_partition",
    "partition_digest",
    "client_label_histograms",
    "mean_pairwise_jsd",
    "size_stats",
]


def _check_method(method: str) -> str:
    if method not in PARTITIONERS:
        raise UserError(
            f"unknown partition method {method!r}",
            f"use one of: {', '.join(sorted(PARTITIONERS))}",
        )
    return method


def make_partition(
    method: str,
    labels: np.ndarray,
    num_clients: int,
    seed: int,
    alpha: float | None = None,
    beta: float | None = None,
) -> list[np.ndarray]:
    """Partition ids 0..N-1 (N = len(labels)) into num_clients disjoint, covering, non-empty clients.

    method: "uniform", "label" (needs alpha > 0) or "quantity" (needs beta > 0).
    Returns one sorted int64 id array per client. Raises UserError on bad input.
    """
    _check_method(method)
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise UserError(
            f"labels must be a 1-D array (got shape {labels.shape})", "pass one label per example"
        )
    num_examples = labels.size
    num_clients = check_clients(num_examples, num_clients)
    seed = check_seed(seed)
    if method == "uniform":
        return uniform_partition(num_examples, num_clients, seed)
    if method == "label":
        return dirichlet_label_partition(labels, num_clients, check_positive("alpha", alpha, "0.1"), seed)
    return quantity_skew_partition(num_examples, num_clients, check_positive("beta", beta, "5.0"), seed)


def partition_name(
    method: str, num_clients: int, alpha: float | None = None, beta: float | None = None
) -> str:
    """FedNLP's name for a partition, e.g. "uniform", "niid_label_clients=100_alpha=0.1",
    "niid_quantity_clients=100_beta=5.0" (client count as int, alpha/beta as float repr)."""
    _check_method(method)
    if method == "uniform":
        return "uniform"
    clients = check_clients(np.iinfo(np.int64).max, num_clients)
    if method == "label":
        return f"niid_label_clients={clients}_alpha={check_positive('alpha', alpha, '0.1')!r}"
    return f"niid_quantity_clients={clients}_beta={check_positive('beta', beta, '5.0')!r}"
