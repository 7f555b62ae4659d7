"""FedMedian (Yin et al. 2018): the coordinate-wise median of the clients' updates, robust to a minority of
arbitrary ones. Clients count equally; with an even number the two middle values are averaged."""
from __future__ import annotations

import torch

from .base import GatheredAggregator, ServerRound
from .coordinates import by_column_blocks


class FedMedian(GatheredAggregator):
    name = "median"
    uses_weighting = False

    def aggregate(self, rnd: ServerRound) -> torch.Tensor:
        k = rnd.updates.deltas.shape[0]
        lo, hi = (k - 1) // 2, k // 2
        median = by_column_blocks(rnd.updates.deltas, lambda s: (s[lo] + s[hi]) / 2)
        return rnd.global_weights - median
