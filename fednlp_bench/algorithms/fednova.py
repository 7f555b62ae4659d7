"""FedNova (Wang et al. 2020): normalised averaging, so clients that take more local steps do not pull the model
towards their own objective.

Client i took tau_i local steps; its normalised update is d_i = delta_i / a_i with a_i = tau_i (local SGD without
momentum). The server steps by the effective number of steps:

    w <- w - tau_eff * sum_i p_i d_i,   tau_eff = sum_i p_i a_i,   p_i = w_i / sum_k w_k (w_i from --weighting)

With equal local steps this is FedAvg. With AdamW clients a_i = tau_i is used as well (FedNova's a_i is defined
for SGD-type local solvers; for adaptive ones it is an approximation).
"""
from __future__ import annotations

import torch

from .base import Algorithm, ClientContext, Contribution, ServerRound


class FedNova(Algorithm):
    name = "fednova"
    scalars = ("weight", "tau")

    def client_end(self, ctx: ClientContext, delta: torch.Tensor) -> Contribution:
        a = max(ctx.num_batches, 1)
        return Contribution({"delta": delta}, {"delta": ctx.weight / a}, {"weight": ctx.weight, "tau": ctx.weight * a})

    def aggregate(self, rnd: ServerRound) -> torch.Tensor:
        total = rnd.scalars["weight"]
        tau_eff = rnd.scalars["tau"] / total
        return rnd.global_weights - (rnd.sums["delta"] * (tau_eff / total)).to(rnd.global_weights.dtype)
