"""Label-skew partition (FedNLP `niid_label_clients=C_alpha=A`)."""

from __future__ import annotations

import numpy as np

from ._checks import check_clients, check_positive, check_seed


def _client_label_counts(
    rng: np.random.Generator, label_counts: np.ndarray, sizes: np.ndarray, alpha: float
) -> np.ndarray:
    """Return a C x L matrix: how many examples of each label every client takes.

    Clients are served in order from what is left. Each client draws
    q ~ Dirichlet(alpha * p_global) and asks for round(q_l * n) of label l, capped
    at what is left of l. A rounding excess is taken back, and a shortfall is filled
    from the labels that still have examples, both in proportion to the counts
    involved (a multivariate hypergeometric draw, so it never overdraws a label).
    """
    num_labels = label_counts.size
    concentration = alpha * label_counts / label_counts.sum()
    remaining = label_counts.astype(np.int64).copy()
    counts = np.zeros((sizes.size, num_labels), dtype=np.int64)
    for c, n in enumerate(sizes):
        q = rng.dirichlet(concentration) if num_labels > 1 else np.ones(1)
        if not np.all(np.isfinite(q)) or q.sum() <= 0:  # guard against degenerate draws
            q = np.zeros(num_labels)
            q[rng.choice(num_labels, p=label_counts / label_counts.sum())] = 1.0
        take = np.minimum(np.rint(q * n).astype(np.int64), remaining)
        diff = int(n) - int(take.sum())
        if diff < 0:  # rounding asked for too many: give back in proportion to what was taken
            take -= rng.multivariate_hypergeometric(take, -diff)
        elif diff > 0:  # a label ran short (or rounding): fill in proportion to what is left
            take += rng.multivariate_hypergeometric(remaining - take, diff)
        remaining -= take
        counts[c] = take
    return counts


def dirichlet_label_partition(
    labels: np.ndarray, num_clients: int, alpha: float, seed: int
) -> list[np.ndarray]:
    """Split ids 0..N-1 into C disjoint clients with Dirichlet(alpha * p_global) label mixes.

    Every client gets floor(N/C) examples and the last one also takes the remainder.
    Within each label the ids are drawn in a seeded random order. Small alpha means
    strong skew; large alpha approaches the global label mix. Labels may be any
    values np.unique can sort (ints or strings). Each client's ids are sorted int64.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D (got shape {labels.shape})")
    num_examples = labels.size
    num_clients = check_clients(num_examples, num_clients)
    alpha = check_positive("alpha", alpha, "0.1")
    rng = np.random.default_rng(check_seed(seed))

    _, label_ids, label_counts = np.unique(labels, return_inverse=True, return_counts=True)
    label_ids = label_ids.reshape(-1)
    # Per-label pools: shuffle all ids, then stable-sort by label, so pool l is the
    # contiguous block pool[start[l]:start[l+1]] in a seeded random order.
    perm = rng.permutation(num_examples)
    pool = perm[np.argsort(label_ids[perm], kind="stable")].astype(np.int64)
    start = np.concatenate(([0], np.cumsum(label_counts)[:-1]))

    sizes = np.full(num_clients, num_examples // num_clients, dtype=np.int64)
    sizes[-1] += num_examples - sizes.sum()
    counts = _client_label_counts(rng, label_counts, sizes, alpha)

    # Client c takes the block pool[start[l] + offset[c, l] : ... + counts[c, l]] of every label.
    offset = np.cumsum(counts, axis=0) - counts
    seg_len = counts.reshape(-1)
    seg_start = (start[None, :] + offset).reshape(-1)
    seg_begin_in_out = np.cumsum(seg_len) - seg_len
    positions = np.repeat(seg_start - seg_begin_in_out, seg_len) + np.arange(num_examples)
    flat = pool[positions]  # clients' ids, client after client
    return [np.sort(part) for part in np.split(flat, np.cumsum(sizes)[:-1])]
