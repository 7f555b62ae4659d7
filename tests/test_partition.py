"""Tests for fednlp_bench.partition: coverage, sizes, determinism, skew, validation, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from fednlp_bench.errors import UserError
from fednlp_bench.partition import (
    PARTITIONERS,
    client_label_histograms,
    dirichlet_label_partition,
    make_partition,
    mean_pairwise_jsd,
    partition_digest,
    partition_name,
    quantity_skew_partition,
    size_stats,
    uniform_partition,
)

METHOD_KWARGS = {"uniform": {}, "label": {"alpha": 0.5}, "quantity": {"beta": 1.0}}


def _labels(n: int, num_labels: int = 10, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, num_labels, n)


def _assert_disjoint_cover(parts: list[np.ndarray], n: int) -> None:
    flat = np.concatenate(parts)
    assert flat.size == n
    assert np.array_equal(np.sort(flat), np.arange(n))
    assert all(p.size > 0 for p in parts)


@pytest.mark.parametrize("method", sorted(PARTITIONERS))
@pytest.mark.parametrize("n,c", [(1000, 7), (1000, 100), (13, 13), (10, 6), (5000, 1)])
def test_disjoint_and_covering(method: str, n: int, c: int) -> None:
    parts = make_partition(method, _labels(n), c, seed=3, **METHOD_KWARGS[method])
    assert len(parts) == c
    _assert_disjoint_cover(parts, n)


def test_uniform_uses_ceil_chunks_when_they_fill_every_client() -> None:
    assert [p.size for p in uniform_partition(10, 4, 0)] == [3, 3, 3, 1]
    assert [p.size for p in uniform_partition(1000, 3, 0)] == [334, 334, 332]


def test_uniform_falls_back_to_balanced_cut_instead_of_empty_clients() -> None:
    # ceil(10/6) = 2 would give 2,2,2,2,2,0
    sizes = [p.size for p in uniform_partition(10, 6, 0)]
    assert sizes == [2, 2, 2, 2, 1, 1]


def test_label_skew_sizes_floor_with_remainder_on_last() -> None:
    n, c = 10_007, 100
    parts = dirichlet_label_partition(_labels(n), c, alpha=0.1, seed=1)
    sizes = [p.size for p in parts]
    assert sizes[:-1] == [n // c] * (c - 1)
    assert sizes[-1] == n // c + n % c
    _assert_disjoint_cover(parts, n)


def test_label_skew_accepts_string_labels_and_imbalanced_labels() -> None:
    rng = np.random.default_rng(5)
    labels = rng.choice(np.array(["pos", "neg", "neutral"]), size=3000, p=[0.8, 0.15, 0.05])
    parts = dirichlet_label_partition(labels, 40, alpha=0.05, seed=2)
    _assert_disjoint_cover(parts, 3000)


def test_label_skew_large_alpha_follows_global_mix() -> None:
    labels = _labels(20_000)
    parts = dirichlet_label_partition(labels, 20, alpha=1e6, seed=0)
    hist = client_label_histograms(parts, labels, 10)
    share = hist / hist.sum(axis=1, keepdims=True)
    glob = np.bincount(labels, minlength=10) / labels.size
    assert np.abs(share - glob).max() < 0.03


def test_quantity_sizes_sum_to_n_and_respect_min_size() -> None:
    n, c = 5000, 64
    for beta in (0.05, 0.5, 5.0):
        for min_size in (1, 20):
            parts = quantity_skew_partition(n, c, beta=beta, seed=7, min_size=min_size)
            sizes = np.array([p.size for p in parts])
            assert sizes.sum() == n
            assert sizes.min() >= min_size
            _assert_disjoint_cover(parts, n)


def test_quantity_never_empty_with_many_clients_and_tiny_beta() -> None:
    parts = quantity_skew_partition(1200, 1000, beta=0.1, seed=0)
    assert len(parts) == 1000
    assert min(p.size for p in parts) >= 1
    _assert_disjoint_cover(parts, 1200)


def test_quantity_small_beta_is_more_unequal() -> None:
    low = size_stats(quantity_skew_partition(20_000, 50, beta=0.5, seed=1))
    high = size_stats(quantity_skew_partition(20_000, 50, beta=100.0, seed=1))
    assert low["std_over_mean"] > 2 * high["std_over_mean"]


@pytest.mark.parametrize("method", sorted(PARTITIONERS))
def test_same_seed_same_digest_different_seed_different_digest(method: str) -> None:
    labels = _labels(3000)
    kw = METHOD_KWARGS[method]
    a = partition_digest(make_partition(method, labels, 30, seed=42, **kw))
    b = partition_digest(make_partition(method, labels, 30, seed=42, **kw))
    c = partition_digest(make_partition(method, labels, 30, seed=43, **kw))
    assert a == b
    assert a != c
    assert len(a) == 64 and int(a, 16) >= 0


def test_digest_ignores_order_inside_client_but_not_client_order() -> None:
    parts = [np.array([3, 1, 2]), np.array([0, 5]), np.array([4])]
    shuffled_inside = [np.array([2, 3, 1]), np.array([5, 0]), np.array([4])]
    swapped = [parts[1], parts[0], parts[2]]
    moved = [np.array([3, 1]), np.array([2, 0, 5]), np.array([4])]
    d = partition_digest(parts)
    assert partition_digest(shuffled_inside) == d
    assert partition_digest(swapped) != d
    assert partition_digest(moved) != d
    assert partition_digest([np.array([1, 2])]) != partition_digest([np.array([1]), np.array([2])])


def test_jsd_decreases_with_alpha() -> None:
    labels = _labels(20_000)
    jsd = []
    for alpha in (0.1, 1.0, 100.0):
        parts = make_partition("label", labels, 50, seed=0, alpha=alpha)
        jsd.append(mean_pairwise_jsd(client_label_histograms(parts, labels, 10)))
    assert jsd[0] > jsd[1] > jsd[2] >= 0.0
    assert jsd[2] < 0.1


def test_jsd_known_values() -> None:
    assert mean_pairwise_jsd(np.array([[5, 0], [0, 7]])) == pytest.approx(1.0)
    assert mean_pairwise_jsd(np.array([[2, 2], [9, 9], [1, 1]])) == pytest.approx(0.0)
    # pairs: (A,B) = 1; (A,C) = (B,C) = H([.75, .25]) - (H([1, 0]) + H([.5, .5])) / 2
    h_mix = -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25))
    expected = (1.0 + 2 * (h_mix - 0.5)) / 3
    assert mean_pairwise_jsd(np.array([[4, 0], [0, 4], [2, 2]])) == pytest.approx(expected)


def test_histograms_and_size_stats() -> None:
    labels = np.array([0, 1, 1, 2, 2, 2])
    parts = [np.array([0, 1]), np.array([2, 3, 4, 5])]
    hist = client_label_histograms(parts, labels, 3)
    assert hist.tolist() == [[1, 1, 0], [0, 1, 3]]
    s = size_stats(parts)
    assert s["min"] == 2 and s["max"] == 4 and s["mean"] == pytest.approx(3.0)
    assert s["std_over_mean"] == pytest.approx(1.0 / 3.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"method": "dirichlet", "num_clients": 10},
        {"method": "uniform", "num_clients": 0},
        {"method": "uniform", "num_clients": -3},
        {"method": "uniform", "num_clients": 101},
        {"method": "label", "num_clients": 10},
        {"method": "label", "num_clients": 10, "alpha": 0},
        {"method": "label", "num_clients": 10, "alpha": -1.0},
        {"method": "label", "num_clients": 10, "alpha": float("nan")},
        {"method": "quantity", "num_clients": 10},
        {"method": "quantity", "num_clients": 10, "beta": 0.0},
        {"method": "quantity", "num_clients": 10, "beta": -5},
        {"method": "quantity", "num_clients": 101, "beta": 5.0},
        {"method": "label", "num_clients": 101, "alpha": 1.0},
        {"method": "uniform", "num_clients": 10.5},
    ],
)
def test_bad_input_raises_user_error(kwargs: dict) -> None:
    with pytest.raises(UserError):
        make_partition(labels=_labels(100), seed=0, **kwargs)


def test_user_error_messages_name_problem_and_fix() -> None:
    with pytest.raises(UserError, match="uniform.*label.*quantity|label.*quantity.*uniform"):
        make_partition("nope", _labels(10), 2, seed=0)
    with pytest.raises(UserError, match=r"100 examples cannot fill 101 clients.*at most 100 clients"):
        make_partition("uniform", _labels(100), 101, seed=0)
    with pytest.raises(UserError, match=r"alpha must be > 0 \(got 0\.0\)"):
        make_partition("label", _labels(100), 2, seed=0, alpha=0)
    with pytest.raises(UserError, match="beta"):
        make_partition("quantity", _labels(100), 2, seed=0)
    with pytest.raises(UserError):
        quantity_skew_partition(100, 10, beta=1.0, seed=0, min_size=11)


def test_partition_name() -> None:
    assert partition_name("uniform", 100) == "uniform"
    assert partition_name("label", 100, alpha=0.1) == "niid_label_clients=100_alpha=0.1"
    assert partition_name("label", 100, alpha=1) == "niid_label_clients=100_alpha=1.0"
    assert partition_name("quantity", 100, beta=5) == "niid_quantity_clients=100_beta=5.0"
    assert partition_name("label", 100.0, alpha=np.float64(0.5)) == "niid_label_clients=100_alpha=0.5"
    with pytest.raises(UserError):
        partition_name("label", 100)


def test_label_partition_scales_to_a_million_examples() -> None:
    labels = _labels(1_000_000, num_labels=10, seed=9)
    start = time.perf_counter()
    parts = make_partition("label", labels, 1000, seed=42, alpha=0.1)
    elapsed = time.perf_counter() - start
    assert len(parts) == 1000
    _assert_disjoint_cover(parts, 1_000_000)
    assert elapsed < 5.0
