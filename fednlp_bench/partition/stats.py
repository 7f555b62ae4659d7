"""Descriptive statistics of a partition: label histograms, label divergence, client sizes."""

from __future__ import annotations

import numpy as np


def client_label_histograms(parts: list[np.ndarray], labels: np.ndarray, num_labels: int) -> np.ndarray:
    """Return a C x L int64 matrix: count of each label (0..L-1) in each client."""
    labels = np.asarray(labels).reshape(-1)
    sizes = np.array([np.asarray(p).size for p in parts], dtype=np.int64)
    if sizes.sum() == 0:
        return np.zeros((len(parts), num_labels), dtype=np.int64)
    ids = np.concatenate([np.asarray(p, dtype=np.int64).reshape(-1) for p in parts])
    client = np.repeat(np.arange(len(parts)), sizes)
    lab = labels[ids].astype(np.int64)
    if lab.min() < 0 or lab.max() >= num_labels:
        raise ValueError(f"labels must lie in 0..{num_labels - 1} (got {lab.min()}..{lab.max()})")
    flat = np.bincount(client * num_labels + lab, minlength=len(parts) * num_labels)
    return flat.reshape(len(parts), num_labels)


def _entropy_bits(p: np.ndarray) -> np.ndarray:
    """Shannon entropy in bits along the last axis (0 log 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return -terms.sum(axis=-1)


def mean_pairwise_jsd(hist: np.ndarray) -> float:
    """Mean Jensen-Shannon divergence (log base 2, in [0, 1]) over client pairs i < j.

    Rows are normalised to distributions; rows with no examples are an error.
    Uses JSD(P, Q) = H((P+Q)/2) - (H(P) + H(Q))/2, computed in row blocks so the
    memory stays bounded for C up to a few thousand. Returns 0.0 for fewer than two clients.
    """
    hist = np.asarray(hist, dtype=np.float64)
    if hist.ndim != 2:
        raise ValueError(f"hist must be a C x L matrix (got shape {hist.shape})")
    num_clients, num_labels = hist.shape
    if num_clients < 2:
        return 0.0
    totals = hist.sum(axis=1, keepdims=True)
    if np.any(totals <= 0):
        raise ValueError("every client needs at least one example to compute label divergence")
    p = hist / totals
    h = _entropy_bits(p)
    block = max(1, int(4_000_000 // max(1, num_clients * num_labels)))
    total = 0.0
    for i0 in range(0, num_clients - 1, block):
        i1 = min(i0 + block, num_clients - 1)
        m = (p[i0:i1, None, :] + p[None, :, :]) / 2.0
        jsd = _entropy_bits(m) - (h[i0:i1, None] + h[None, :]) / 2.0
        rows = np.arange(i0, i1)[:, None]
        total += float(np.where(np.arange(num_clients)[None, :] > rows, jsd, 0.0).sum())
    return total / (num_clients * (num_clients - 1) / 2)


def size_stats(parts: list[np.ndarray]) -> dict:
    """Client sizes: min, max, mean and std/mean (population std; 0.0 if the mean is 0)."""
    sizes = np.array([np.asarray(p).size for p in parts], dtype=np.float64)
    if sizes.size == 0:
        return {"min": 0, "max": 0, "mean": 0.0, "std_over_mean": 0.0}
    mean = float(sizes.mean())
    return {
        "min": int(sizes.min()),
        "max": int(sizes.max()),
        "mean": mean,
        "std_over_mean": float(sizes.std() / mean) if mean > 0 else 0.0,
    }
