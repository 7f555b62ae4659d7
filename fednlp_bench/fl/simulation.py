"""The in-process round loop: sample clients, run local updates, aggregate, evaluate on a schedule."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ..tasks.base import Task
from .client import ClientConfig, client_update
from .params import FlatParams
from .sampling import sample_clients
from .strategies import FedAvg, FedOpt, ServerConfig


@dataclass
class FLConfig:
    algorithm: str
    rounds: int
    clients_per_round: int
    client: ClientConfig
    server: ServerConfig
    weighting: str = "examples"
    eval_every: int = 1
    seed: int = 42
    progress: bool = True


@dataclass
class RunOutput:
    """What a run produced, before it becomes a result record."""

    curve: list[dict] = field(default_factory=list)
    final: dict[str, float] = field(default_factory=dict)
    predictions: object = None
    weights: torch.Tensor | None = None
    wall_time_s: float = 0.0
    num_parameters: int = 0
    upload_bytes: int = 0


def client_seed(seed: int, round_idx: int, client: int) -> int:
    return int(np.random.SeedSequence([seed, round_idx, client]).generate_state(1)[0])


def make_strategy(algorithm: str, initial: torch.Tensor, server: ServerConfig):
    return FedOpt(initial, server) if algorithm == "fedopt" else FedAvg()


def aggregation_weight(weighting: str, num_examples: int, num_batches: int) -> float:
    return {"examples": num_examples, "batches": num_batches, "uniform": 1}[weighting]


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def evaluate(task: Task, model: torch.nn.Module, device: torch.device):
    preds = task.predict(model, "test", device)
    return preds, task.metrics(preds, "test")


def run_federated(task: Task, train_parts: list[np.ndarray], cfg: FLConfig, device: torch.device) -> RunOutput:
    """Run `cfg.rounds` rounds of FL over the clients' training ids; one working model for all clients."""
    start = time.perf_counter()
    model = task.new_model(cfg.seed).to(device)
    flat = FlatParams(model)
    global_w = flat.get()
    strategy = make_strategy(cfg.algorithm, global_w, cfg.server)
    out = RunOutput(num_parameters=flat.numel, upload_bytes=flat.nbytes)
    bar = tqdm(range(1, cfg.rounds + 1), desc=f"{task.name} {cfg.algorithm}", unit="round", disable=not cfg.progress)
    for r in bar:
        chosen = sample_clients(len(train_parts), cfg.clients_per_round, cfg.seed, r)
        acc = torch.zeros_like(global_w)
        total_w, losses = 0.0, []
        for c in chosen:
            res = client_update(task, model, flat, global_w, train_parts[c], cfg.client, device,
                                client_seed(cfg.seed, r, int(c)))
            w = aggregation_weight(cfg.weighting, res.num_examples, res.num_batches)
            acc.add_(res.delta, alpha=w)
            total_w += w
            losses.append(res.train_loss)
        global_w = strategy.step(global_w, acc / total_w)
        if r % cfg.eval_every == 0 or r == cfg.rounds:
            flat.set_(global_w)
            preds, metrics = evaluate(task, model, device)
            out.curve.append({"round": r, "metrics": metrics, "train_loss": float(np.mean(losses)),
                              "clients": [int(c) for c in chosen], "wall_time_s": time.perf_counter() - start})
            out.predictions, out.final = preds, metrics
            bar.set_postfix({task.primary_metric: f"{metrics[task.primary_metric]:.3f}"})
    out.weights = global_w
    out.wall_time_s = time.perf_counter() - start
    return out
