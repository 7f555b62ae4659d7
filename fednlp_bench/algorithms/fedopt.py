"""FedOpt (Reddi et al. 2021): a server optimizer on the mean pseudo-gradient.

--server-optimizer sgd with --server-momentum is FedAvgM; adam, yogi and adagrad are FedAdam, FedYogi and
FedAdagrad. The optimizers are in fl/strategies.py (torch's, and Yogi, which torch lacks).
"""
from __future__ import annotations

from typing import Any

import torch

from ..fl.strategies import FedOpt as ServerOptimizer
from .base import Algorithm, ServerRound


class FedOpt(Algorithm):
    """w <- server_optimizer.step(w, mean_k(delta_k)); the optimizer's moments are the server state."""

    name = "fedopt"
    supports_client_dp = True

    def start(self, initial: torch.Tensor) -> None:
        self.server = ServerOptimizer(initial, self.info.server)

    def aggregate(self, rnd: ServerRound) -> torch.Tensor:
        pseudo_grad = (rnd.sums["delta"] / rnd.scalars["weight"]).to(rnd.global_weights.dtype)
        return self.server.step(rnd.global_weights, pseudo_grad)

    def state_dict(self) -> dict[str, Any]:
        return self.server.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.server.load_state_dict(state)
