"""Pictures of a partition: client x label heatmap, client-size histogram, client JSD matrix.

Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend
change). Every file is written to a temporary name in the target folder and then
renamed, so a reader never sees half a picture. Each function returns the path.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FIGSIZE = (9.0, 6.0)  # inches; at DPI this is 1080 x 720 px
DPI = 120
MAX_TICK_LABELS = 40  # above this many clients/labels, no per-item tick labels


def _new_figure() -> tuple[Figure, object]:
    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    """Write fig atomically (temp file in the same folder, then os.replace); format from the suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = path.suffix.lstrip(".").lower() or "png"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            fig.savefig(handle, format=fmt, dpi=DPI, bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _client_ticks(ax: object, axis: str, count: int, labels: list[str] | None = None) -> None:
    """Per-item ticks when there are few items; matplotlib's default integer ticks otherwise."""
    if count > MAX_TICK_LABELS:
        return
    ticks = np.arange(count)
    names = labels if labels is not None else [str(i) for i in ticks]
    if axis == "x":
        ax.set_xticks(ticks)
        ax.set_xticklabels(names, rotation=90 if max(map(len, names), default=0) > 3 else 0, fontsize=8)
    else:
        ax.set_yticks(ticks)
        ax.set_yticklabels(names, fontsize=8)


def plot_heatmap(hist: np.ndarray, path: str | os.PathLike, label_names: list[str] | None = None) -> Path:
    """Client x label heatmap of label shares (each row normalised to sum 1; empty rows stay 0)."""
    hist = np.asarray(hist, dtype=np.float64)
    if hist.ndim != 2 or 0 in hist.shape:
        raise ValueError(f"hist must be a non-empty C x L matrix (got shape {hist.shape})")
    num_clients, num_labels = hist.shape
    totals = hist.sum(axis=1, keepdims=True)
    shares = hist / np.where(totals > 0, totals, 1.0)
    fig, ax = _new_figure()
    image = ax.imshow(shares, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(image, ax=ax, label="share of client's examples")
    names = [str(n) for n in label_names] if label_names is not None else None
    _client_ticks(ax, "x", num_labels, names)
    _client_ticks(ax, "y", num_clients)
    ax.set_xlabel("label")
    ax.set_ylabel("client")
    ax.set_title(f"Label mix per client ({num_clients} clients, {num_labels} labels)")
    return _save(fig, path)


def plot_sizes(parts: list[np.ndarray], path: str | os.PathLike) -> Path:
    """Histogram of client sizes (number of examples per client), with the mean marked."""
    sizes = np.array([np.asarray(p).size for p in parts], dtype=np.int64)
    if sizes.size == 0:
        raise ValueError("no clients to plot")
    fig, ax = _new_figure()
    span = int(sizes.max() - sizes.min())
    if span < 50:  # few distinct sizes: one bar per integer, centred on it
        bins: int | np.ndarray = np.arange(sizes.min() - 0.5, sizes.max() + 1.5)
    else:
        bins = int(np.clip(np.sqrt(sizes.size) * 2, 5, 50))
    ax.hist(sizes, bins=bins, color="#3b528b", edgecolor="white")
    ax.axvline(sizes.mean(), color="#e45756", linestyle="--", label=f"mean {sizes.mean():.1f}")
    ax.set_xlabel("examples per client")
    ax.set_ylabel("number of clients")
    ax.set_title(f"Client sizes ({sizes.size} clients, min {sizes.min()}, max {sizes.max()})")
    ax.legend()
    return _save(fig, path)


def plot_jsd_matrix(matrix: np.ndarray, path: str | os.PathLike) -> Path:
    """C x C matrix of pairwise Jensen-Shannon divergences (base 2, colour scale 0..1)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"matrix must be a non-empty square C x C matrix (got shape {matrix.shape})")
    count = matrix.shape[0]
    fig, ax = _new_figure()
    image = ax.imshow(matrix, cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(image, ax=ax, label="Jensen-Shannon divergence (bits)")
    _client_ticks(ax, "x", count)
    _client_ticks(ax, "y", count)
    ax.set_xlabel("client")
    ax.set_ylabel("client")
    ax.set_title(f"Pairwise label divergence between {count} clients")
    return _save(fig, path)
