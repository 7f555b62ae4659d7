"""The round loop (in process, or this rank's share under the distributed backend): select clients, run local
updates, aggregate with the algorithm, evaluate on a schedule, checkpoint and resume."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from ..algorithms.base import Algorithm, AlgorithmError, ClientContext, ClientUpdates, RunInfo, ServerRound
from ..algorithms.compat import refuse_incompatible
from ..algorithms.registry import LoadedAlgorithm, load_algorithm, parse_args, upload_vectors
from ..errors import UserError
from ..tasks.base import Task
from ..tuning import frozen_digest, parameter_counts
from .attacks import Attack
from .checkpoint import (Checkpoint, Interrupted, StopFlag, load_checkpoint, load_payload, restore_rng, rng_states,
                         save_checkpoint, save_payload)
from .client import ClientConfig, client_update
from .client_state import ClientStates, remove_other_shards
from .continual import ContinualStreams
from .distributed import RankInfo
from .params import FlatParams
from .privacy import ClientDP, clip_delta, server_noise
from .selection import select_clients
from .strategies import ServerConfig


@dataclass
class FLConfig:
    algorithm: str  # a built-in name, module:Class or an installed plug-in's name (algorithms/registry.py)
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
    algorithm_args: dict[str, Any] = field(default_factory=dict)  # typed by the algorithm's Args (text or values)
    attack: Attack | None = None  # simulated attacking clients (fl/attacks.py)


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
    attack: dict | None = None  # the simulated attack: kind, fraction, scale and the attacking clients
    tuning: dict | None = None  # --peft / --freeze: trainable and total parameters, the frozen base's digest


def tuning_record(task: Task, model: torch.nn.Module, ranks: RankInfo | None = None) -> dict[str, Any] | None:
    """Trainable and total parameters and the frozen base's digest when the run tunes part of the model (None
    otherwise). The frozen part is not in the flat vector that syncs, so with `ranks` its digest must agree on
    every rank."""
    if not task.tuning.active:
        return None
    digest = frozen_digest(model)
    if ranks is not None and not ranks.same_on_every_rank(int(digest, 16) % 2**62):
        raise UserError("the frozen base model differs between ranks (its weights are not synchronised)",
                        "give every rank the same model files and torch version")
    return {**parameter_counts(model), "frozen_digest": digest}


def client_seed(seed: int, round_idx: int, client: int) -> int:
    return int(np.random.SeedSequence([seed, round_idx, client]).generate_state(1)[0])


def make_algorithm(cfg: FLConfig, num_clients: int, device: torch.device) -> tuple[LoadedAlgorithm, Algorithm]:
    """The run's algorithm, built from its spec and arguments; settings it cannot run with are one UserError."""
    loaded = load_algorithm(cfg.algorithm)
    args = parse_args(loaded, cfg.algorithm_args)
    refuse_incompatible(loaded.cls, loaded.spec, client_dp=cfg.dp is not None,
                        example_dp=cfg.client.dp_sgd_clip is not None, weighting=cfg.weighting)
    info = RunInfo(num_clients=num_clients, clients_per_round=cfg.clients_per_round, rounds=cfg.rounds, seed=cfg.seed,
                   client=cfg.client, server=cfg.server, weighting=cfg.weighting, device=device,
                   client_dp=cfg.dp is not None)
    algorithm = loaded.cls(args, info)
    try:
        algorithm.check()
    except AlgorithmError as exc:
        raise UserError(f"--algorithm {loaded.spec}: {exc}") from None
    return loaded, algorithm


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


class RoundSums:
    """One round's float64 sums of the clients' contributions: the declared vectors in one buffer and, in `stats`,
    the loss sum, the count of clients trained, the stop flag and the declared scalars; one all_reduce each."""

    def __init__(self, algorithm: Algorithm, numel: int, device: torch.device) -> None:
        self.algorithm, self.numel = algorithm, numel
        self.buffer = torch.zeros(len(algorithm.vectors) * numel, dtype=torch.float64, device=device)
        self.vectors = {name: self.buffer[i * numel:(i + 1) * numel] for i, name in enumerate(algorithm.vectors)}
        self.stats = torch.zeros(3 + len(algorithm.scalars), dtype=torch.float64, device=device)

    def add(self, contribution, train_loss: float) -> None:
        """Add one client's Contribution (its vectors times their weights) and its training loss."""
        name = self.algorithm.name
        for key, vector in contribution.vectors.items():
            if key not in self.vectors:
                raise AlgorithmError(f"{name}: client_end uploads a vector '{key}' not declared in `vectors`")
            if vector.shape != (self.numel,):
                raise AlgorithmError(f"{name}: vector '{key}' has shape {tuple(vector.shape)}, not ({self.numel},)")
            self.vectors[key].add_(vector, alpha=contribution.weights.get(key, 1.0))
        for key, value in contribution.scalars.items():
            if key not in self.algorithm.scalars:
                raise AlgorithmError(f"{name}: client_end uploads a scalar '{key}' not declared in `scalars`")
            self.stats[3 + self.algorithm.scalars.index(key)] += value
        self.stats[0] += train_loss
        self.stats[1] += 1

    def scalars(self) -> dict[str, float]:
        values = self.stats.cpu().tolist()
        return {name: values[3 + i] for i, name in enumerate(self.algorithm.scalars)}


