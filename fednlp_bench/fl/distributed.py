"""torch.distributed backend: each rank trains a share of the round's clients; sums meet in all_reduce.

Launch with torchrun (one process per GPU, or several CPU processes with gloo):

    torchrun --nproc-per-node 2 -m fednlp_bench.cli run --task demo --backend distributed

Every rank builds the same task, partition and initial model from the config, trains clients
chosen[rank::world] of each round (client c on rank c % world when the algorithm keeps per-client state), and
all_reduces the algorithm's float64 sums, the loss sum and a stop flag; an algorithm that needs every client's
update gets them by all_gather, sorted by client id. Every rank then takes the same server step, so all ranks hold
the same global model; rank 0 evaluates, checkpoints and writes the result.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from ..errors import UserError


@dataclass
class RankInfo:
    """Where this process sits: rank, world size and its device; the in-process backend is rank 0 of 1."""

    rank: int = 0
    world: int = 1
    device: torch.device | None = None
    distributed: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def my_clients(self, chosen: np.ndarray, pinned: bool = False) -> np.ndarray:
        """This rank's share of the round's clients: round-robin over the sorted ids, or with `pinned` the clients
        c with c % world == rank (a client with state always trains where its state is)."""
        if pinned:
            return chosen[chosen % self.world == self.rank]
        return chosen[self.rank :: self.world]

    def gather_rows(self, ids: torch.Tensor, rows: torch.Tensor, values: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every rank's (ids [n], rows [n, P], values [n]) joined and sorted by id: the same on every rank, whatever
        the split of the ids over ranks. Ranks pad to the largest n (id -1) for all_gather."""
        if self.distributed:
            count = torch.tensor([ids.numel()], dtype=torch.int64, device=rows.device)
            dist.all_reduce(count, op=dist.ReduceOp.MAX)
            n = int(count.item())
            pad = n - ids.numel()
            ids = torch.cat([ids, torch.full((pad,), -1, dtype=ids.dtype, device=ids.device)])
            rows = torch.cat([rows, rows.new_zeros((pad, rows.shape[1]))])
            values = torch.cat([values, values.new_zeros(pad)])
            parts = []
            for t in (ids, rows, values):
                out = [torch.empty_like(t) for _ in range(self.world)]
                dist.all_gather(out, t.contiguous())
                parts.append(torch.cat(out))
            ids, rows, values = parts
            keep = ids >= 0
            ids, rows, values = ids[keep], rows[keep], values[keep]
        order = torch.argsort(ids, stable=True)
        return ids[order], rows[order], values[order]

    def reduce_sum(self, *tensors: torch.Tensor) -> None:
        """Sum each tensor over all ranks, in place (nothing to do in one process)."""
        if self.distributed:
            for t in tensors:
                dist.all_reduce(t, op=dist.ReduceOp.SUM)

    def same_on_every_rank(self, value: int) -> bool:
        """Whether every rank holds the same integer (a digest of what is not synchronised, say)."""
        if not self.distributed:
            return True
        low = torch.tensor([value], dtype=torch.int64, device=self.device)
        high = low.clone()
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        return int(low) == int(high)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def launched_by_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"))


def init_distributed(device: str = "auto", timeout_s: int = 1800) -> RankInfo:
    """Join the process group torchrun set up: NCCL with one GPU per local rank when CUDA is there, else gloo."""
    if not launched_by_torchrun():
        raise UserError("--backend distributed needs the environment torchrun sets (RANK, WORLD_SIZE, MASTER_ADDR, ...)",
                        "launch with: torchrun --nproc-per-node N -m fednlp_bench.cli run ... --backend distributed")
    local_rank = int(os.environ["LOCAL_RANK"])
    use_cuda = torch.cuda.is_available() and device in ("auto", "cuda")
    if use_cuda:
        dev = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(seconds=timeout_s))
    return RankInfo(rank=dist.get_rank(), world=dist.get_world_size(), device=dev, distributed=True)


def shutdown(info: RankInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()
