"""Client selection strategies: which K clients train in a round.

- uniform: K of N without replacement, every client equally likely (the FedAvg default).
- activity: inclusion probability proportional to the client's number of available examples (its activity),
  by systematic PPS sampling: pi_i = K * a_i / sum(a), capped at 1 (capped clients always train, the rest
  share the remaining slots in proportion), so over many rounds a client trains in a fraction pi_i of them.
- power_of_choice (Cho et al. 2022): draw d >= K candidates with probability proportional to activity, score
  each by the current global model's loss on its data, keep the K with the largest loss.
All draws are seeded by (seed, round): the same config selects the same clients.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..config import SELECTIONS
from ..errors import UserError
from .sampling import sample_clients


def inclusion_probabilities(activity: np.ndarray, k: int) -> np.ndarray:
    """pi_i = min(1, c * a_i) with c chosen so that sum(pi) = k (clients with no data get 0)."""
    a = np.asarray(activity, dtype=np.float64)
    if np.any(a < 0):
        raise ValueError("activity must be non-negative")
    active = int(np.count_nonzero(a))
    if k > active:
        raise UserError(f"{k} clients per round but only {active} clients hold data",
                        "lower --clients-per-round or use a partition with more non-empty clients")
    pi = np.zeros_like(a)
    capped = np.zeros(a.shape, dtype=bool)
    while True:  # clients whose share exceeds 1 always train; the rest split the remaining slots
        free = ~capped & (a > 0)
        slots = k - int(capped.sum())
        pi[free] = slots * a[free] / a[free].sum()
        pi[capped] = 1.0
        over = free & (pi > 1.0)
        if not over.any():
            return pi
        capped |= over


def systematic_pps(pi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sorted ids drawn so that client i is included with probability pi[i] (sum(pi) = K, each <= 1)."""
    order = rng.permutation(len(pi))  # random order: no fixed pair of neighbours is always drawn together
    cum = np.cumsum(pi[order])
    k = int(round(cum[-1]))
    points = rng.random() + np.arange(k)
    picked = order[np.searchsorted(cum, points, side="right")]
    return np.sort(picked)


def select_clients(
    strategy: str,
    activity: np.ndarray,
    per_round: int,
    seed: int,
    round_idx: int,
    candidates: int | None = None,
    client_loss: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Sorted ids of the clients that train in round `round_idx` under `strategy`."""
    n = len(activity)
    if strategy == "uniform":
        return sample_clients(n, per_round, seed, round_idx)
    rng = np.random.default_rng([seed, round_idx, 0xAC])
    if strategy == "activity":
        return systematic_pps(inclusion_probabilities(activity, per_round), rng)
    if strategy == "power_of_choice":
        d = min(int(np.count_nonzero(activity)), candidates or 2 * per_round)
        if d < per_round:
            raise UserError(f"power_of_choice needs at least --clients-per-round candidates (got {d})",
                            "raise --selection-candidates")
        pool = systematic_pps(inclusion_probabilities(activity, d), rng)
        if client_loss is None:
            raise ValueError("power_of_choice needs the candidates' losses")
        losses = np.asarray(client_loss(pool), dtype=np.float64)
        keep = np.argsort(-losses, kind="stable")[:per_round]  # largest loss first; ties by candidate order
        return np.sort(pool[keep])
    raise UserError(f"unknown client selection '{strategy}'", f"choose one of: {', '.join(SELECTIONS)}")