def dp_upload(upload, delta: torch.Tensor) -> bool:
    """Whether an upload is exactly the clipped delta with weight 1: what the DP-FedAvg accounting assumes."""
    return (set(upload.vectors) == {"delta"} and upload.vectors["delta"] is delta
            and upload.weights.get("delta", 1.0) == 1.0 and upload.scalars == {"weight": 1.0})


def gather_updates(ranks: RankInfo, rows: list[tuple[int, torch.Tensor, float]], numel: int,
                   dtype: torch.dtype, device: torch.device) -> ClientUpdates:
    """Every client's uploaded delta of the round, from every rank, sorted by client id."""
    ids = torch.tensor([c for c, _, _ in rows], dtype=torch.int64, device=device)
    deltas = torch.stack([d for _, d, _ in rows]) if rows else torch.zeros((0, numel), dtype=dtype, device=device)
    weights = torch.tensor([w for _, _, w in rows], dtype=torch.float64, device=device)
    ids, deltas, weights = ranks.gather_rows(ids, deltas, weights)
    return ClientUpdates(clients=ids, deltas=deltas, weights=weights)


def run_federated(
    task: Task,
    train_parts: list[np.ndarray],
    cfg: FLConfig,
    device: torch.device,
    ranks: RankInfo | None = None,
    checkpointing: Checkpointing | None = None,
    stop: StopFlag | None = None,
    on_eval: Callable[[dict[str, Any], int], None] | None = None,
) -> RunOutput:
    """Run `cfg.rounds` rounds of FL over the clients' training ids; one working model for all clients.

    The algorithm (cfg.algorithm, algorithms/) supplies the client hooks and the server step. With `ranks` from the
    distributed backend, this process trains its share of each round's clients and the sums are all_reduced;
    every rank applies the same server step. Rank 0 evaluates and checkpoints (every rank writes its clients'
    state, when the algorithm keeps any); after each evaluation it calls `on_eval(curve point, bytes the round's
    clients uploaded)`.
    """
    ranks = ranks or RankInfo(device=device)
    start = time.perf_counter()
    loaded, algorithm = make_algorithm(cfg, len(train_parts), device)
    model = algorithm.wrap_model(task.new_model(cfg.seed)).to(device)
    flat = FlatParams(model)
    global_w = flat.get()
    algorithm.start(global_w)
    out = RunOutput(num_parameters=flat.numel, upload_bytes=flat.nbytes * upload_vectors(loaded.cls),
                    tuning=tuning_record(task, model, ranks))
    frozen = out.tuning["frozen_digest"] if out.tuning else None
    train_model = torch.compile(model, dynamic=True) if cfg.compile else model
    states = ClientStates() if algorithm.client_state else None
    attack = cfg.attack.choose(len(train_parts)) if cfg.attack is not None else None
    out.attack = attack.record() if attack is not None else None
    first, offset = 1, 0.0
    if checkpointing and checkpointing.resume:
        ckpt = load_checkpoint(checkpointing.folder, checkpointing.key, checkpointing.settings)
        if ckpt is not None:
            if ckpt.frozen_digest != frozen:
                raise UserError(f"the frozen base model differs from the one checkpoint {checkpointing.folder} was "
                                f"trained on (digest {frozen} here, {ckpt.frozen_digest} there)",
                                f"resume with the same model weights, or delete {checkpointing.folder}")
            global_w = ckpt.global_weights.to(device=device, dtype=global_w.dtype)
            algorithm.load_state_dict(ckpt.server_state)
            if states is not None:
                if ckpt.client_shards is None:
                    raise UserError(f"checkpoint in {checkpointing.folder} holds no per-client state, which "
                                    f"--algorithm {loaded.spec} keeps", f"delete {checkpointing.folder} to start again")
                states.load_shards(checkpointing.folder, int(ckpt.client_shards["round"]),
                                   int(ckpt.client_shards["world"]), ranks.rank, ranks.world, load_payload)
            restore_rng(ckpt.rng)
            out.curve, first, offset = list(ckpt.curve), ckpt.round + 1, ckpt.wall_time_s
            out.resumed_from = ckpt.round
            if ckpt.curve:
                out.final = ckpt.curve[-1]["metrics"]
    saved_round = None

    def write_checkpoint(r: int) -> Path | None:
        """Every rank writes its clients' state (if any), then rank 0 the checkpoint that names those shards."""
        nonlocal saved_round
        if not checkpointing:
            return None
        saved_round = r
        shards = None
        if states is not None:
            states.save_shard(checkpointing.folder, r, ranks.rank, save_payload)
            ranks.barrier()
            shards = {"round": r, "world": ranks.world}
        if not ranks.is_main:
            return None
        path = save_checkpoint(checkpointing.folder, Checkpoint(
            round=r, rounds=cfg.rounds, key=checkpointing.key, global_weights=global_w,
            server_state=algorithm.state_dict(), curve=out.curve, rng=rng_states(),
            wall_time_s=offset + time.perf_counter() - start, settings=checkpointing.settings, client_shards=shards,
            frozen_digest=frozen))
        if states is not None:
            remove_other_shards(checkpointing.folder, r)
        return path

    bar = tqdm(range(first, cfg.rounds + 1), desc=f"{task.name} {cfg.algorithm}", unit="round",
               disable=not (cfg.progress and ranks.is_main), initial=first - 1, total=cfg.rounds)
    held = train_parts

    def candidate_losses(pool: np.ndarray) -> np.ndarray:
        flat.set_(global_w)
        return client_losses(task, model, held, pool, device, batch_size=cfg.client.batch_size)

    def global_loss(ids: np.ndarray):
        """ClientContext.loss_at_global: the working model holds the global weights when client_begin runs."""
        return lambda: float(client_losses(task, model, [ids], np.zeros(1, dtype=int), device, max_examples=len(ids),
                                           batch_size=cfg.client.batch_size)[0])

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
        sums = RoundSums(algorithm, flat.numel, device)
        uploads: list[tuple[int, torch.Tensor, float]] = []
        for c in ranks.my_clients(chosen, pinned=states is not None):
            c = int(c)
            ids = held[c]
            ctx = ClientContext(client=c, round=r, seed=client_seed(cfg.seed, r, c), global_weights=global_w,
                                lr=cfg.client.lr, num_examples=len(ids), num_batches=0,
                                state=states.get(c, device) if states is not None else {},
                                _loss=global_loss(ids) if algorithm.needs_global_loss else None)
            res = client_update(task, train_model, flat, global_w, ids, cfg.client, device, ctx.seed, algorithm, ctx)
            delta = attack.apply(res.delta, c, r) if attack is not None else res.delta
            if cfg.dp is not None:  # every client counts 1 and moves the sum by at most the clip norm
                delta, ctx.weight = clip_delta(delta, cfg.dp.clip)[0], 1.0
            else:
                ctx.weight = aggregation_weight(cfg.weighting, res.num_examples, res.num_batches)
            upload = algorithm.client_end(ctx, delta)
            if cfg.dp is not None and not dp_upload(upload, delta):
                raise AlgorithmError(f"{loaded.spec}: under client-level DP client_end must return "
                                     "Contribution.weighted_delta(delta, ctx.weight) (the clipped delta, weight 1)")
            sums.add(upload, res.train_loss)
            if states is not None:
                states.put(c, ctx.state)
            if algorithm.gather_updates:
                uploads.append((c, delta, float(ctx.weight)))
        sums.stats[2] = float(bool(stop and stop.requested))
        ranks.reduce_sum(*(t for t in (sums.buffer, sums.stats) if t.numel()))
        loss_sum, trained, stopping = (float(x) for x in sums.stats[:3].cpu())
        scalars = sums.scalars()
        if cfg.dp is not None:
            sums.vectors["delta"].add_(server_noise(flat.numel, cfg.dp, cfg.seed, r, device))
            scalars["weight"] = float(len(chosen))
        updates = gather_updates(ranks, uploads, flat.numel, global_w.dtype, device) if algorithm.gather_updates \
            else None
        if len(chosen):  # continual: before any data has arrived nobody trains and the model stays
            new_w = algorithm.aggregate(ServerRound(round=r, global_weights=global_w, sums=sums.vectors,
                                                    scalars=scalars, num_clients=int(trained), updates=updates))
            if not isinstance(new_w, torch.Tensor) or new_w.shape != global_w.shape or new_w.dtype != global_w.dtype:
                raise AlgorithmError(f"{loaded.spec}: aggregate() must return a {global_w.dtype} tensor of shape "
                                     f"{tuple(global_w.shape)}")
            global_w = new_w
        if ranks.is_main and (r % cfg.eval_every == 0 or r == cfg.rounds):
            flat.set_(global_w)
            preds, metrics = evaluate(task, model, device)
            out.curve.append({"round": r, "metrics": metrics, "train_loss": loss_sum / max(trained, 1),
                              "clients": [int(c) for c in chosen],
                              "wall_time_s": offset + time.perf_counter() - start})
            out.predictions, out.final = preds, metrics
            bar.set_postfix({task.primary_metric: f"{metrics[task.primary_metric]:.3f}"})
            if on_eval is not None:
                on_eval(out.curve[-1], out.upload_bytes * int(trained))
        path = None
        if checkpointing and checkpointing.every and (r % checkpointing.every == 0 or r == cfg.rounds):
            path = write_checkpoint(r)
        if stopping and r < cfg.rounds:
            if saved_round != r:  # this round's periodic checkpoint, when there was one, holds it
                path = write_checkpoint(r)
            ranks.barrier()
            raise Interrupted(r, path)
    if ranks.is_main and out.predictions is None:  # resumed from the last round's checkpoint
        flat.set_(global_w)
        out.predictions, out.final = evaluate(task, model, device)
    out.weights = global_w
    out.wall_time_s = offset + time.perf_counter() - start
    return out
