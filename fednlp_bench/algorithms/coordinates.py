"""Coordinate-wise statistics of the clients' updates ([K, P]), computed in column blocks to bound memory."""
from __future__ import annotations

from typing import Callable

import torch

BLOCK = 1 << 20  # columns per block: sorting K x BLOCK values (and their int64 indices) at a time


def by_column_blocks(deltas: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """fn applied to each block of columns of `deltas` sorted along the clients (dim 0); the results joined."""
    out = torch.empty(deltas.shape[1], dtype=deltas.dtype, device=deltas.device)
    for a in range(0, deltas.shape[1], BLOCK):
        out[a:a + BLOCK] = fn(torch.sort(deltas[:, a:a + BLOCK], dim=0).values)
    return out
