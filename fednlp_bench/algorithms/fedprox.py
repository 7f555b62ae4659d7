"""FedProx (Li et al. 2020): FedAvg with a proximal pull towards the round's global model in every local step."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Algorithm, ClientContext


@dataclass
class FedProxArgs:
    mu: float = 0.1  # proximal weight; the --mu flag sets it too

    def __post_init__(self) -> None:
        if not self.mu >= 0:
            raise ValueError(f"mu must be >= 0 (got {self.mu})")


class FedProx(Algorithm):
    """Each local step also moves the weights by -lr * mu * (w - w_global), computed at the weights before the step.

    The pull is decoupled from the optimizer (like AdamW's weight decay). For SGD this is exactly FedProx's gradient
    mu * (w - w_global) added to the loss gradient. For AdamW it keeps the pull proportional to the distance: added to
    the gradient, Adam's per-coordinate normalisation blew it up to full lr-sized steps wherever the loss gradient
    was small (on the demo, FedProx stayed at chance even with mu 0.001).
    """

    name = "fedprox"
    Args = FedProxArgs
    supports_client_dp = True

    def step_correction(self, ctx: ClientContext, weights: torch.Tensor) -> torch.Tensor | None:
        if self.args.mu <= 0:
            return None
        return (weights - ctx.global_weights).mul_(ctx.lr * self.args.mu)
