"""ROUGE-1/2/L F-measure (rouge-score, Porter stemmer), averaged over examples, reported as fractions 0..1."""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


@lru_cache(maxsize=1)
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


def rouge_per_example(predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """(n, 3) array of ROUGE-1/2/L F-measures of each prediction against its reference."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    scorer = _scorer()
    out = np.zeros((len(predictions), len(ROUGE_TYPES)), dtype=np.float64)
    for i, (pred, ref) in enumerate(zip(predictions, references)):
        scores = scorer.score(ref, pred)  # score(target, prediction)
        out[i] = [scores[t].fmeasure for t in ROUGE_TYPES]
    return out


def rouge(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L F-measure over examples, as fractions 0..1 (nan for no examples)."""
    if len(references) == 0:
        return {t: float("nan") for t in ROUGE_TYPES}
    mean = rouge_per_example(predictions, references).mean(axis=0)
    return {t: float(v) for t, v in zip(ROUGE_TYPES, mean)}
