"""The task-adapter interface every task family implements; the FL code sees only this."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch

from ..tuning import Tuning, apply_tuning


class Task(ABC):
    """Tokenized data plus model head, batching, loss, prediction and metrics for one task family."""

    name: str
    family: str
    metric_names: tuple[str, ...]
    primary_metric: str
    source: Any  # tasks.models.ModelSource: where the weights and tokenizer come from
    labels: dict[str, np.ndarray]  # the label-skew label of every example, by split ('train', 'test')

    @property
    def model_name(self) -> str:
        """The model's display name (recorded in every result)."""
        return self.source.name

    def num_examples(self, split: str) -> int:
        """Number of examples in 'train' or 'test'."""
        return len(self.labels[split])

    def skew_labels(self, split: str) -> np.ndarray:
        """Integer label per example used by label-skew partitioners."""
        return self.labels[split]

    tuning: Tuning = Tuning()  # the run's (LoRA, BitFit, freezing, ...; set per run); the default: full fine-tuning

    def new_model(self, seed: int) -> torch.nn.Module:
        """A fresh model with the task head and the run's tuning applied (same seed, same initial weights)."""
        model = self.base_model(seed)
        if not self.tuning.active:
            return model
        return apply_tuning(model, self.tuning, self.family, seed, getattr(self, "max_length", None))

    @abstractmethod
    def base_model(self, seed: int) -> torch.nn.Module:
        """A fresh model with the task head, every parameter trainable (same seed, same initial weights)."""

    @abstractmethod
    def batch(self, split: str, indices: np.ndarray) -> dict[str, torch.Tensor]:
        """A padded training/eval batch of the given example ids."""

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean training loss of a batch (HF models compute it from `labels`)."""
        return model(**batch).loss

    @abstractmethod
    def predict(self, model: torch.nn.Module, split: str, device: torch.device, batch_size: int = 128) -> Any:
        """Predictions for every example of the split, in example order."""

    @abstractmethod
    def metrics(self, predictions: Any, split: str, indices: np.ndarray | None = None) -> dict[str, float]:
        """Named metrics of the predictions, optionally restricted to some example ids."""

    def sorted_eval_order(self, lengths: np.ndarray) -> np.ndarray:
        """Example ids sorted by length so eval batches pad little."""
        return np.argsort(lengths, kind="stable")
