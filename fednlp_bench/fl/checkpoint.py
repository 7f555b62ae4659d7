"""Round checkpoints: global model, the algorithm's server state, RNG states and the curve, written atomically.
An algorithm with per-client state adds one shard per rank beside them (fl/client_state.py), named in checkpoint.pt.

One run keeps one checkpoint (the latest), `checkpoint.pt` plus a small `checkpoint.json` that says which
round it holds. A SIGKILL while writing leaves the previous pair intact: each file is written to a temp
name and renamed. Client updates draw their randomness from (seed, round, client), so a run resumed from
round r trains rounds r+1.. exactly as the uninterrupted run would.

A checkpoint holds tensors, numbers, strings, lists and dicts only (numpy's and Python's RNG states are stored as
tensors), so it is read with `torch.load(weights_only=True)`: a crafted file cannot run code when resumed.
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

FORMAT_VERSION = 2  # 2: RNG states as tensors, loaded with weights_only=True


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
    settings: dict[str, Any] | None = None  # the settings behind `key`, kept readable in checkpoint.json
    client_shards: dict[str, int] | None = None  # {"round", "world"}: the per-client state shards it goes with
    frozen_digest: str | None = None  # --peft / --freeze: the digest of the frozen base the weights belong to


def rng_states() -> dict[str, Any]:
    """The torch, numpy and Python RNG states as tensors and plain numbers (safe for weights_only loading)."""
    name, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": str(name), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "python": {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64),
                   "gauss_next": gauss_next},
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng(states: dict[str, Any]) -> None:
    """Set the RNGs to states saved by rng_states."""
    if "torch" in states:
        torch.set_rng_state(states["torch"])
    if "numpy" in states:
        n = states["numpy"]
        np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                             n["cached_gaussian"]))
    if "python" in states:
        p = states["python"]
        random.setstate((p["version"], tuple(int(x) for x in p["state"].tolist()), p["gauss_next"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _plain(obj: Any) -> Any:
    """A copy with numpy scalars and arrays turned into Python numbers and tensors (weights_only can load it)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    return obj


_SAFE_LEAVES = (torch.Tensor, int, float, str, bool, type(None))


def unsafe_part(obj: Any, where: str = "state") -> str | None:
    """Where `obj` holds something other than tensors, numbers, strings, None, lists, tuples and dicts (what a
    weights_only load accepts), e.g. "state['m'] is a MyThing"; None when it is all safe."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                return f"{where} has a key of type {type(k).__name__}"
            found = unsafe_part(v, f"{where}[{k!r}]")
            if found:
                return found
        return None
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            found = unsafe_part(v, f"{where}[{i}]")
            if found:
                return found
        return None
    if isinstance(obj, (*_SAFE_LEAVES, np.generic, np.ndarray)):
        return None
    return f"{where} is a {type(obj).__module__}.{type(obj).__qualname__}"


def save_payload(path: Path, payload: dict[str, Any]) -> None:
    """Write a dict of safe values (unsafe_part) atomically with torch.save; a UserError when it cannot."""
    bad = unsafe_part(payload)
    if bad:
        raise UserError(f"cannot checkpoint the algorithm's state: {bad}",
                        "keep state_dict() and ClientContext.state to tensors, numbers, strings, lists and dicts")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic(path, lambda p: torch.save(_plain(payload), p))
    except OSError as exc:
        raise UserError(f"cannot write the checkpoint to {path.parent} ({exc.strerror or exc})",
                        "pass --checkpoint-dir with a folder you can write to, on a disk with room") from None


def load_payload(path: Path) -> dict[str, Any]:
    """Read a file written by save_payload (weights_only: a crafted file cannot run code)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"checkpoint file {path} is missing", f"delete {path.parent} to start the run again") from None
    except Exception:  # noqa: BLE001 - any unreadable file is the same user problem
        raise UserError(f"checkpoint file {path} cannot be read safely (it is corrupt or holds more than tensors "
                        "and numbers)", f"delete {path.parent} to start the run again") from None
    if not isinstance(payload, dict):
        raise UserError(f"checkpoint file {path} is not a checkpoint", f"delete {path.parent} to start again")
    return payload


