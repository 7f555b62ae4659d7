"""Client-level differential privacy (DP-FedAvg, McMahan et al. 2018) and its accounting.

Each client's delta is clipped to L2 norm S; the server adds Gaussian noise N(0, (z*S)^2 I) to the sum of
the K clipped deltas and divides by K (a fixed denominator, so one client changes the sum by at most S).
The privacy cost of R rounds at client sampling rate q = K/N is computed by opacus's RDP accountant.
The noise is drawn from a generator seeded by (seed, round), so every rank of the distributed backend adds
the same noise and a resumed run adds what the uninterrupted one did.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class ClientDP:
    """DP-FedAvg settings: clip norm S, noise multiplier z (noise std z*S on the sum), target delta."""

    clip: float
    noise_multiplier: float = 0.0
    delta: float = 1e-5


def clip_delta(delta: torch.Tensor, clip: float) -> tuple[torch.Tensor, float]:
    """The delta scaled to L2 norm at most `clip`, and its norm before clipping."""
    norm = float(torch.linalg.vector_norm(delta.double()))
    scale = min(1.0, clip / norm) if norm > 0 else 1.0
    return (delta * scale if scale < 1.0 else delta), norm


def server_noise(numel: int, dp: ClientDP, seed: int, round_idx: int, device: torch.device) -> torch.Tensor:
    """Gaussian noise N(0, (z*S)^2) per coordinate (float64), the same for the same seed and round."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(np.random.SeedSequence([seed, round_idx, 0xD9]).generate_state(1)[0]))
    noise = torch.randn(numel, generator=gen, dtype=torch.float64) * (dp.noise_multiplier * dp.clip)
    return noise.to(device)


def client_level_epsilon(noise_multiplier: float, sample_rate: float, rounds: int, delta: float) -> float:
    """epsilon of `rounds` DP-FedAvg rounds at client sampling rate q, by opacus's RDP accountant."""
    if noise_multiplier <= 0:
        return math.inf
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    accountant.history.append((noise_multiplier, sample_rate, rounds))
    return float(accountant.get_epsilon(delta=delta))
