"""The in-process round loop: sample clients, run local updates, aggregate, evaluate on a schedule."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..tasks.base import Task
from .checkpoint import Checkpoint, Interrupted, StopFlag, load_checkpoint, restore_rng, rng_states, save_checkpoint
from .client import ClientConfig, client_update
from .continual import ContinualStreams
from .distributed import RankInfo
from .params import FlatParams
from .privacy import ClientDP, clip_delta, server_noise
from .selection import select_clients
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
    compile: bool = False  # torch.compile the model for local training
    selection: str = "uniform"  # uniform | activity | power_of_choice (fl/selection.py)
    selection_candidates: int | None = None  # power_of_choice: d candidates (default 2 * clients_per_round)
    dp: ClientDP | None = None  # client-level DP-FedAvg: clip deltas, noise the sum, fixed denominator K
    streams: ContinualStreams | None = None  # continual data: what each client holds changes every round


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
    resumed_from: int | None = None  # the checkpoint round this process started after
    client_steps: dict[int, dict[int, int]] = field(default_factory=dict)  # DP-SGD: client -> {examples held: steps}
    early_stopping: dict | None = None  # the converged centralized reference: epochs run, best epoch, validation


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


@dataclass
class Checkpointing:
    """Where and how often the round loop checkpoints; `resume` loads the latest checkpoint first."""

    folder: Path
    key: str
    every: int = 0  # 0: only on SIGTERM; k: after every k-th round and the last
    resume: bool = False
    settings: dict | None = None  # the settings behind `key` (written to checkpoint.json, named when they differ)


def choose_clients(cfg: FLConfig, activity: np.ndarray, round_idx: int, losses) -> np.ndarray:
    """The round's clients; with continual data only clients holding examples can be chosen (K shrinks to them)."""
    if cfg.streams is None:
        return select_clients(cfg.selection, activity, cfg.clients_per_round, cfg.seed, round_idx,
                              cfg.selection_candidates, losses)
    active = np.flatnonzero(activity)
    k = min(cfg.clients_per_round, len(active))
    if k == 0:
        return active
    if cfg.selection == "uniform":
        return active[select_clients("uniform", activity[active], k, cfg.seed, round_idx)]
    candidates = None if cfg.selection_candidates is None else min(cfg.selection_candidates, len(active))
    return select_clients(cfg.selection, activity, k, cfg.seed, round_idx, candidates, losses)


def count_local_steps(steps: dict[int, dict[int, int]], chosen: np.ndarray, held: list[np.ndarray],
                      client: ClientConfig) -> None:
    """DP-SGD accounting: add each chosen client's local steps (its num_batches), keyed by the examples it held."""
    for c in chosen:
        n = len(held[c])
        if n:
            by_n = steps.setdefault(int(c), {})
            by_n[n] = by_n.get(n, 0) + client.local_epochs * math.ceil(n / client.batch_size)


@torch.no_grad()
def client_losses(task: Task, model: torch.nn.Module, parts: list[np.ndarray], pool: np.ndarray,
                  device: torch.device, max_examples: int = 64, batch_size: int = 32) -> np.ndarray:
    """Mean loss of the model as it is (the global model) on up to `max_examples` of each pooled client's data."""
    model.eval()
    out = []
    for c in pool:
        ids = parts[c][:max_examples]
        total = 0.0
        for i in range(0, len(ids), batch_size):
            idx = ids[i : i + batch_size]
            batch = {k: v.to(device) for k, v in task.batch("train", idx).items()}
            total += float(task.loss(model, batch)) * len(idx)
        out.append(total / max(1, len(ids)))
    return np.asarray(out)


