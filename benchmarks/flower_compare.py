"""fednlp-bench in-process vs Flower's simulation engine on the same FL job, end to end.

Run:  bash benchmarks/flower_compare.sh   (builds a throw-away venv with flwr[simulation]; nothing is added to
the project's dependencies). Same tiny model, same data, same uniform partition, same rounds, clients per
round, local epochs, batch size, client optimizer and server evaluation after every round. Flower's side is
a NumPyClient whose fit() runs fednlp-bench's own client training (so the training work is identical) under
Flower's FedAvg strategy and Ray-backed simulation engine; each Ray actor loads the task once and keeps it.
Both clocks start before the task is loaded and stop after the last evaluation. Flower samples its own
clients per round (same number per round, equal-sized clients), so the accuracies differ slightly.
Prints a table and writes its section of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import machine, markdown_table, publish  # noqa: E402
from _tasks import bench_config  # noqa: E402

from fednlp_bench.fl.client import ClientConfig, batch_order, train_steps  # noqa: E402
from fednlp_bench.fl.params import FlatParams  # noqa: E402
from fednlp_bench.fl.simulation import FLConfig, client_seed, evaluate, run_federated  # noqa: E402
from fednlp_bench.fl.strategies import ServerConfig  # noqa: E402
from fednlp_bench.partition import make_partition  # noqa: E402
from fednlp_bench.runner import prepare  # noqa: E402

CPU = torch.device("cpu")
SETTINGS = dict(clients=10, per_round=5, rounds=5, epochs=1, batch=32, lr=2e-3, seed=42)
_CACHE: dict[str, object] = {}  # one task, model and partition per process (each Ray actor fills its own)


def job():
    """The task, a working model with its flat view, and the partition: loaded once per process."""
    if "task" not in _CACHE:
        cfg, _ = bench_config("tiny")
        _, task = prepare(cfg)
        model = task.new_model(SETTINGS["seed"]).to(CPU)
        parts = make_partition("uniform", np.zeros(task.num_examples("train"), dtype=int), SETTINGS["clients"],
                               seed=SETTINGS["seed"])
        _CACHE.update(task=task, model=model, flat=FlatParams(model), parts=parts)
    return _CACHE["task"], _CACHE["model"], _CACHE["flat"], _CACHE["parts"]


def client_config() -> ClientConfig:
    return ClientConfig(optimizer="adamw", lr=SETTINGS["lr"], local_epochs=SETTINGS["epochs"], batch_size=SETTINGS["batch"])


def run_ours() -> tuple[float, float]:
    start = time.perf_counter()
    _CACHE.clear()
    task, _, _, parts = job()
    cfg = FLConfig(algorithm="fedavg", rounds=SETTINGS["rounds"], clients_per_round=SETTINGS["per_round"],
                   client=client_config(), server=ServerConfig(), seed=SETTINGS["seed"], progress=False)
    initial = _CACHE["flat"].get()
    out = run_federated(task, parts, cfg, CPU)
    return time.perf_counter() - start, out.final["accuracy"], float((out.weights - initial).norm())


def run_flower() -> tuple[float, float]:
    from flwr.client import ClientApp, NumPyClient
    from flwr.common import Context, ndarrays_to_parameters
    from flwr.server import ServerApp, ServerAppComponents, ServerConfig as FlowerServerConfig
    from flwr.server.strategy import FedAvg as FlowerFedAvg
    from flwr.simulation import run_simulation

    accuracy: list[float] = []
    moved: list[float] = []

    class Client(NumPyClient):
        def __init__(self, cid: int) -> None:
            self.cid = cid

        def fit(self, parameters, config):
            task, model, flat, parts = job()
            flat.set_(torch.from_numpy(np.concatenate([p.ravel() for p in parameters])))
            seed = client_seed(SETTINGS["seed"], int(config["round"]), self.cid)
            rng = np.random.default_rng(seed)
            torch.manual_seed(seed)
            batches = batch_order(parts[self.cid], SETTINGS["batch"], SETTINGS["epochs"], rng)
            train_steps(task, model, flat, batches, client_config(), CPU)
            return [v.detach().numpy().copy() for v in flat.split(flat.flat)], len(parts[self.cid]), {}

    def client_fn(context: Context):
        return Client(int(context.node_config["partition-id"])).to_client()

    def evaluate_fn(server_round: int, parameters, config):
        task, model, flat, _ = job()
        weights = torch.from_numpy(np.concatenate([p.ravel() for p in parameters]))
        if server_round == 0:
            _CACHE["initial"] = weights.clone()
        flat.set_(weights)
        _, metrics = evaluate(task, model, CPU)
        if server_round > 0:
            accuracy.append(metrics["accuracy"])
            moved.append(float((weights - _CACHE["initial"]).norm()))
        return 0.0, {"accuracy": metrics["accuracy"]}

    def server_fn(context: Context):
        _, _, flat, _ = job()  # a fresh process state: the working model still holds the seed's initial weights
        init = [v.detach().numpy().copy() for v in flat.split(flat.get())]
        strategy = FlowerFedAvg(fraction_fit=SETTINGS["per_round"] / SETTINGS["clients"],
                                min_fit_clients=SETTINGS["per_round"], fraction_evaluate=0.0, min_evaluate_clients=0,
                                min_available_clients=SETTINGS["clients"], evaluate_fn=evaluate_fn,
                                on_fit_config_fn=lambda r: {"round": r}, initial_parameters=ndarrays_to_parameters(init))
        return ServerAppComponents(strategy=strategy, config=FlowerServerConfig(num_rounds=SETTINGS["rounds"]))

    start = time.perf_counter()
    _CACHE.clear()
    run_simulation(server_app=ServerApp(server_fn=server_fn), client_app=ClientApp(client_fn=client_fn),
                   num_supernodes=SETTINGS["clients"],
                   backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}})
    nan = float("nan")
    return time.perf_counter() - start, (accuracy[-1] if accuracy else nan), (moved[-1] if moved else nan)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=SETTINGS["rounds"])
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    SETTINGS["rounds"] = args.rounds
    _, source = bench_config("tiny")
    import flwr

    ours, flower = [], []
    for _ in range(args.repeats):  # alternate the two, so machine-load drift hits both
        ours.append(run_ours())
        flower.append(run_flower())
    o, f = statistics.median(r[0] for r in ours), statistics.median(r[0] for r in flower)
    df = pd.DataFrame([
        {"system": "fednlp-bench in-process", "end-to-end s (median)": o, "final accuracy": ours[-1][1],
         "norm(w_final - w_0)": ours[-1][2], "time vs fednlp-bench": 1.0},
        {"system": f"Flower {flwr.__version__} simulation (Ray)", "end-to-end s (median)": f,
         "final accuracy": flower[-1][1], "norm(w_final - w_0)": flower[-1][2], "time vs fednlp-bench": f / o},
    ])
    table = markdown_table(df)
    s = SETTINGS
    header = (f"Tiny model on {source}, uniform partition, {s['clients']} clients, {s['per_round']} per round, "
              f"{s['rounds']} rounds, {s['epochs']} local epoch, batch {s['batch']}, AdamW lr {s['lr']}, server "
              f"evaluation every round; median of {args.repeats} alternating runs; Flower's Ray actors get 1 CPU each "
              f"({os.cpu_count()} cores). Target: Flower / fednlp-bench >= 2. {machine()}.")
    publish("Against Flower", header, table, "bash benchmarks/flower_compare.sh", not args.no_write)


if __name__ == "__main__":
    # Run as the imported module `flower_compare`, never as __main__: Ray pickles __main__'s functions by
    # value together with their globals, and a pickled copy of the working model loses the sharing between
    # its parameters and the flat vector (the clients then returned their input unchanged). By reference,
    # each actor imports this module and builds its own task and model.
    here = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [here, str(Path(here).parent), os.environ.get("PYTHONPATH")]))
    import flower_compare

    flower_compare.main()
