"""Server update rules on the mean pseudo-gradient: FedAvg's plain step and FedOpt's server optimizers (torch's SGD,
Adam, Adagrad and Yogi). The algorithms in fednlp_bench/algorithms use them (fedopt.py)."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ServerConfig:
    optimizer: str = "sgd"  # sgd | adam | yogi | adagrad (FedOpt only)
    lr: float = 1.0
    momentum: float = 0.0  # sgd only
    beta1: float = 0.9
    beta2: float = 0.99
    eps: float = 1e-3  # the FedOpt paper's adaptivity tau


class FedAvg:
    """w <- w - mean_k(delta_k): the weighted mean of the client models."""

    name = "fedavg"

    def step(self, global_weights: torch.Tensor, pseudo_grad: torch.Tensor) -> torch.Tensor:
        return global_weights - pseudo_grad

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """FedAvg keeps no server state."""


class Yogi(torch.optim.Optimizer):
    """Yogi (Zaheer et al. 2018), the FedYogi server optimizer; torch has no built-in one."""

    def __init__(self, params, lr: float = 1e-2, betas=(0.9, 0.99), eps: float = 1e-3, initial_v: float = 1e-6):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, initial_v=initial_v))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                st = self.state[p]
                if not st:
                    st["m"] = torch.zeros_like(p)
                    st["v"] = torch.full_like(p, group["initial_v"])
                m, v = st["m"], st["v"]
                m.mul_(b1).add_(g, alpha=1 - b1)
                g2 = g * g
                v.addcmul_(torch.sign(v - g2), g2, value=-(1 - b2))
                p.addcdiv_(m, v.sqrt().add_(group["eps"]), value=-group["lr"])


class FedOpt:
    """Server optimizer on the pseudo-gradient mean_k(w - w_k) (Reddi et al. 2021: FedAvgM, FedAdam, FedYogi, FedAdagrad)."""

    name = "fedopt"

    def __init__(self, initial: torch.Tensor, cfg: ServerConfig) -> None:
        self.cfg = cfg
        self.param = torch.nn.Parameter(initial.detach().clone())
        if cfg.optimizer == "sgd":
            self.opt = torch.optim.SGD([self.param], lr=cfg.lr, momentum=cfg.momentum)
        elif cfg.optimizer == "adam":
            self.opt = torch.optim.Adam([self.param], lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
        elif cfg.optimizer == "adagrad":
            self.opt = torch.optim.Adagrad([self.param], lr=cfg.lr, eps=cfg.eps)
        elif cfg.optimizer == "yogi":
            self.opt = Yogi([self.param], lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
        else:
            raise ValueError(f"unknown server optimizer {cfg.optimizer!r}")

    def step(self, global_weights: torch.Tensor, pseudo_grad: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            self.param.copy_(global_weights)
        self.param.grad = pseudo_grad.detach().clone()
        self.opt.step()
        return self.param.detach().clone()

    def state_dict(self) -> dict:
        return self.opt.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Restore the server optimizer's moments (from a checkpoint)."""
        self.opt.load_state_dict(state)


SERVER_OPTIMIZERS = ("sgd", "adam", "yogi", "adagrad")
