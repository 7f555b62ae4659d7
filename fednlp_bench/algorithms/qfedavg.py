"""q-FedAvg (Li et al. 2020, "Fair resource allocation in federated learning"): q-FFL, which weighs clients with a
high loss more, so the worst clients do better.

F_k is the loss of the global model on client k's training data (before it trains), L a Lipschitz estimate
(default 1 / client lr, as in the paper) and delta_k = w_global - w_k:

    Delta_k = F_k^q * L * delta_k
    h_k     = q * F_k^(q-1) * L^2 * ||delta_k||^2 + L * F_k^q
    w      <- w - sum_k Delta_k / sum_k h_k

q = 0 is FedAvg with clients counted equally. Reading F_k costs one forward pass over the client's data; it is data
use outside local training, so example-level DP-SGD is refused (algorithms/compat.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Algorithm, ClientContext, Contribution, ServerRound


@dataclass
class QFedAvgArgs:
    q: float = 0.2  # fairness: 0 = FedAvg, larger = more weight on high-loss clients
    lipschitz: float | None = None  # L; None: 1 / client lr

    def __post_init__(self) -> None:
        if not self.q >= 0:
            raise ValueError(f"q must be >= 0 (got {self.q})")
        if self.lipschitz is not None and not self.lipschitz > 0:
            raise ValueError(f"lipschitz must be > 0 (got {self.lipschitz})")


class QFedAvg(Algorithm):
    name = "qfedavg"
    Args = QFedAvgArgs
    scalars = ("h",)
    needs_global_loss = True
    uses_weighting = False

    def client_begin(self, ctx: ClientContext) -> None:
        ctx.scratch["loss"] = max(ctx.loss_at_global(), 1e-10)

    def client_end(self, ctx: ClientContext, delta: torch.Tensor) -> Contribution:
        q = self.args.q
        lip = self.args.lipschitz or 1.0 / ctx.lr
        loss = ctx.scratch["loss"]
        norm2 = float(delta.double().pow(2).sum())
        h = q * loss ** (q - 1) * lip * lip * norm2 + lip * loss**q
        return Contribution({"delta": delta}, {"delta": loss**q * lip}, {"h": h})

    def aggregate(self, rnd: ServerRound) -> torch.Tensor:
        return rnd.global_weights - (rnd.sums["delta"] / rnd.scalars["h"]).to(rnd.global_weights.dtype)
