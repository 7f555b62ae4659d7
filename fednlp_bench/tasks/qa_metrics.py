"""Extractive QA scoring and decoding: SQuAD answer normalisation, exact match / token F1, n-best span search.

The metric follows the official SQuAD v1.1 evaluation script: answers are lower-cased, stripped of punctuation
and of the articles a/an/the, and whitespace is collapsed; exact match and token F1 are taken as the maximum
over the gold answers of an example and averaged over examples. Scores are FRACTIONS in [0, 1] (the SQuAD
script prints percentages: multiply by 100), like the benchmark's other metrics (accuracy, macro-F1).
"""
from __future__ import annotations

import re
import string
from collections import Counter
from typing import Sequence

import numpy as np

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, drop punctuation, drop articles a/an/the, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when the normalised strings are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    """Harmonic mean of token precision and recall between the normalised answers (bag of tokens).

    Two empty answers score 1.0; one empty answer scores 0.0 (as in the SQuAD 2.0 script).
    """
    pred_toks, gold_toks = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred_toks or not gold_toks:
        return float(pred_toks == gold_toks)
    common = sum((Counter(pred_toks) & Counter(gold_toks)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred_toks), common / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def max_over_gold(metric, prediction: str, golds: Sequence[str]) -> float:
    """The best score of `prediction` against any gold answer (0.0 without gold answers)."""
    return max((metric(prediction, g) for g in golds), default=0.0)


def squad_scores(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean exact match and token F1 (fractions in [0, 1]), max over each example's gold answers."""
    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} predictions for {len(golds)} examples")
    if len(golds) == 0:
        return {"exact_match": float("nan"), "f1": float("nan")}
    em = [max_over_gold(exact_match, p, g) for p, g in zip(predictions, golds)]
    f1 = [max_over_gold(token_f1, p, g) for p, g in zip(predictions, golds)]
    return {"exact_match": float(np.mean(em)), "f1": float(np.mean(f1))}


def best_span(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    context_mask: np.ndarray,
    n_best: int = 20,
    max_answer_length: int = 30,
) -> tuple[int, int, float] | None:
    """The best (start, end, score) token span of one window, or None when no span is allowed.

    Candidates are the `n_best` highest start logits and the `n_best` highest end logits among the context tokens
    (`context_mask`, i.e. sequence_ids == 1); a pair is allowed when end >= start and it spans at most
    `max_answer_length` tokens; its score is start_logit + end_logit. Ties go to the earlier (start, end).
    """
    start_logits = np.asarray(start_logits, dtype=np.float64)
    end_logits = np.asarray(end_logits, dtype=np.float64)
    ctx = np.flatnonzero(np.asarray(context_mask, dtype=bool))
    if ctx.size == 0:
        return None
    k = min(n_best, ctx.size)
    # Stable sort on -logit: among equal logits the earlier token comes first (deterministic).
    starts = ctx[np.argsort(-start_logits[ctx], kind="stable")[:k]]
    ends = ctx[np.argsort(-end_logits[ctx], kind="stable")[:k]]
    s, e = np.meshgrid(starts, ends, indexing="ij")
    ok = (e >= s) & (e - s + 1 <= max_answer_length)
    if not ok.any():
        return None
    score = np.where(ok, start_logits[s] + end_logits[e], -np.inf)
    # Highest score; on ties the smallest start, then the smallest end.
    flat = np.lexsort((e.ravel(), s.ravel(), -score.ravel()))[0]
    return int(s.ravel()[flat]), int(e.ravel()[flat]), float(score.ravel()[flat])


def decode_example(
    context: str,
    windows: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    n_best: int = 20,
    max_answer_length: int = 30,
) -> str:
    """The answer string of one example from the logits of all its windows.

    `windows` holds, per window (feature), (start_logits, end_logits, char_offsets) where char_offsets is an
    (L, 2) array of [start, end) character offsets into `context` for context tokens and -1 for every other token
    (question, special tokens, padding). The best-scoring span over all windows is mapped back to the context's
    characters; without any allowed span the prediction is the empty string.
    """
    best: tuple[float, int, int] | None = None  # (score, char_start, char_end)
    for start_logits, end_logits, offsets in windows:
        offsets = np.asarray(offsets)
        n = min(len(start_logits), len(offsets))
        span = best_span(start_logits[:n], end_logits[:n], offsets[:n, 0] >= 0, n_best, max_answer_length)
        if span is None:
            continue
        s, e, score = span
        if best is None or score > best[0]:
            best = (score, int(offsets[s, 0]), int(offsets[e, 1]))
    return "" if best is None else context[best[1] : best[2]]
