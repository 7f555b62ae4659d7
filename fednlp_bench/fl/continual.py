"""Continual data: each client's examples arrive over rounds in a seeded stream and a storage cap keeps
only the newest ones.

Client c's ids are put in a seeded order and each gets an arrival round drawn uniformly from
1..arrival_rounds (sorted, so order = arrival order). In round r the client holds the examples that have
arrived (arrival <= r), of which at most `cap` newest: an example is deleted exactly when the cap-th newer
example arrives, never before. Selection strategies read the current activity (examples held now).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ContinualStreams:
    """Per-client arrival orders and rounds; `held(c, r)` is what client c can train on in round r."""

    orders: list[np.ndarray]  # ids in arrival order
    arrivals: list[np.ndarray]  # arrival round of each, non-decreasing
    cap: int | None = None

    @classmethod
    def build(cls, parts: list[np.ndarray], arrival_rounds: int, cap: int | None, seed: int) -> "ContinualStreams":
        orders, arrivals = [], []
        for c, ids in enumerate(parts):
            rng = np.random.default_rng([seed, c, 0xC0])
            orders.append(np.asarray(ids)[rng.permutation(len(ids))])
            arrivals.append(np.sort(rng.integers(1, arrival_rounds + 1, size=len(ids))))
        return cls(orders, arrivals, cap)

    def held(self, client: int, round_idx: int) -> np.ndarray:
        arrived = int(np.searchsorted(self.arrivals[client], round_idx, side="right"))
        start = max(0, arrived - self.cap) if self.cap else 0
        return self.orders[client][start:arrived]

    def activity(self, round_idx: int) -> np.ndarray:
        return np.array([len(self.held(c, round_idx)) for c in range(len(self.orders))])
