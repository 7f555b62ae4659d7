"""Centralized baseline: the same model and data, trained on the union of all clients' data."""
from __future__ import annotations

import math
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from ..tasks.base import Task
from .client import ClientConfig, batch_order, train_steps
from .params import FlatParams
from .simulation import RunOutput, evaluate


def fl_equivalent_passes(rounds: int, local_epochs: int, clients_per_round: int, clients: int) -> float:
    """Passes over the training data an FL run makes on average: R * E * K / C."""
    return rounds * local_epochs * clients_per_round / clients


def run_centralized(
    task: Task, passes: float, client: ClientConfig, device: torch.device, seed: int = 42, progress: bool = True,
    compile: bool = False,
) -> RunOutput:
    """Train for `passes` passes (fractional allowed) over all training data; evaluate after each pass."""
    start = time.perf_counter()
    model = task.new_model(seed).to(device)
    flat = FlatParams(model)
    train_model = torch.compile(model, dynamic=True) if compile else model
    out = RunOutput(num_parameters=flat.numel, upload_bytes=0)
    n = task.num_examples("train")
    ids = np.arange(n)
    steps_per_pass = math.ceil(n / client.batch_size)
    total_steps = max(1, round(passes * steps_per_pass))
    rng = np.random.default_rng([seed, 0xCE])
    torch.manual_seed(seed)
    epochs = math.ceil(total_steps / steps_per_pass)
    bar = tqdm(range(1, epochs + 1), desc=f"{task.name} centralized", unit="pass", disable=not progress)
    done = 0
    for epoch in bar:
        batches = batch_order(ids, client.batch_size, 1, rng)[: total_steps - done]
        loss = train_steps(task, train_model, flat, batches, client, device,
                           seed=int(np.random.SeedSequence([seed, epoch, 0xCE]).generate_state(1)[0]))
        done += len(batches)
        preds, metrics = evaluate(task, model, device)
        out.curve.append({"round": epoch, "passes": done / steps_per_pass, "metrics": metrics, "train_loss": loss,
                          "wall_time_s": time.perf_counter() - start})
        out.predictions, out.final = preds, metrics
        bar.set_postfix({task.primary_metric: f"{metrics[task.primary_metric]:.3f}"})
    if client.dp_sgd_clip is not None:  # DP-SGD accounting: one data holder, `done` steps at rate B/n
        out.client_steps = {0: {n: done}}
    out.weights = flat.get()
    out.wall_time_s = time.perf_counter() - start
    return out
