"""FedAvg (McMahan et al. 2017): the global model moves to the weighted mean of the client models."""
from __future__ import annotations

from .base import Algorithm


class FedAvg(Algorithm):
    """w <- w - sum_k w_k delta_k / sum_k w_k, with w_k from --weighting (examples by default)."""

    name = "fedavg"
    supports_client_dp = True