def _atomic(path: Path, write) -> None:
    """Write through a temp file (`.<name>.tmp<pid>`) renamed into place; on failure the temp file is removed."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_checkpoint(folder: Path, ckpt: Checkpoint) -> Path:
    """Write the checkpoint (weights on CPU) and its JSON summary; return the .pt path."""
    pt = folder / "checkpoint.pt"
    bad = unsafe_part(ckpt.server_state, "state_dict()")
    if bad:
        raise UserError(f"cannot checkpoint the algorithm's server state: {bad}",
                        "keep state_dict() to tensors, numbers, strings, lists and dicts")
    payload = _plain({"format": FORMAT_VERSION, "round": ckpt.round, "rounds": ckpt.rounds, "key": ckpt.key,
                      "global_weights": ckpt.global_weights.detach().cpu(), "server_state": ckpt.server_state,
                      "curve": ckpt.curve, "wall_time_s": ckpt.wall_time_s, "rng": ckpt.rng})
    if ckpt.client_shards is not None:
        payload["client_shards"] = dict(ckpt.client_shards)
    summary = {"round": ckpt.round, "rounds": ckpt.rounds, "key": ckpt.key, "file": pt.name,
               "num_parameters": int(ckpt.global_weights.numel()), "settings": ckpt.settings}
    if ckpt.frozen_digest is not None:
        payload["frozen_digest"] = summary["frozen_digest"] = ckpt.frozen_digest
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _atomic(pt, lambda p: torch.save(payload, p))
        _atomic(folder / "checkpoint.json",
                lambda p: p.write_text(json.dumps(summary, indent=2, default=str) + "\n"))
    except OSError as exc:
        raise UserError(f"cannot write the checkpoint to {folder} ({exc.strerror or exc})",
                        "pass --checkpoint-dir with a folder you can write to, on a disk with room") from None
    return pt


def settings_difference(folder: Path, settings: dict[str, Any], most: int = 3) -> str:
    """The settings in which the checkpoint in `folder` (its checkpoint.json) differs from `settings`, as flags:
    "--client-lr 0.01 there, 0.001 here"; "" when the checkpoint does not say (an older one) or nothing differs."""
    try:
        theirs = json.loads((folder / "checkpoint.json").read_text())["settings"]
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    if not isinstance(theirs, dict):
        return ""
    ours = json.loads(json.dumps(settings, default=str))  # as checkpoint.json holds them (tuples as lists)
    names = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
    flag = {"algorithm_args": "algorithm-arg", "text_columns": "text-column"}  # flags named unlike their setting
    shown = [f"--{flag.get(k, k.replace('_', '-'))} {theirs.get(k)} there, {ours.get(k)} here" for k in names[:most]]
    return "; ".join(shown) + (f" and {len(names) - most} more" if len(names) > most else "")


def load_checkpoint(folder: Path, key: str, settings: dict[str, Any] | None = None) -> Checkpoint | None:
    """The latest checkpoint in `folder`, or None when there is none; a checkpoint of other settings is an error
    (naming the settings that differ from `settings` when both are known)."""
    pt = folder / "checkpoint.pt"
    if not pt.exists():
        return None
    unreadable = UserError(f"checkpoint {pt} cannot be read safely (it is corrupt, was written by another "
                           "fednlp-bench version, or holds more than tensors and numbers)",
                           f"delete {folder} to start the run again")
    try:
        # weights_only: tensors, numbers, strings and containers only; a pickled object that would run code is refused
        payload = torch.load(pt, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - any unreadable file is the same user problem
        raise unreadable from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise unreadable
    if payload.get("key") != key:
        differ = settings_difference(folder, settings) if settings is not None else ""
        raise UserError(f"checkpoint {pt} belongs to a run with other settings{f' ({differ})' if differ else ''}",
                        f"resume with the settings it was written with, or delete {folder}")
    try:
        return Checkpoint(round=payload["round"], rounds=payload["rounds"], key=payload["key"],
                          global_weights=payload["global_weights"], server_state=payload["server_state"],
                          curve=payload["curve"], wall_time_s=payload["wall_time_s"], rng=payload.get("rng", {}),
                          client_shards=payload.get("client_shards"), frozen_digest=payload.get("frozen_digest"))
    except KeyError:
        raise unreadable from None


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
