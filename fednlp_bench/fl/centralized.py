"""Centralized baselines: the same model trained on the union of all clients' data, either for a fixed number of
passes (the same budget as an FL run) or to convergence (early stopping on a held-out validation split)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from ..tasks.base import Task
from .client import ClientConfig, batch_order, train_steps
from .params import FlatParams
from .simulation import RunOutput, evaluate, tuning_record


def fl_equivalent_passes(rounds: int, local_epochs: int, clients_per_round: int, clients: int) -> float:
    """Passes over the training data an FL run makes on average: R * E * K / C."""
    return rounds * local_epochs * clients_per_round / clients


def _start(task: Task, seed: int, device: torch.device, compile: bool):
    """(model, its flat parameters, the model to train, the batch-order generator) of a centralized run."""
    model = task.new_model(seed).to(device)
    flat = FlatParams(model)
    train_model = torch.compile(model, dynamic=True) if compile else model
    rng = np.random.default_rng([seed, 0xCE])
    torch.manual_seed(seed)
    return model, flat, train_model, rng


def _train_pass(task: Task, train_model, flat: FlatParams, client: ClientConfig, device: torch.device,
                rng: np.random.Generator, seed: int, epoch: int, limit: int | None = None) -> tuple[float, int]:
    """One shuffled pass over the training data (its first `limit` batches); (mean loss, steps taken)."""
    batches = batch_order(np.arange(task.num_examples("train")), client.batch_size, 1, rng)
    if limit is not None:
        batches = batches[:limit]
    loss = train_steps(task, train_model, flat, batches, client, device,
                       seed=int(np.random.SeedSequence([seed, epoch, 0xCE]).generate_state(1)[0]))
    return loss, len(batches)


def run_centralized(
    task: Task, passes: float, client: ClientConfig, device: torch.device, seed: int = 42, progress: bool = True,
    compile: bool = False, on_eval: Callable[[dict[str, Any]], None] | None = None,
) -> RunOutput:
    """Train for `passes` passes (fractional allowed) over all training data; evaluate after each pass and pass its
    curve point to `on_eval`."""
    start = time.perf_counter()
    model, flat, train_model, rng = _start(task, seed, device, compile)
    out = RunOutput(num_parameters=flat.numel, upload_bytes=0, tuning=tuning_record(task, model))
    n = task.num_examples("train")
    steps_per_pass = math.ceil(n / client.batch_size)
    total_steps = max(1, round(passes * steps_per_pass))
    epochs = math.ceil(total_steps / steps_per_pass)
    bar = tqdm(range(1, epochs + 1), desc=f"{task.name} centralized", unit="pass", disable=not progress)
    done = 0
    for epoch in bar:
        loss, steps = _train_pass(task, train_model, flat, client, device, rng, seed, epoch, total_steps - done)
        done += steps
        preds, metrics = evaluate(task, model, device)
        out.curve.append({"round": epoch, "passes": done / steps_per_pass, "metrics": metrics, "train_loss": loss,
                          "wall_time_s": time.perf_counter() - start})
        out.predictions, out.final = preds, metrics
        bar.set_postfix({task.primary_metric: f"{metrics[task.primary_metric]:.3f}"})
        if on_eval is not None:
            on_eval(out.curve[-1])
    if client.dp_sgd_clip is not None:  # DP-SGD accounting: one data holder, `done` steps at rate B/n
        out.client_steps = {0: {n: done}}
    out.weights = flat.get()
    out.wall_time_s = time.perf_counter() - start
    return out


@dataclass
class EarlyStopping:
    """Train up to `max_epochs` passes; stop after `patience` epochs without a better validation metric."""

    max_epochs: int
    patience: int
    higher_is_better: bool = True


def best_epoch(values: list[float], higher_is_better: bool = True) -> int:
    """1-based epoch of the best validation value (the first one on ties)."""
    best = 0
    for i, v in enumerate(values):
        if (v > values[best]) if higher_is_better else (v < values[best]):
            best = i
    return best + 1


def run_centralized_converged(
    task: Task, validation: Task, stopping: EarlyStopping, client: ClientConfig, device: torch.device, seed: int = 42,
    progress: bool = True, compile: bool = False, on_eval: Callable[[dict[str, Any]], None] | None = None,
) -> RunOutput:
    """The converged reference: one pass per epoch over `task`'s training data, the primary metric measured on
    `validation` (held-out training examples) after each; stops after `stopping.patience` epochs without
    improvement (or at `max_epochs`), restores the best epoch's weights and evaluates them once on the test split.
    Each epoch's curve point goes to `on_eval`.

    The curve holds the validation metrics of every epoch (`"split": "validation"`); `final` and `predictions` are
    the best epoch's test results; `early_stopping` records epochs run, the best epoch and its validation metrics.
    """
    start = time.perf_counter()
    model, flat, train_model, rng = _start(task, seed, device, compile)
    out = RunOutput(num_parameters=flat.numel, upload_bytes=0, tuning=tuning_record(task, model))
    n = task.num_examples("train")
    metric = task.primary_metric
    history: list[float] = []
    best_weights, steps = flat.get(), 0
    bar = tqdm(range(1, stopping.max_epochs + 1), desc=f"{task.name} centralized (early stopping)", unit="epoch",
               disable=not progress)
    for epoch in bar:
        loss, taken = _train_pass(task, train_model, flat, client, device, rng, seed, epoch)
        steps += taken
        _, val = evaluate(validation, model, device)
        history.append(float(val[metric]))
        out.curve.append({"round": epoch, "passes": float(epoch), "split": "validation", "metrics": val,
                          "train_loss": loss, "wall_time_s": time.perf_counter() - start})
        if on_eval is not None:
            on_eval(out.curve[-1])
        best = best_epoch(history, stopping.higher_is_better)
        if best == epoch:
            best_weights = flat.get()
        bar.set_postfix({f"val {metric}": f"{val[metric]:.3f}", "best epoch": best})
        if epoch - best >= stopping.patience:
            break
    flat.set_(best_weights)
    out.predictions, out.final = evaluate(task, model, device)
    best = best_epoch(history, stopping.higher_is_better)
    out.early_stopping = {"monitor": f"validation {metric}", "max_epochs": stopping.max_epochs,
                          "patience": stopping.patience, "epochs_run": len(history), "best_epoch": best,
                          "best_validation": out.curve[best - 1]["metrics"],
                          "validation_examples": validation.num_examples("test"), "train_examples": n}
    if client.dp_sgd_clip is not None:
        out.client_steps = {0: {n: steps}}
    out.weights = flat.get()
    out.wall_time_s = time.perf_counter() - start
    return out
