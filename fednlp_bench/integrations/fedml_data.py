"""Our task data and partition as FedML's 8-item dataset list (needs torch only, not fedml).

FedML's simulators unpack a dataset as
    [train_num, test_num, train_global, test_global, local_num_dict, train_local_dict, test_local_dict, class_num]
with DataLoaders for the global and per-client splits. Here each loader iterates over example ids and its
collate function returns the task's own padded batch (input_ids, attention_mask, labels, ...), so FedML's
trainers see ordinary dict batches while ours can read the ids (`loader.dataset.ids`) and the client index
(`loader.dataset.client`) to train exactly as fednlp-bench does.
"""
from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..partition.model import Partition
from ..tasks.base import Task


class ExampleIds(Dataset):
    """The ids of one split's examples held by one client (client -1: the global split)."""

    def __init__(self, split: str, ids: np.ndarray, client: int = -1) -> None:
        self.split, self.ids, self.client = split, np.asarray(ids, dtype=np.int64), client

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> int:
        return int(self.ids[i])


def _collate(task: Task, split: str, ids: list[int]) -> dict[str, torch.Tensor]:
    return task.batch(split, np.asarray(ids, dtype=np.int64))


def ids_loader(task: Task, split: str, ids: np.ndarray, batch_size: int, client: int = -1) -> DataLoader:
    """A DataLoader over `ids` of `split` whose batches are the task's padded tensors."""
    return DataLoader(ExampleIds(split, ids, client), batch_size=batch_size, shuffle=False,
                      collate_fn=partial(_collate, task, split))


def class_count(task: Task) -> int:
    """FedML's class_num: the label count for classification, else the number of skew labels."""
    labels = getattr(task, "num_labels", None)
    return int(labels) if labels else int(task.skew_labels("train").max()) + 1


def fedml_dataset(task: Task, part: Partition, batch_size: int) -> list[Any]:
    """FedML's 8-item dataset list for `task` split by `part` (client c of FedML = client c of the partition)."""
    n_train, n_test = task.num_examples("train"), task.num_examples("test")
    train_local = {c: ids_loader(task, "train", ids, batch_size, c) for c, ids in enumerate(part.train)}
    test_local = {c: ids_loader(task, "test", ids, batch_size, c) for c, ids in enumerate(part.test)}
    return [n_train, n_test,
            ids_loader(task, "train", np.arange(n_train), batch_size), ids_loader(task, "test", np.arange(n_test), batch_size),
            {c: len(ids) for c, ids in enumerate(part.train)}, train_local, test_local, class_count(task)]
