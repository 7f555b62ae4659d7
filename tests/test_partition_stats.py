"""Tests for partition statistics (JSD matrix, missing labels, summaries) and partition plots."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fednlp_bench.partition import (
    client_label_histograms,
    dirichlet_label_partition,
    mean_pairwise_jsd,
    quantity_skew_partition,
)
from fednlp_bench.partition.plots import plot_heatmap, plot_jsd_matrix, plot_sizes
from fednlp_bench.partition.stats import (
    jsd_matrix,
    missing_label_fraction,
    partition_summary,
    size_stats,
    summary_table,
)


def _skewed(n: int = 3000, clients: int = 30, labels: int = 6, alpha: float = 0.3, seed: int = 0):
    y = np.random.default_rng(seed).integers(0, labels, n)
    parts = dirichlet_label_partition(y, clients, alpha, seed)
    return parts, y


# ----------------------------------------------------------------------------- stats


def test_jsd_matrix_properties() -> None:
    parts, y = _skewed()
    hist = client_label_histograms(parts, y, 6)
    m = jsd_matrix(hist)
    assert m.shape == (30, 30)
    assert np.array_equal(m, m.T)
    assert np.all(np.diag(m) == 0.0)
    assert m.min() >= 0.0 and m.max() <= 1.0
    upper = m[np.triu_indices(30, k=1)]
    assert upper.mean() == pytest.approx(mean_pairwise_jsd(hist), rel=1e-12, abs=1e-12)
    assert upper.mean() > 0.2  # alpha 0.3: clients differ


def test_jsd_matrix_known_values_and_blocks() -> None:
    hist = np.array([[10, 0], [0, 5], [3, 3], [6, 6]])
    m = jsd_matrix(hist)
    assert m[0, 1] == pytest.approx(1.0)  # disjoint supports: 1 bit
    assert m[2, 3] == pytest.approx(0.0, abs=1e-15)  # same distribution
    expected = -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25)) - 0.5  # H(M) - (H(P) + H(Q)) / 2
    assert m[0, 2] == pytest.approx(expected)
    # many clients force several row blocks; each entry must match a direct computation
    big = np.random.default_rng(1).integers(0, 5, size=(700, 12)) + np.eye(700, 12, dtype=int)
    big[:, 0] += 1
    mb = jsd_matrix(big)
    assert mb[np.triu_indices(700, 1)].mean() == pytest.approx(mean_pairwise_jsd(big), rel=1e-10)
    assert mb[123, 456] == pytest.approx(jsd_matrix(big[[123, 456]])[0, 1], rel=1e-12)


def test_jsd_matrix_rejects_empty_clients() -> None:
    with pytest.raises(ValueError, match="at least one example"):
        jsd_matrix(np.array([[1, 2], [0, 0]]))


def test_missing_label_fraction_hand_made() -> None:
    hist = np.array([[5, 0, 1, 0], [0, 0, 2, 3], [1, 0, 4, 0], [2, 0, 0, 0]])
    assert missing_label_fraction(hist).tolist() == [0.25, 1.0, 0.25, 0.75]
    assert missing_label_fraction(np.zeros((0, 3))).tolist() == [0.0, 0.0, 0.0]


def test_partition_summary_and_table() -> None:
    parts, y = _skewed()
    names = ["a", "b", "c", "d", "e", "f"]
    summary = partition_summary(parts, y, 6, label_names=names)
    json.dumps(summary)  # JSON-ready
    assert summary["sizes"] == size_stats(parts)
    assert summary["mean_jsd"] == pytest.approx(mean_pairwise_jsd(client_label_histograms(parts, y, 6)))
    assert list(summary["missing_label_fraction"]) == names
    hist = np.array(summary["histograms"])
    assert hist.shape == (30, 6) and hist.sum() == y.size
    assert np.array_equal(hist.sum(axis=1), [p.size for p in parts])

    table = summary_table(summary)
    assert list(table.columns) == ["client", "size", "top_label", "top_share", "jsd_to_global"]
    assert len(table) == 30 and table["size"].tolist() == [p.size for p in parts]
    top = hist.argmax(axis=1)
    assert table["top_label"].tolist() == [names[t] for t in top]
    assert np.allclose(table["top_share"], hist.max(axis=1) / hist.sum(axis=1))
    assert table["jsd_to_global"].between(0, 1).all()
    # a client mixed like the whole data set has ~0 divergence from it; skewed ones more
    uniform_parts = dirichlet_label_partition(y, 30, 1e6, 0)
    flat = summary_table(partition_summary(uniform_parts, y, 6))
    assert flat["jsd_to_global"].max() < 0.05 < table["jsd_to_global"].mean()
    assert flat["top_label"].iloc[0] in {str(i) for i in range(6)}


def test_partition_summary_missing_labels_by_default_names() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    summary = partition_summary([np.array([0, 1]), np.array([2, 3, 4, 5])], y, 4)
    assert summary["missing_label_fraction"] == {"0": 0.5, "1": 0.5, "2": 0.5, "3": 1.0}
    assert summary["mean_jsd"] == pytest.approx(1.0)


# ----------------------------------------------------------------------------- plots


def _read_png(path):
    import matplotlib.image as mpimg

    return mpimg.imread(str(path))


def _assert_real_picture(path, expected) -> None:
    assert path == expected and path.is_file()
    assert not list(path.parent.glob(f".{path.name}.*"))  # no temporary file left behind
    img = _read_png(path)
    height, width = img.shape[:2]
    assert width >= 600 and height >= 400, (width, height)
    flat = img.reshape(-1, img.shape[-1])
    assert np.unique(flat, axis=0).shape[0] > 10  # not a single colour


@pytest.mark.parametrize("clients", [12, 150])
def test_plots_write_readable_pngs(tmp_path, clients: int) -> None:
    parts, y = _skewed(n=6000, clients=clients)
    hist = client_label_histograms(parts, y, 6)
    labels = ["sports", "business", "science", "politics", "health", "travel"]
    _assert_real_picture(plot_heatmap(hist, tmp_path / "heat.png", labels), tmp_path / "heat.png")
    sizes_path = tmp_path / "sub" / "sizes.png"  # the folder is created
    _assert_real_picture(plot_sizes(quantity_skew_partition(6000, clients, 1.0, 0), sizes_path), sizes_path)
    _assert_real_picture(plot_jsd_matrix(jsd_matrix(hist), tmp_path / "jsd.png"), tmp_path / "jsd.png")


def test_heatmap_rows_are_normalised(tmp_path) -> None:
    # client 0 holds 1000 of label 0, client 1 holds 3 of label 1. Normalised rows make two
    # cells yellow (share 1) and two dark purple (share 0); raw counts would give 1 yellow, 3 dark.
    path = plot_heatmap(np.array([[1000, 0], [0, 3]]), tmp_path / "h.png")
    img = _read_png(path)[..., :3]
    bright = ((img[..., 0] > 0.9) & (img[..., 1] > 0.85) & (img[..., 2] < 0.3)).sum()
    dark = ((img[..., 0] > 0.2) & (img[..., 0] < 0.35) & (img[..., 1] < 0.05) & (img[..., 2] > 0.3)).sum()
    assert dark > 50_000
    assert 0.8 < bright / dark < 1.25, (bright, dark)


def test_plot_overwrites_atomically(tmp_path) -> None:
    target = tmp_path / "sizes.png"
    target.write_bytes(b"old")
    plot_sizes([np.arange(5), np.arange(9), np.arange(2)], target)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):
        plot_jsd_matrix(np.zeros((3, 2)), tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()
