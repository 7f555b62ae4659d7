"""Run a fednlp-bench task on FedML's runtime: a FedML ClientTrainer and ServerAggregator around our task
adapter and client update, and a launcher for FedML's MPI simulation (the simulator that takes custom trainers).

Needs the `fedml` extra in its own environment (see docs/fedml.md). Launch with one MPI process for the
server and one per client sampled in a round:

    mpiexec -n 3 python -m fednlp_bench.integrations.fedml --task demo --clients 2 --clients-per-round 2 \\
        --rounds 2 --output runs/fedml

Any `fednlp-bench run` flag is accepted. Each client trains with fednlp-bench's own client update and seeds
(seed, round, client), FedML's server averages the client models weighted by their example counts (FedAvg)
and our aggregator evaluates the global model every round; rank 0 writes a fednlp-bench result JSON.
FedML samples its own clients per round (numpy seeded by the round); with --clients-per-round equal to
--clients every client trains every round and the run computes what `fednlp-bench run` computes.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

import torch
import yaml
from fedml.core import ClientTrainer, ServerAggregator

from ..config import RunConfig
from ..errors import UserError
from ..fl.client import ClientConfig, client_update
from ..fl.params import FlatParams
from ..fl.simulation import client_seed, evaluate
from ..tasks.base import Task
from .fedml_data import fedml_dataset

RUNTIME = "fedml-mpi"


class FlatModel:
    """Named trainable parameters of a model as FedML's state dicts, read from and written to one flat vector."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.flat = FlatParams(model)
        self.names = [n for n, p in model.named_parameters() if p.requires_grad]

    def get(self) -> OrderedDict:
        return OrderedDict((n, v.detach().cpu().clone()) for n, v in zip(self.names, self.flat.split(self.flat.flat)))

    def set(self, params: dict[str, Any]) -> None:
        vector = torch.cat([torch.as_tensor(params[n]).reshape(-1) for n in self.names])
        self.flat.set_(vector.to(self.flat.flat.device, self.flat.flat.dtype))


class FedNLPClientTrainer(ClientTrainer):
    """FedML client: trains the client's ids with fednlp-bench's client update (same batches, seeds, optimizer)."""

    def __init__(self, task: Task, model: torch.nn.Module, args, client: ClientConfig, seed: int) -> None:
        super().__init__(model, args)
        self.task, self.client, self.seed = task, client, seed
        self.params = FlatModel(model)
        self.last_loss = float("nan")

    def get_model_params(self) -> OrderedDict:
        return self.params.get()

    def set_model_params(self, model_parameters) -> None:
        self.params.set(model_parameters)

    def train(self, train_data, device, args) -> None:
        ids, client = train_data.dataset.ids, train_data.dataset.client
        round_idx = int(getattr(args, "round_idx", 0) or 0) + 1  # FedML counts rounds from 0, we from 1
        flat = self.params.flat
        result = client_update(self.task, self.model, flat, flat.get(), ids, self.client, torch.device(device),
                               client_seed(self.seed, round_idx, int(client)))
        self.last_loss = result.train_loss


class FedNLPServerAggregator(ServerAggregator):
    """FedML server side: holds the global model, evaluates it with the task's metrics every round, and writes
    a fednlp-bench result record after the last round."""

    def __init__(self, task: Task, model: torch.nn.Module, args, on_round) -> None:
        super().__init__(model, args)
        self.task, self.on_round = task, on_round
        self.params = FlatModel(model)

    def get_model_params(self) -> OrderedDict:
        return self.params.get()

    def set_model_params(self, model_parameters) -> None:
        self.params.set(model_parameters)

    def test(self, test_data, device, args) -> dict[str, float]:
        preds, metrics = evaluate(self.task, self.model, torch.device(device))
        self.on_round(int(args.round_idx) + 1, preds, metrics)
        return metrics

    def test_all(self, train_data_local_dict, test_data_local_dict, device, args) -> bool:
        return False  # let FedML's aggregator call test() on its schedule


