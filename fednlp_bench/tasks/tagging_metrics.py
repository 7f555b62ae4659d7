"""Entity-level precision/recall/F1 (seqeval) and word accuracy for sequence tagging.

BIO and IOB1: seqeval's default conlleval-style chunking (an I- after O starts an entity, as in conlleval).
IOBES: seqeval strict mode with the IOBES scheme (only well-formed B..E / S chunks count as entities).
Micro averages over all entities; a set with no gold and no predicted entity scores 0 (seqeval, zero_division=0).
"""
from __future__ import annotations

import warnings
from typing import Sequence

METRIC_NAMES = ("precision", "recall", "f1", "accuracy")


def entity_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], scheme: str = "BIO") -> dict[str, float]:
    """{"precision", "recall", "f1", "accuracy"} of word-level tag sequences (accuracy: share of words tagged right)."""
    gold, pred = [list(s) for s in gold], [list(s) for s in pred]
    if len(gold) != len(pred) or any(len(g) != len(p) for g, p in zip(gold, pred)):
        raise ValueError("predictions and gold tags differ in shape")
    n_words = sum(len(s) for s in gold)
    if n_words == 0:
        return {name: float("nan") for name in METRIC_NAMES}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if scheme == "IOBES":
            from seqeval.metrics.v1 import precision_recall_fscore_support
            from seqeval.scheme import IOBES

            p, r, f, _ = precision_recall_fscore_support(gold, pred, average="micro", zero_division=0, scheme=IOBES)
        else:
            from seqeval.metrics.sequence_labeling import precision_recall_fscore_support

            p, r, f, _ = precision_recall_fscore_support(gold, pred, average="micro", zero_division=0)
    correct = sum(a == b for g, q in zip(gold, pred) for a, b in zip(g, q))
    return {"precision": float(p), "recall": float(r), "f1": float(f), "accuracy": correct / n_words}
