"""Empirical privacy: a loss-threshold membership-inference attack (Yeom et al. 2018) on a trained model.

The attacker guesses "member" when an example's loss is low. Its AUC over members (examples the model
trained on) and non-members (held-out examples of the same distribution) is 0.5 for a model that learned
nothing specific to its training data and approaches 1 as it memorises it.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from .tasks.base import Task


@torch.no_grad()
def example_losses(task: Task, model: torch.nn.Module, split: str, ids: np.ndarray, device: torch.device,
                   batch_size: int = 64) -> np.ndarray:
    """Per-example loss of `model` on `ids` of `split` (cross-entropy per example for classification,
    the task's own loss on one-example batches for the other families)."""
    own = getattr(task, "example_losses", None)
    if own is not None:  # an adapter with a batched per-example loss of its own (language modelling)
        return own(model, split, ids, device, batch_size=batch_size)
    model.eval()
    out: list[float] = []
    if task.family == "text_classification":
        for i in range(0, len(ids), batch_size):
            b = {k: v.to(device) for k, v in task.batch(split, ids[i : i + batch_size]).items()}
            logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
            out.extend(F.cross_entropy(logits.float(), b["labels"], reduction="none").tolist())
    else:
        for i in ids:
            b = {k: v.to(device) for k, v in task.batch(split, np.array([i])).items()}
            out.append(float(task.loss(model, b)))
    return np.asarray(out, dtype=np.float64)


def loss_threshold_auc(member_losses: np.ndarray, nonmember_losses: np.ndarray) -> float:
    """AUC of the attack that scores an example by its negative loss (members should score higher)."""
    y = np.r_[np.ones(len(member_losses)), np.zeros(len(nonmember_losses))]
    return float(roc_auc_score(y, -np.r_[member_losses, nonmember_losses]))


def membership_audit(task: Task, model: torch.nn.Module, member_ids: np.ndarray, device: torch.device,
                     max_examples: int = 500, seed: int = 0) -> dict[str, Any]:
    """Attack AUC on equal-sized seeded samples of members (training ids) and non-members (the test split)."""
    rng = np.random.default_rng([seed, 0x31A])
    test_ids = np.arange(task.num_examples("test"))
    m = int(min(max_examples, len(member_ids), len(test_ids)))
    members = np.sort(rng.choice(np.asarray(member_ids), size=m, replace=False))
    nonmembers = np.sort(rng.choice(test_ids, size=m, replace=False))
    ml = example_losses(task, model, "train", members, device)
    nl = example_losses(task, model, "test", nonmembers, device)
    return {"attack": "loss threshold (Yeom et al. 2018)", "auc": loss_threshold_auc(ml, nl), "members": m,
            "non_members": m, "member_loss_mean": float(ml.mean()), "non_member_loss_mean": float(nl.mean())}
