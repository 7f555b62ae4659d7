"""Coordinate-wise trimmed mean (Yin et al. 2018): per coordinate, drop the floor(beta * K) largest and smallest
client values and average the rest (beta < 0.5 always leaves one). Clients count equally; beta = 0 is the plain
mean."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .base import GatheredAggregator, ServerRound
from .coordinates import by_column_blocks


@dataclass
class TrimmedMeanArgs:
    beta: float = 0.2  # share trimmed at each end (Flower's FedTrimmedAvg default)

    def __post_init__(self) -> None:
        if not 0 <= self.beta < 0.5:
            raise ValueError(f"beta must lie in [0, 0.5) (got {self.beta})")


class TrimmedMean(GatheredAggregator):
    name = "trimmed_mean"
    Args = TrimmedMeanArgs
    uses_weighting = False

    def aggregate(self, rnd: ServerRound) -> torch.Tensor:
        k = rnd.updates.deltas.shape[0]
        cut = min(math.floor(self.args.beta * k), (k - 1) // 2)
        mean = by_column_blocks(rnd.updates.deltas, lambda s: s[cut:k - cut].double().mean(dim=0).to(s.dtype))
        return rnd.global_weights - mean
