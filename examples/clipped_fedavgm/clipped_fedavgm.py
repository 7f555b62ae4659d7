"""FedAvgM with clipped client updates: a complete fednlp-bench plug-in (see docs/algorithms.md)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from fednlp_bench.algorithms import Algorithm, Contribution


@dataclass
class Args:
    max_norm: float = 1.0  # each client's update is scaled down to at most this L2 norm
    momentum: float = 0.9  # server momentum on the mean update

    def __post_init__(self) -> None:
        if not self.max_norm > 0 or not 0 <= self.momentum < 1:
            raise ValueError("max_norm must be > 0 and momentum in [0, 1)")


class ClippedFedAvgM(Algorithm):
    name = "clipped_fedavgm"
    Args = Args

    def start(self, initial: torch.Tensor) -> None:
        self.velocity = torch.zeros_like(initial)  # server state: saved in checkpoints

    def client_end(self, ctx, delta: torch.Tensor) -> Contribution:
        scale = min(1.0, self.args.max_norm / max(float(delta.norm()), 1e-12))
        return Contribution.weighted_delta(delta * scale, ctx.weight)

    def aggregate(self, rnd) -> torch.Tensor:
        mean = (rnd.sums["delta"] / rnd.scalars["weight"]).to(rnd.global_weights.dtype)
        self.velocity = self.args.momentum * self.velocity + mean
        return rnd.global_weights - self.velocity

    def state_dict(self) -> dict:
        return {"velocity": self.velocity}

    def load_state_dict(self, state: dict) -> None:
        self.velocity = state["velocity"].to(self.velocity)