def run_federated(
    task: Task,
    train_parts: list[np.ndarray],
    cfg: FLConfig,
    device: torch.device,
    ranks: RankInfo | None = None,
    checkpointing: Checkpointing | None = None,
    stop: StopFlag | None = None,
) -> RunOutput:
    """Run `cfg.rounds` rounds of FL over the clients' training ids; one working model for all clients.

    With `ranks` from the distributed backend, this process trains its share of each round's clients and
    the sums are all_reduced; every rank applies the same server step. Rank 0 evaluates and checkpoints.
    """
    ranks = ranks or RankInfo(device=device)
    start = time.perf_counter()
    model = task.new_model(cfg.seed).to(device)
    flat = FlatParams(model)
    global_w = flat.get()
    strategy = make_strategy(cfg.algorithm, global_w, cfg.server)
    out = RunOutput(num_parameters=flat.numel, upload_bytes=flat.nbytes)
    train_model = torch.compile(model, dynamic=True) if cfg.compile else model
    first, offset = 1, 0.0
    if checkpointing and checkpointing.resume:
        ckpt = load_checkpoint(checkpointing.folder, checkpointing.key, checkpointing.settings)
        if ckpt is not None:
            global_w = ckpt.global_weights.to(device=device, dtype=global_w.dtype)
            strategy.load_state_dict(ckpt.server_state)
            restore_rng(ckpt.rng)
            out.curve, first, offset = list(ckpt.curve), ckpt.round + 1, ckpt.wall_time_s
            out.resumed_from = ckpt.round
            if ckpt.curve:
                out.final = ckpt.curve[-1]["metrics"]

    def write_checkpoint(r: int) -> Path | None:
        if not (checkpointing and ranks.is_main):
            return None
        return save_checkpoint(checkpointing.folder, Checkpoint(
            round=r, rounds=cfg.rounds, key=checkpointing.key, global_weights=global_w,
            server_state=strategy.state_dict(), curve=out.curve, rng=rng_states(),
            wall_time_s=offset + time.perf_counter() - start, settings=checkpointing.settings))

    bar = tqdm(range(first, cfg.rounds + 1), desc=f"{task.name} {cfg.algorithm}", unit="round",
               disable=not (cfg.progress and ranks.is_main), initial=first - 1, total=cfg.rounds)
    held = train_parts

    def candidate_losses(pool: np.ndarray) -> np.ndarray:
        flat.set_(global_w)
        return client_losses(task, model, held, pool, device, batch_size=cfg.client.batch_size)

    dp_sgd = cfg.client.dp_sgd_clip is not None  # counted on every rank; resumed: replay the (uniform) selection
    for r in range(1, first) if dp_sgd else ():
        held_r = [cfg.streams.held(c, r) for c in range(len(train_parts))] if cfg.streams is not None else held
        count_local_steps(out.client_steps, choose_clients(cfg, np.array([len(p) for p in held_r]), r, None), held_r,
                          cfg.client)
    for r in bar:
        if cfg.streams is not None:  # continual: this round's data, and selection reads this round's activity
            held = [cfg.streams.held(c, r) for c in range(len(train_parts))]
        chosen = choose_clients(cfg, np.array([len(p) for p in held]), r, candidate_losses)
        if dp_sgd:
            count_local_steps(out.client_steps, chosen, held, cfg.client)
        # float64 sums: the aggregate does not depend on how clients are split over ranks or ordered
        acc = torch.zeros_like(global_w, dtype=torch.float64)
        # weight sum, loss sum, clients trained, stop requests: summed over ranks with the deltas
        stats = torch.zeros(4, dtype=torch.float64, device=device)
        for c in ranks.my_clients(chosen):
            res = client_update(task, train_model, flat, global_w, held[c], cfg.client, device,
                                client_seed(cfg.seed, r, int(c)))
            if cfg.dp is not None:  # every client counts 1 and moves the sum by at most the clip norm
                delta, w = clip_delta(res.delta, cfg.dp.clip)[0], 1.0
            else:
                delta, w = res.delta, aggregation_weight(cfg.weighting, res.num_examples, res.num_batches)
            acc.add_(delta, alpha=w)
            stats[0] += w
            stats[1] += res.train_loss
            stats[2] += 1
        stats[3] = float(bool(stop and stop.requested))
        ranks.reduce_sum(acc, stats)
        total_w, loss_sum, trained, stopping = (float(x) for x in stats.cpu())
        if cfg.dp is not None:
            acc.add_(server_noise(acc.numel(), cfg.dp, cfg.seed, r, device))
            total_w = float(len(chosen))
        if len(chosen):  # continual: before any data has arrived nobody trains and the model stays
            global_w = strategy.step(global_w, (acc / total_w).to(global_w.dtype))
        if ranks.is_main and (r % cfg.eval_every == 0 or r == cfg.rounds):
            flat.set_(global_w)
            preds, metrics = evaluate(task, model, device)
            out.curve.append({"round": r, "metrics": metrics, "train_loss": loss_sum / max(trained, 1),
                              "clients": [int(c) for c in chosen],
                              "wall_time_s": offset + time.perf_counter() - start})
            out.predictions, out.final = preds, metrics
            bar.set_postfix({task.primary_metric: f"{metrics[task.primary_metric]:.3f}"})
        path = None
        if checkpointing and checkpointing.every and (r % checkpointing.every == 0 or r == cfg.rounds):
            path = write_checkpoint(r)
        if stopping and r < cfg.rounds:
            path = path or write_checkpoint(r)  # this round's periodic checkpoint, when there was one, holds it
            ranks.barrier()
            raise Interrupted(r, path)
    if ranks.is_main and out.predictions is None:  # resumed from the last round's checkpoint
        flat.set_(global_w)
        out.predictions, out.final = evaluate(task, model, device)
    out.weights = global_w
    out.wall_time_s = offset + time.perf_counter() - start
    return out