def fedml_config(rc: RunConfig, task_name: str, num_clients: int) -> dict[str, Any]:
    """FedML's YAML sections for a run config (MPI simulation, FedAvg, evaluation every round, no tracking)."""
    return {
        "common_args": {"training_type": "simulation", "using_mlops": False, "random_seed": rc.seed},
        "data_args": {"dataset": task_name, "data_cache_dir": "", "partition_method": rc.partition,
                      "partition_alpha": rc.alpha if rc.alpha is not None else 0.0},
        "model_args": {"model": rc.model},
        "train_args": {"federated_optimizer": "FedAvg", "client_id_list": "[]", "client_num_in_total": num_clients,
                       "client_num_per_round": rc.clients_per_round, "comm_round": rc.rounds,
                       "epochs": rc.local_epochs, "batch_size": rc.batch_size,
                       "client_optimizer": rc.client_optimizer, "learning_rate": rc.client_lr, "weight_decay": 0.0},
        "validation_args": {"frequency_of_the_test": 1},
        "device_args": {"worker_num": rc.clients_per_round, "using_gpu": False},
        "comm_args": {"backend": "MPI", "is_mobile": 0},
        "tracking_args": {"enable_wandb": False},
    }


def fedml_args(config: dict[str, Any], folder: Path):
    """A FedML Arguments object from our YAML sections, without reading sys.argv."""
    from fedml.arguments import Arguments

    path = folder / "fedml_config.yaml"
    path.write_text(yaml.safe_dump(config))
    cmd = argparse.Namespace(yaml_config_file=str(path), run_id="0", rank=0, local_rank=0, node_rank=0,
                             role="client", run_device_id="0", using_mlops=False)
    return Arguments(cmd, "simulation", "MPI")


def run_on_fedml(cfg: RunConfig) -> dict[str, Any] | None:
    """Run `cfg` (FedAvg) on FedML's MPI simulation; rank 0 returns and writes the result record."""
    import fedml
    from fedml import FedMLRunner

    from ..results import per_client_metrics, write_result
    from ..runner import client_config, make_partition_for, partition_record, prepare, task_record

    if cfg.algorithm != "fedavg":
        raise UserError(f"the FedML adapter runs FedAvg only (got --algorithm {cfg.algorithm})",
                        "pass --algorithm fedavg, or run FedProx/FedOpt with `fednlp-bench run`")
    rc, task = prepare(cfg)
    part = make_partition_for(rc, task)
    rc.clients = part.num_clients
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        args = fedml_args(fedml_config(rc, task.name, part.num_clients), Path(tmp))
        args = fedml.init(args)
    device = torch.device("cpu")
    dataset = fedml_dataset(task, part, rc.batch_size)
    model = task.new_model(rc.seed).to(device)
    curve: list[dict] = []
    record: dict[str, Any] = {}
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)

    def on_round(round_idx: int, preds, metrics: dict[str, float]) -> None:
        curve.append({"round": round_idx, "metrics": metrics, "wall_time_s": time.perf_counter() - start})
        if round_idx == rc.rounds:
            record.update({"kind": "federated", "config": {**rc.to_dict(), "extra": {**rc.extra, "runtime": RUNTIME}},
                           "seed": rc.seed, "task": task_record(rc, task), "partition": partition_record(rc, task, part),
                           "curve": list(curve), "final": metrics, "wall_time_s": time.perf_counter() - start,
                           "num_parameters": n_params, "clients": per_client_metrics(task, preds, part.test),
                           "upload_bytes_per_client_per_round": 4 * n_params,  # the float32 weights a client sends
                           "execution": {"backend": RUNTIME, "world_size": int(args.worker_num),
                                         "torch_threads": torch.get_num_threads(),
                                         "fedml_version": fedml.__version__}})
            record["path"] = str(write_result(record, rc.output))

    if args.rank == 0:
        trainer, aggregator = None, FedNLPServerAggregator(task, model, args, on_round)
    else:
        trainer = FedNLPClientTrainer(task, model, args, client_config(rc), rc.seed)
        aggregator = None
    FedMLRunner(args, device, dataset, model, trainer, aggregator).run()
    return record or None


def main(argv: Sequence[str] | None = None) -> int:
    from ..cli import build_parser, config_from_args, quiet_model_loading

    args = build_parser().parse_args(["run", *(sys.argv[1:] if argv is None else argv)])
    try:
        quiet_model_loading()
        rec = run_on_fedml(config_from_args(args))
    except UserError as exc:
        print(f"fednlp-bench: error: {exc}", file=sys.stderr)
        return 2
    if rec:
        metric = rec["task"]["primary_metric"]
        print(f"{metric}={rec['final'][metric]:.4f}  result: {rec['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
