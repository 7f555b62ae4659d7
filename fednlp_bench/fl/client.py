"""Client update: E local epochs of SGD/AdamW on the client's ids, with the algorithm's client hooks (DP-SGD steps
and bf16 autocast when configured)."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

from ..tasks.base import Task
from . import dp_sgd
from .ghost_clipping import make_engine
from .params import FlatParams

if TYPE_CHECKING:
    from ..algorithms.base import Algorithm, ClientContext


@dataclass
class ClientConfig:
    """Local training settings shared by every client."""

    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 0.1
    local_epochs: int = 1
    batch_size: int = 32
    weight_decay: float = 0.0
    max_grad_norm: float | None = None
    precision: str = "fp32"  # fp32 | bf16 (autocast of the forward pass; meant for GPUs)
    dp_sgd_clip: float | None = None  # example-level DP-SGD: clip each example's gradient to this L2 norm (None: off)
    dp_sgd_noise_multiplier: float = 0.0  # DP-SGD noise std on the sum of clipped gradients = multiplier * clip


@dataclass
class ClientResult:
    delta: torch.Tensor  # global - local (the client's pseudo-gradient)
    num_examples: int
    num_batches: int
    train_loss: float


def make_optimizer(params: list[torch.nn.Parameter], cfg: ClientConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown client optimizer {cfg.optimizer!r}")


def autocast(device: torch.device, precision: str):
    """bf16 autocast of the forward pass when asked for; fp32 runs the plain path untouched."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def batch_order(ids: np.ndarray, batch_size: int, epochs: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled mini-batches of `ids` for `epochs` passes (the last batch of a pass may be smaller)."""
    batches = []
    for _ in range(epochs):
        perm = ids[rng.permutation(len(ids))]
        batches.extend(perm[i : i + batch_size] for i in range(0, len(perm), batch_size))
    return batches


def add_to_grads(flat: FlatParams, vector: torch.Tensor) -> None:
    """Add a flat vector to the trainable parameters' gradients (a parameter without a gradient gets its slice)."""
    for p, part in zip(flat.params, flat.split(vector)):
        if p.grad is None:
            p.grad = part.detach().clone()
        else:
            p.grad.add_(part)


def train_steps(
    task: Task,
    model: torch.nn.Module,
    flat: FlatParams,
    batches: list[np.ndarray],
    cfg: ClientConfig,
    device: torch.device,
    correction: Callable[[torch.Tensor], torch.Tensor | None] | None = None,
    seed: int = 0,
    grad_correction: Callable[[torch.Tensor], torch.Tensor | None] | None = None,
) -> float:
    """Run one optimizer step per batch; returns the mean training loss.

    An algorithm's corrections, both computed at the weights before the step (None: none that step):
    `grad_correction(w)` is added to the gradient before the optimizer step (after clipping and DP-SGD noise, which
    concern the data's gradient), e.g. SCAFFOLD's c - c_i; `correction(w)` is subtracted from the weights after the
    step, decoupled from the optimizer, e.g. FedProx's lr*mu*(w - w_global).
    With `cfg.dp_sgd_clip` each step's gradient is the DP-SGD one (fl/dp_sgd.py), its noise seeded by (seed, step).
    """
    model.train()
    opt = make_optimizer(flat.params, cfg)
    private = None
    if cfg.dp_sgd_clip is not None:
        dp_sgd.check_family(task)
        private = make_engine(task, model, flat.params, cfg.precision)
        dp = dp_sgd.ExampleDP(cfg.dp_sgd_clip, cfg.dp_sgd_noise_multiplier)
    total = 0.0
    for step, idx in enumerate(batches):
        batch = {k: v.to(device) for k, v in task.batch("train", idx).items()}
        opt.zero_grad(set_to_none=True)
        if private is not None:
            loss = dp_sgd.dp_sgd_step(private, task, model, flat.params, batch, dp, cfg.batch_size,
                                      dp_sgd.noise_generator(seed, step), cfg.precision)
        else:
            with autocast(device, cfg.precision):
                loss = task.loss(model, batch)
            loss.backward()
        if cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(flat.params, cfg.max_grad_norm)
        if grad_correction is not None:
            with torch.no_grad():
                extra = grad_correction(flat.flat)
                if extra is not None:
                    add_to_grads(flat, extra)
        pull = None
        if correction is not None:
            with torch.no_grad():
                pull = correction(flat.flat)
        opt.step()
        if pull is not None:
            with torch.no_grad():
                flat.flat.sub_(pull)
        total += float(loss.detach())
    return total / max(1, len(batches))


def client_update(
    task: Task,
    model: torch.nn.Module,
    flat: FlatParams,
    global_weights: torch.Tensor,
    ids: np.ndarray,
    cfg: ClientConfig,
    device: torch.device,
    seed: int,
    algorithm: "Algorithm | None" = None,
    ctx: "ClientContext | None" = None,
) -> ClientResult:
    """Load the global weights in place, train locally, return the delta (global - local).

    With an `algorithm` (and its `ctx` for this client), its client_begin runs before the first step and its
    gradient_correction and step_correction in every step; client_end is the caller's (it may change the delta
    first: attacks, DP).
    """
    flat.set_(global_weights)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    batches = batch_order(ids, cfg.batch_size, cfg.local_epochs, rng)
    correction = grad_correction = None
    if algorithm is not None:
        ctx.num_batches = len(batches)
        algorithm.client_begin(ctx)
        correction = lambda w: algorithm.step_correction(ctx, w)  # noqa: E731
        grad_correction = lambda w: algorithm.gradient_correction(ctx, w)  # noqa: E731
    loss = train_steps(task, model, flat, batches, cfg, device, correction=correction, seed=seed,
                       grad_correction=grad_correction)
    delta = global_weights - flat.flat.detach()
    return ClientResult(delta, len(ids), len(batches), loss)
