"""Per-client algorithm state (SCAFFOLD's control variates, FedDyn's gradient memory), kept across rounds.

A client's state lives on the rank that trains it: with client state the distributed backend pins client c to rank
c % world (fl/distributed.py), so no state ever moves between ranks. It is kept on the CPU (it is numbers of
clients x model size) and is checkpointed as one shard per rank, `clients-r<round>-rank<rank>.pt`, written before
the round's checkpoint.pt names it; a resume reads every shard of that round and keeps its own clients, so it works
with any number of ranks. Shards hold tensors and plain values only (read with weights_only=True).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from ..errors import UserError

SHARD = re.compile(r"^clients-r(\d+)-rank(\d+)\.pt$")


def shard_name(round_idx: int, rank: int) -> str:
    return f"clients-r{round_idx:06d}-rank{rank}.pt"


def _to(value: Any, device: torch.device | str) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().to(device)
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to(v, device) for v in value)
    return value


class ClientStates:
    """Client id -> that client's state dict, for the clients this rank trains."""

    def __init__(self) -> None:
        self.states: dict[int, dict[str, Any]] = {}

    def get(self, client: int, device: torch.device) -> dict[str, Any]:
        """The client's state on `device` (empty on its first visit)."""
        return _to(self.states.get(int(client), {}), device)

    def put(self, client: int, state: dict[str, Any]) -> None:
        if not isinstance(state, dict):
            raise UserError(f"client state must be a dict (got {type(state).__name__})",
                            "keep ClientContext.state a dict of tensors and numbers")
        self.states[int(client)] = _to(state, "cpu")

    def save_shard(self, folder: Path, round_idx: int, rank: int, save) -> None:
        """Write this rank's shard through `save(path, payload)` (checkpoint.save_payload: atomic, safe types)."""
        save(folder / shard_name(round_idx, rank), {"round": round_idx, "rank": rank, "states": self.states})

    def load_shards(self, folder: Path, round_idx: int, world_saved: int, rank: int, world: int, load) -> None:
        """Read every rank's shard of `round_idx` (written by `world_saved` ranks) and keep this rank's clients."""
        self.states = {}
        for r in range(world_saved):
            payload = load(folder / shard_name(round_idx, r))
            for client, state in payload["states"].items():
                if int(client) % world == rank:
                    self.states[int(client)] = state


def remove_other_shards(folder: Path, keep_round: int) -> None:
    """Delete the client-state shards of every round but `keep_round` (after checkpoint.pt names it)."""
    for path in folder.glob("clients-r*-rank*.pt"):
        m = SHARD.match(path.name)
        if m and int(m.group(1)) != keep_round:
            path.unlink(missing_ok=True)
