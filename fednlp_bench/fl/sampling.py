"""Client sampling: uniform without replacement, seeded by (seed, round) so every round differs."""
from __future__ import annotations

import numpy as np


def sample_clients(num_clients: int, per_round: int, seed: int, round_idx: int) -> np.ndarray:
    """Sorted ids of the clients that train in round `round_idx` (same seed and round, same clients)."""
    if per_round >= num_clients:
        return np.arange(num_clients)
    rng = np.random.default_rng([seed, round_idx, 0x5A])
    return np.sort(rng.choice(num_clients, size=per_round, replace=False))
