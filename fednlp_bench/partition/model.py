"""A partition as one object: the recipe that made it, the client id lists of both splits, their digests and
FedNLP's name for it."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .digest import partition_digest


@dataclass
class Partition:
    """Client id lists for train and test plus the recipe (method and its parameters)."""

    method: str  # uniform | label | quantity | cluster | natural
    train: list[np.ndarray]
    test: list[np.ndarray]
    params: dict[str, Any] = field(default_factory=dict)  # alpha, beta, seed, k, id_column, ...

    @property
    def num_clients(self) -> int:
        return len(self.train)

    @property
    def train_digest(self) -> str:
        return partition_digest(self.train)

    @property
    def test_digest(self) -> str:
        return partition_digest(self.test)

    @property
    def digest(self) -> str:
        """sha256 over both splits' digests: the one number a result or manifest records."""
        return combined_digest(self.train_digest, self.test_digest)

    @property
    def name(self) -> str:
        """FedNLP's method name, e.g. niid_label_clients=100_alpha=0.1."""
        c, p = self.num_clients, self.params
        if self.method == "uniform":
            return "uniform"
        if self.method == "label":
            return f"niid_label_clients={c}_alpha={float(p['alpha'])!r}"
        if self.method == "quantity":
            return f"niid_quantity_clients={c}_beta={float(p['beta'])!r}"
        if self.method == "cluster":
            return f"niid_cluster_clients={c}_alpha={float(p['alpha'])!r}"
        return f"natural_clients={c}_by={p.get('id_column', 'id')}"


def combined_digest(train_digest: str, test_digest: str) -> str:
    return hashlib.sha256(f"{train_digest}|{test_digest}".encode()).hexdigest()
