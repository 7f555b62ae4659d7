"""SCAFFOLD (Karimireddy et al. 2020), control variates with option II.

Client i keeps a control variate c_i (zeros at its first round), the server keeps c (zeros at the start). Every
local gradient is corrected by c - c_i before the optimizer step, then

    c_i+ = c_i - c + delta_i / (K_i * lr)          option II; delta_i = global - local, K_i local steps
    upload delta_i and dc_i = c_i+ - c_i           (twice the upload of FedAvg)
    server: w <- w - global_lr * mean_k delta_k;   c <- c + sum_k dc_k / N  (N: all clients)

Clients count equally, as in the paper: c is the mean of all N control variates, so SCAFFOLD solves the objective
(1/N) sum_i f_i and --weighting does not apply. Option II's c_i+ assumes SGD clients (delta / (K lr) is their mean
gradient); with AdamW the corrected gradient goes through Adam.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .base import Algorithm, ClientContext, Contribution, ServerRound


@dataclass
class ScaffoldArgs:
    global_lr: float = 1.0  # the server step size eta_g

    def __post_init__(self) -> None:
        if not self.global_lr > 0:
            raise ValueError(f"global_lr must be > 0 (got {self.global_lr})")


class Scaffold(Algorithm):
    name = "scaffold"
    Args = ScaffoldArgs
    vectors = ("delta", "dc")
    scalars = ("count",)
    client_state = True
    uses_weighting = False

    def start(self, initial: torch.Tensor) -> None:
        self.c = torch.zeros_like(initial)

    def client_begin(self, ctx: ClientContext) -> None:
        if "c" not in ctx.state:
            ctx.state["c"] = torch.zeros_like(ctx.global_weights)
        ctx.scratch["correction"] = self.c - ctx.state["c"]

    def gradient_correction(self, ctx: ClientContext, weights: torch.Tensor) -> torch.Tensor | None:
        return ctx.scratch["correction"]

    def client_end(self, ctx: ClientContext, delta: torch.Tensor) -> Contribution:
        c_i = ctx.state["c"]
        c_new = c_i - self.c + delta / (max(ctx.num_batches, 1) * ctx.lr)
        ctx.state["c"] = c_new
        return Contribution({"delta": delta, "dc": c_new - c_i}, {}, {"count": 1.0})

    def aggregate(self, rnd: ServerRound) -> torch.Tensor:
        dtype = rnd.global_weights.dtype
        self.c = self.c + (rnd.sums["dc"] / self.info.num_clients).to(dtype)
        pseudo_grad = (rnd.sums["delta"] / rnd.scalars["count"]).to(dtype)
        return rnd.global_weights - self.args.global_lr * pseudo_grad

    def state_dict(self) -> dict[str, Any]:
        return {"c": self.c}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.c = state["c"].to(device=self.c.device, dtype=self.c.dtype)
