"""Krum and Multi-Krum (Blanchard et al. 2017): keep the updates closest to their neighbours.

Each client's score is the sum of squared distances from its update to its K - f - 2 nearest others (f: the
attackers to tolerate per round). Krum steps by the update with the lowest score; Multi-Krum by the mean of the
`keep` lowest (weighted by --weighting). Ties go to the lower client id. Krum's guarantee needs K > 2f + 2.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from .base import AlgorithmError, GatheredAggregator, ServerRound
from .coordinates import BLOCK


@dataclass
class KrumArgs:
    byzantine: int = 1  # f: attackers tolerated per round
    keep: int | None = None  # updates averaged: Krum 1; Multi-Krum default K - f

    def __post_init__(self) -> None:
        if self.byzantine < 0:
            raise ValueError(f"byzantine must be >= 0 (got {self.byzantine})")
        if self.keep is not None and self.keep < 1:
            raise ValueError(f"keep must be >= 1 (got {self.keep})")


def squared_distances(x: torch.Tensor) -> torch.Tensor:
    """[K, K] float64 squared Euclidean distances between the rows of x, summed over column blocks."""
    k = x.shape[0]
    d2 = torch.zeros((k, k), dtype=torch.float64, device=x.device)
    for a in range(0, x.shape[1], BLOCK):
        block = x[:, a:a + BLOCK].double()
        for i in range(k):
            d2[i] += (block - block[i]).pow(2).sum(dim=1)
    return d2


def krum_scores(x: torch.Tensor, byzantine: int) -> torch.Tensor:
    """Each row's sum of squared distances to its K - f - 2 nearest other rows (at least 1)."""
    k = x.shape[0]
    d2 = squared_distances(x)
    d2.fill_diagonal_(float("inf"))
    m = max(1, min(k - 1, k - byzantine - 2))
    return torch.sort(d2, dim=1).values[:, :m].sum(dim=1) if k > 1 else torch.zeros(1, dtype=torch.float64)


class Krum(GatheredAggregator):
    name = "krum"
    Args = KrumArgs
    multi: ClassVar[bool] = False  # the default `keep`: 1 (Krum) or K - f (Multi-Krum)

    def keep(self, k: int) -> int:
        """Updates averaged in a round of k clients."""
        default = k - self.args.byzantine if self.multi else 1
        return max(1, min(self.args.keep if self.args.keep is not None else default, k))

    def check(self) -> None:
        k, f = self.info.clients_per_round, self.args.byzantine
        if k <= 2 * f + 2:
            raise AlgorithmError(f"{self.name} tolerates byzantine={f} attackers only with more than 2f + 2 = "
                                 f"{2 * f + 2} clients per round (got {k}); pass --clients-per-round {2 * f + 3} or "
                                 "more, or a smaller --algorithm-arg byzantine")
        if self.args.keep is not None and self.args.keep > k:
            raise AlgorithmError(f"keep {self.args.keep} is more than the {k} clients per round; pass a smaller keep")

    def aggregate(self, rnd: ServerRound) -> torch.Tensor:
        ups = rnd.updates
        scores = krum_scores(ups.deltas, self.args.byzantine)
        chosen = torch.sort(torch.argsort(scores, stable=True)[: self.keep(len(scores))]).values
        w = ups.weights[chosen]
        step = (ups.deltas[chosen].double() * w[:, None]).sum(dim=0) / w.sum()
        return rnd.global_weights - step.to(rnd.global_weights.dtype)


class MultiKrum(Krum):
    name = "multikrum"
    multi = True
