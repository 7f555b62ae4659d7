"""Descriptive statistics of a partition: label histograms, label divergence (JSD), client sizes, missing labels,
a JSON-ready summary of its skew and a table with one row per client."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


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
    block = max(1, int(500_000 // max(1, num_clients * num_labels)))  # temporaries of ~4 MB each
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


def _row_distributions(hist: np.ndarray) -> np.ndarray:
    """Rows of a C x L count matrix normalised to distributions; empty rows are an error."""
    hist = np.asarray(hist, dtype=np.float64)
    if hist.ndim != 2:
        raise ValueError(f"hist must be a C x L matrix (got shape {hist.shape})")
    totals = hist.sum(axis=1, keepdims=True)
    if np.any(totals <= 0):
        raise ValueError("every client needs at least one example to compute label divergence")
    return hist / totals


def jsd_matrix(hist: np.ndarray) -> np.ndarray:
    """C x C Jensen-Shannon divergences (log base 2, in [0, 1]) between the clients' label mixes.

    Symmetric with a zero diagonal; computed in row blocks so memory stays bounded.
    Its upper-triangle mean equals `mean_pairwise_jsd(hist)`.
    """
    p = _row_distributions(hist)
    num_clients, num_labels = p.shape
    h = _entropy_bits(p)
    out = np.zeros((num_clients, num_clients), dtype=np.float64)
    block = max(1, int(500_000 // max(1, num_clients * num_labels)))  # temporaries of ~4 MB each
    for i0 in range(0, num_clients, block):
        i1 = min(i0 + block, num_clients)
        m = (p[i0:i1, None, :] + p[None, :, :]) / 2.0
        out[i0:i1] = _entropy_bits(m) - (h[i0:i1, None] + h[None, :]) / 2.0
    np.clip(out, 0.0, 1.0, out=out)  # rounding can leave -1e-17
    out = (out + out.T) / 2.0
    np.fill_diagonal(out, 0.0)
    return out


def jsd_to_distribution(hist: np.ndarray, q: np.ndarray) -> np.ndarray:
    """JSD (base 2) of every client's label mix to one distribution q (e.g. the global mix)."""
    p = _row_distributions(hist)
    q = np.asarray(q, dtype=np.float64).reshape(1, -1)
    q = q / q.sum()
    jsd = _entropy_bits((p + q) / 2.0) - (_entropy_bits(p) + _entropy_bits(q)) / 2.0
    return np.clip(jsd, 0.0, 1.0)


def missing_label_fraction(hist: np.ndarray) -> np.ndarray:
    """Per label: the fraction of clients that hold none of it (length L; zeros if C = 0)."""
    hist = np.asarray(hist)
    if hist.ndim != 2:
        raise ValueError(f"hist must be a C x L matrix (got shape {hist.shape})")
    if hist.shape[0] == 0:
        return np.zeros(hist.shape[1], dtype=np.float64)
    return (hist == 0).mean(axis=0)


def partition_summary(
    parts: list[np.ndarray], labels: np.ndarray, num_labels: int, label_names: list[str] | None = None
) -> dict:
    """JSON-ready description of a partition's skew.

    Keys: num_clients, label_names, sizes (size_stats: min, max, mean, std_over_mean),
    client_sizes, mean_jsd (mean pairwise JSD of label mixes), missing_label_fraction
    ({label name: fraction of clients without it}) and histograms (C x L counts as lists).
    """
    names = [str(n) for n in label_names] if label_names is not None else [str(i) for i in range(num_labels)]
    if len(names) != num_labels:
        raise ValueError(f"{len(names)} label names for {num_labels} labels")
    hist = client_label_histograms(parts, labels, num_labels)
    missing = missing_label_fraction(hist)
    return {
        "num_clients": len(parts),
        "label_names": names,
        "sizes": size_stats(parts),
        "client_sizes": [int(np.asarray(p).size) for p in parts],
        "mean_jsd": mean_pairwise_jsd(hist),
        "missing_label_fraction": {n: float(f) for n, f in zip(names, missing)},
        "histograms": hist.tolist(),
    }


def summary_table(summary: dict) -> pd.DataFrame:
    """One row per client: client, size, top_label, top_share, jsd_to_global (from partition_summary)."""
    import pandas as pd

    hist = np.asarray(summary["histograms"], dtype=np.float64)
    columns = ["client", "size", "top_label", "top_share", "jsd_to_global"]
    if hist.ndim != 2 or hist.shape[0] == 0:
        return pd.DataFrame(columns=columns)
    names = summary.get("label_names") or [str(i) for i in range(hist.shape[1])]
    sizes = hist.sum(axis=1)
    top = hist.argmax(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(sizes > 0, hist[np.arange(hist.shape[0]), top] / sizes, 0.0)
    jsd = np.full(hist.shape[0], np.nan)
    filled = sizes > 0
    if filled.any():
        jsd[filled] = jsd_to_distribution(hist[filled], hist.sum(axis=0))
    return pd.DataFrame(
        {
            "client": np.arange(hist.shape[0]),
            "size": sizes.astype(np.int64),
            "top_label": [str(names[t]) for t in top],
            "top_share": share,
            "jsd_to_global": jsd,
        },
        columns=columns,
    )
