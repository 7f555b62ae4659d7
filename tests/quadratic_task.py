"""A task whose optimum is known in closed form, for checking FL algorithms converge where they should.

Client k's examples all carry the target a_k and curvature s_k: an example's loss is s_k/2 * ||w - a_k||^2, with w
one parameter vector. The examples-weighted optimum is sum_k n_k s_k a_k / sum_k n_k s_k (FedAvg's and FedNova's
objective), the clients-weighted one sum_k s_k a_k / sum_k s_k (SCAFFOLD's and FedDyn's, whose clients count
equally). With several local steps on clients of different curvatures FedAvg stops short of its optimum (client
drift); SCAFFOLD and FedDyn reach theirs.
"""
from __future__ import annotations

import numpy as np
import torch

from fednlp_bench.tasks.base import Task


class Point(torch.nn.Module):
    def __init__(self, dim: int, seed: int) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.w = torch.nn.Parameter(torch.randn(dim, generator=gen))


class QuadraticTask(Task):
    name = "quadratic"
    family = "text_classification"
    metric_names = ("distance",)
    primary_metric = "distance"

    def __init__(self, sizes: list[int], dim: int = 3, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.dim = dim
        self.owner = np.repeat(np.arange(len(sizes)), sizes)
        self.targets = torch.tensor(rng.normal(size=(len(sizes), dim)) * 3, dtype=torch.float32)
        self.curvature = torch.tensor(rng.uniform(0.2, 2.0, size=len(sizes)), dtype=torch.float32)
        self.labels = {"train": self.owner.copy(), "test": self.owner.copy()}
        n = torch.tensor(sizes, dtype=torch.float64)[:, None]
        s = self.curvature.double()[:, None]
        self.optimum = ((n * s * self.targets.double()).sum(0) / (n * s).sum()).float()
        self.client_optimum = ((s * self.targets.double()).sum(0) / s.sum()).float()

    def parts(self) -> list[np.ndarray]:
        return [np.flatnonzero(self.owner == k) for k in range(len(self.targets))]

    def base_model(self, seed: int) -> torch.nn.Module:
        return Point(self.dim, seed)

    def batch(self, split: str, indices: np.ndarray) -> dict[str, torch.Tensor]:
        owner = torch.as_tensor(self.owner[indices])
        return {"target": self.targets[owner], "curvature": self.curvature[owner]}

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return (0.5 * batch["curvature"] * (model.w - batch["target"]).pow(2).sum(1)).mean()

    def predict(self, model: torch.nn.Module, split: str, device: torch.device, batch_size: int = 128):
        return model.w.detach().clone()

    def metrics(self, predictions, split: str, indices: np.ndarray | None = None) -> dict[str, float]:
        return {"distance": float(torch.linalg.vector_norm(predictions - self.optimum))}
