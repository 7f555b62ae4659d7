"""Round checkpoints: global model, server optimizer state, RNG states and the curve, written atomically.

One run keeps one checkpoint (the latest), `checkpoint.pt` plus a small `checkpoint.json` that says which
round it holds. A SIGKILL while writing leaves the previous pair intact: each file is written to a temp
name and renamed. Client updates draw their randomness from (seed, round, client), so a run resumed from
round r trains rounds r+1.. exactly as the uninterrupted run would.
"""
from __future__ import annotations

import json
import os
import random
import signal
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from ..errors import UserError

FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """What a round loop needs to continue after round `round`."""

    round: int
    rounds: int
    key: str  # hash of the settings that shape the run; a checkpoint only resumes the same run
    global_weights: torch.Tensor
    server_state: dict[str, Any]
    curve: list[dict] = field(default_factory=list)
    wall_time_s: float = 0.0
    rng: dict[str, Any] = field(default_factory=dict)


def rng_states() -> dict[str, Any]:
    states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng(states: dict[str, Any]) -> None:
    if "torch" in states:
        torch.set_rng_state(states["torch"])
    if "numpy" in states:
        np.random.set_state(states["numpy"])
    if "python" in states:
        random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    write(tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def save_checkpoint(folder: Path, ckpt: Checkpoint) -> Path:
    """Write the checkpoint (weights on CPU) and its JSON summary; return the .pt path."""
    folder.mkdir(parents=True, exist_ok=True)
    pt = folder / "checkpoint.pt"
    payload = {"format": FORMAT_VERSION, "round": ckpt.round, "rounds": ckpt.rounds, "key": ckpt.key,
               "global_weights": ckpt.global_weights.detach().cpu(), "server_state": ckpt.server_state,
               "curve": ckpt.curve, "wall_time_s": ckpt.wall_time_s, "rng": ckpt.rng}
    _atomic(pt, lambda p: torch.save(payload, p))
    summary = {"round": ckpt.round, "rounds": ckpt.rounds, "key": ckpt.key, "file": pt.name,
               "num_parameters": int(ckpt.global_weights.numel())}
    _atomic(folder / "checkpoint.json", lambda p: p.write_text(json.dumps(summary, indent=2) + "\n"))
    return pt


def load_checkpoint(folder: Path, key: str) -> Checkpoint | None:
    """The latest checkpoint in `folder`, or None when there is none; a checkpoint of other settings is an error."""
    pt = folder / "checkpoint.pt"
    if not pt.exists():
        return None
    try:
        payload = torch.load(pt, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user problem
        raise UserError(f"checkpoint {pt} cannot be read ({type(exc).__name__})",
                        f"delete {folder} to start the run again") from None
    if payload.get("key") != key:
        raise UserError(f"checkpoint {pt} belongs to a run with other settings",
                        f"resume with the settings it was written with, or delete {folder}")
    return Checkpoint(round=payload["round"], rounds=payload["rounds"], key=payload["key"],
                      global_weights=payload["global_weights"], server_state=payload["server_state"],
                      curve=payload["curve"], wall_time_s=payload["wall_time_s"], rng=payload.get("rng", {}))


@dataclass
class StopFlag:
    """Set by SIGTERM; the round loop checkpoints at the end of the current round and stops."""

    requested: bool = False


class Interrupted(Exception):
    """Raised by the round loop after it checkpointed on SIGTERM."""

    def __init__(self, round_idx: int, path: Path | None) -> None:
        super().__init__(f"stopped after round {round_idx}")
        self.round, self.path = round_idx, path


@contextmanager
def stop_on_sigterm() -> Iterator[StopFlag]:
    """Turn SIGTERM into a flag for the duration of the block (main thread only; elsewhere a no-op flag)."""
    flag = StopFlag()
    try:
        previous = signal.signal(signal.SIGTERM, lambda *_: setattr(flag, "requested", True))
    except ValueError:  # not the main thread
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGTERM, previous)
