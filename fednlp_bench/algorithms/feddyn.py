"""FedDyn (Acar et al. 2021): dynamic regularisation, so the clients' local optima line up with the global one.

Client k keeps g_k (the gradient of its local loss at its last model; zeros at first) and minimises
L_k(w) - <g_k, w> + alpha/2 ||w - w_global||^2: the gradient of the two added terms, alpha (w - w_global) - g_k,
is added to every local gradient before the optimizer step. With delta_k = w_global - w_k (the paper's Delta has
the opposite sign):

    client:  g_k <- g_k + alpha * delta_k
    server:  h <- h + (alpha / N) sum_{k in round} delta_k          (N: all clients; h starts at zero)
             w <- w_global - mean_{k in round} delta_k - h / alpha

Clients count equally (the paper's mean), so --weighting does not apply.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .base import Algorithm, ClientContext, Contribution, ServerRound


@dataclass
class FedDynArgs:
    alpha: float = 0.01  # the regularisation weight (the paper tries 0.1, 0.01, 0.001)

    def __post_init__(self) -> None:
        if not self.alpha > 0:
            raise ValueError(f"alpha must be > 0 (got {self.alpha})")


class FedDyn(Algorithm):
    name = "feddyn"
    Args = FedDynArgs
    scalars = ("count",)
    client_state = True
    uses_weighting = False

    def start(self, initial: torch.Tensor) -> None:
        self.h = torch.zeros_like(initial)

    def client_begin(self, ctx: ClientContext) -> None:
        if "grad" not in ctx.state:
            ctx.state["grad"] = torch.zeros_like(ctx.global_weights)

    def gradient_correction(self, ctx: ClientContext, weights: torch.Tensor) -> torch.Tensor | None:
        return (weights - ctx.global_weights).mul_(self.args.alpha).sub_(ctx.state["grad"])

    def client_end(self, ctx: ClientContext, delta: torch.Tensor) -> Contribution:
        ctx.state["grad"] = ctx.state["grad"] + self.args.alpha * delta
        return Contribution({"delta": delta}, {}, {"count": 1.0})

    def aggregate(self, rnd: ServerRound) -> torch.Tensor:
        dtype, alpha = rnd.global_weights.dtype, self.args.alpha
        self.h = self.h + (rnd.sums["delta"] * (alpha / self.info.num_clients)).to(dtype)
        mean_delta = (rnd.sums["delta"] / rnd.scalars["count"]).to(dtype)
        return rnd.global_weights - mean_delta - self.h / alpha

    def state_dict(self) -> dict[str, Any]:
        return {"h": self.h}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.h = state["h"].to(device=self.h.device, dtype=self.h.dtype)
