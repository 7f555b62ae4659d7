"""Quantity-skew partition (FedNLP `niid_quantity_clients=C_beta=B`)."""

from __future__ import annotations

import numpy as np

from fednlp_bench.errors import UserError

from ._checks import check_clients, check_positive, check_seed


def _largest_remainder(shares: np.ndarray, total: int) -> np.ndarray:
    """Integer sizes proportional to shares that sum exactly to total (ties go to lower index)."""
    raw = shares / shares.sum() * total
    sizes = np.floor(raw).astype(np.int64)
    short = total - int(sizes.sum())
    if short > 0:
        order = np.argsort(-(raw - sizes), kind="stable")
        sizes[order[:short]] += 1
    return sizes


def quantity_skew_partition(
    num_examples: int, num_clients: int, beta: float, seed: int, min_size: int = 1
) -> list[np.ndarray]:
    """Split shuffled ids 0..N-1 into C clients whose sizes follow Dirichlet(beta * 1_C).

    Every client first gets min_size examples; the other N - C*min_size are shared
    out by the Dirichlet shares with largest-remainder rounding, so sizes sum to N
    exactly. This replaces FedNLP's min-size retry loop (which can run forever) and
    never yields an empty client. Small beta means very unequal sizes. Each client's
    ids are returned sorted, as int64.
    """
    num_examples = int(num_examples)
    num_clients = check_clients(num_examples, num_clients)
    beta = check_positive("beta", beta, "5.0")
    if isinstance(min_size, bool) or int(min_size) != min_size or min_size < 1:
        raise UserError(f"min_size must be an integer >= 1 (got {min_size!r})", "pass min_size=1 or more")
    min_size = int(min_size)
    if num_clients * min_size > num_examples:
        raise UserError(
            f"{num_examples} examples cannot give {num_clients} clients at least {min_size} each",
            f"use at most {num_examples // min_size} clients or a smaller min_size",
        )
    rng = np.random.default_rng(check_seed(seed))
    shares = rng.dirichlet(np.full(num_clients, beta)) if num_clients > 1 else np.ones(1)
    if not np.all(np.isfinite(shares)) or shares.sum() <= 0:  # guard against degenerate draws
        shares = np.ones(num_clients)
    sizes = min_size + _largest_remainder(shares, num_examples - num_clients * min_size)
    perm = rng.permutation(num_examples).astype(np.int64)
    return [np.sort(part) for part in np.split(perm, np.cumsum(sizes)[:-1])]
