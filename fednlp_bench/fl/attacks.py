"""Simulated Byzantine clients: a seeded fraction of the clients sends a corrupted update instead of its own.

Which clients attack is fixed for the run: the first round(fraction * N) of a permutation of the N clients seeded by
the run's seed. Whenever one of them is chosen, its delta (global - local) is replaced before upload:
  sign_flip  -scale * delta   (default scale 1: the update points the other way)
  scale      scale * delta    (default 10: a boosted update)
  noise      Gaussian noise N(0, scale^2) per coordinate (default 1), drawn from (seed, round, client)
so a run under attack is as deterministic as one without, on any number of ranks.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

ATTACKS = ("sign_flip", "scale", "noise")
DEFAULT_SCALE = {"sign_flip": 1.0, "scale": 10.0, "noise": 1.0}


@dataclass
class Attack:
    kind: str
    fraction: float
    scale: float | None = None  # None: DEFAULT_SCALE[kind]
    seed: int = 0
    attackers: frozenset[int] = field(default_factory=frozenset)

    @property
    def strength(self) -> float:
        return DEFAULT_SCALE[self.kind] if self.scale is None else self.scale

    def choose(self, num_clients: int) -> "Attack":
        """This attack with its attacking clients fixed for a run over `num_clients` clients."""
        perm = np.random.default_rng(np.random.SeedSequence([self.seed, 0xBAD])).permutation(num_clients)
        self.attackers = frozenset(int(c) for c in perm[: int(round(self.fraction * num_clients))])
        return self

    def apply(self, delta: torch.Tensor, client: int, round_idx: int) -> torch.Tensor:
        """The update `client` sends in `round_idx` (its own delta unless it is an attacker)."""
        if client not in self.attackers:
            return delta
        if self.kind == "sign_flip":
            return delta * -self.strength
        if self.kind == "scale":
            return delta * self.strength
        gen = torch.Generator(device="cpu")
        gen.manual_seed(int(np.random.SeedSequence([self.seed, round_idx, client, 0xBAD]).generate_state(1)[0]))
        noise = torch.randn(delta.numel(), generator=gen, dtype=delta.dtype) * self.strength
        return noise.to(delta.device)

    def record(self) -> dict:
        return {"kind": self.kind, "fraction": self.fraction, "scale": self.strength,
                "clients": sorted(self.attackers)}
