"""Text classification adapter: tokenize once (cached), AutoModelForSequenceClassification, accuracy and macro-F1."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data import TextClassificationData
from .base import Task
from .models import build_model, load_tokenizer, resolve_model, tokenizer_hash
from .tokenized import cache_key, cached_tokenize


def accuracy_macro_f1(pred: np.ndarray, gold: np.ndarray, num_labels: int) -> dict[str, float]:
    """Accuracy and macro-F1 (labels absent from both gold and predictions are left out of the mean)."""
    if len(gold) == 0:
        return {"accuracy": float("nan"), "macro_f1": float("nan")}
    conf = np.bincount(gold * num_labels + pred, minlength=num_labels * num_labels).reshape(num_labels, num_labels)
    tp = np.diag(conf).astype(float)
    support, predicted = conf.sum(1), conf.sum(0)
    present = (support + predicted) > 0
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"accuracy": float(tp.sum() / len(gold)), "macro_f1": float(f1[present].mean())}


class TextClassificationTask(Task):
    """Sequence classification over a TextClassificationData."""

    family = "text_classification"
    metric_names = ("accuracy", "macro_f1")
    primary_metric = "accuracy"

    def __init__(
        self,
        data: TextClassificationData,
        model: str = "tiny",
        max_length: int = 128,
        cache_dir: Path | None = None,
        dropout: float | None = None,
    ) -> None:
        self.name = data.name
        self.data = data
        self.num_labels = len(data.label_names)
        self.max_length = max_length
        self.dropout = dropout
        self.source = resolve_model(model)
        self.tokenizer = load_tokenizer(self.source, data.train_texts, cache_dir)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        tok_hash = tokenizer_hash(self.tokenizer)
        self.splits = {}
        self.cache_hits = {}
        for split, texts in (("train", data.train_texts), ("test", data.test_texts)):
            key = cache_key(data.fingerprint, split, tok_hash, max_length)
            self.splits[split], self.cache_hits[split] = cached_tokenize(self.tokenizer, texts, max_length, cache_dir, key)
        self.labels = {"train": np.asarray(data.train_labels, np.int64), "test": np.asarray(data.test_labels, np.int64)}

    def base_model(self, seed: int) -> torch.nn.Module:
        from transformers import AutoModelForSequenceClassification

        return build_model(
            self.source,
            AutoModelForSequenceClassification,
            self.tokenizer,
            self.max_length,
            seed,
            dropout=self.dropout,
            num_labels=self.num_labels,
        )

    def batch(self, split: str, indices: np.ndarray) -> dict[str, torch.Tensor]:
        input_ids, mask = self.splits[split].pad_batch(np.asarray(indices), self.pad_id)
        return {"input_ids": input_ids, "attention_mask": mask, "labels": torch.from_numpy(self.labels[split][indices])}

    @torch.no_grad()
    def predict(self, model: torch.nn.Module, split: str, device: torch.device, batch_size: int = 128) -> np.ndarray:
        was_training = model.training
        model.eval()
        order = self.sorted_eval_order(self.splits[split].lengths)
        pred = np.empty(len(order), dtype=np.int64)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            b = self.batch(split, idx)
            logits = model(input_ids=b["input_ids"].to(device), attention_mask=b["attention_mask"].to(device)).logits
            pred[idx] = logits.argmax(-1).cpu().numpy()
        model.train(was_training)
        return pred

    def metrics(self, predictions: np.ndarray, split: str, indices: np.ndarray | None = None) -> dict[str, float]:
        gold = self.labels[split]
        if indices is not None:
            predictions, gold = predictions[indices], gold[indices]
        return accuracy_macro_f1(predictions, gold, self.num_labels)
