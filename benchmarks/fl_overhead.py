"""FL overhead: FedAvg wall time for R rounds vs a centralized loop over exactly the same batches.

Run:  python benchmarks/fl_overhead.py [--models tiny minilm] [--rounds 10]
The centralized side replays the FL run's batch sequence (same examples, same order, same batch shapes,
same number of optimizer steps) through one model and one optimizer; the FL side adds what federation costs
in-process: sampling, loading the global weights into the working model per client, a fresh client
optimizer, the delta and the aggregation. Both build the model and evaluate once at the end. Target: <= 1.10.
Prints a table and writes its section of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd
import torch

from _report import machine, markdown_table, publish
from _tasks import bench_task
from fednlp_bench.fl.client import ClientConfig, batch_order, train_steps
from fednlp_bench.fl.params import FlatParams
from fednlp_bench.fl.sampling import sample_clients
from fednlp_bench.fl.simulation import FLConfig, client_seed, evaluate, run_federated
from fednlp_bench.fl.strategies import ServerConfig
from fednlp_bench.partition import make_partition

CPU = torch.device("cpu")


def fl_batches(parts: list[np.ndarray], cfg: FLConfig) -> list[np.ndarray]:
    """The exact batch sequence the FL run trains on, round by round and client by client."""
    out = []
    for r in range(1, cfg.rounds + 1):
        for c in sample_clients(len(parts), cfg.clients_per_round, cfg.seed, r):
            rng = np.random.default_rng(client_seed(cfg.seed, r, int(c)))
            out.extend(batch_order(parts[c], cfg.client.batch_size, cfg.client.local_epochs, rng))
    return out


def centralized_replay(task, batches: list[np.ndarray], client: ClientConfig, seed: int) -> float:
    start = time.perf_counter()
    model = task.new_model(seed).to(CPU)
    flat = FlatParams(model)
    torch.manual_seed(seed)
    train_steps(task, model, flat, batches, client, CPU)
    evaluate(task, model, CPU)
    return time.perf_counter() - start


def federated(task, parts, cfg: FLConfig) -> float:
    start = time.perf_counter()
    run_federated(task, parts, cfg, CPU)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["tiny"])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--per-round", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    rows = []
    for model in args.models:
        task, source = bench_task(model)
        parts = make_partition("uniform", np.zeros(task.num_examples("train"), dtype=int), args.clients, seed=42)
        client = ClientConfig(optimizer="adamw", lr=2e-3 if model == "tiny" else 5e-5, batch_size=args.batch_size)
        cfg = FLConfig(algorithm="fedavg", rounds=args.rounds, clients_per_round=args.per_round, client=client,
                       server=ServerConfig(), eval_every=args.rounds, seed=42, progress=False)
        batches = fl_batches(parts, cfg)
        federated(task, parts, cfg), centralized_replay(task, batches, client, 42)  # warm-up (allocator, caches)
        fl_t, c_t = [], []
        for _ in range(args.repeats):  # alternate, so drift in machine load hits both sides alike
            fl_t.append(federated(task, parts, cfg))
            c_t.append(centralized_replay(task, batches, client, 42))
        fl_s, c_s = statistics.median(fl_t), statistics.median(c_t)
        rows.append({"model": model, "data": source, "rounds": args.rounds,
                     "clients/round": args.per_round, "steps": len(batches),
                     "examples": int(sum(len(b) for b in batches)), "centralized s": c_s, "fedavg s": fl_s,
                     "ratio fedavg/centralized": fl_s / c_s})
    df = pd.DataFrame(rows)
    table = markdown_table(df)
    header = (f"FedAvg vs a centralized loop over the same batches (median of {args.repeats}, alternating; "
              f"target ratio <= 1.10). {machine()}.")
    publish("FL overhead", header, table, f"python benchmarks/fl_overhead.py --models {' '.join(args.models)}",
            not args.no_write)


if __name__ == "__main__":
    main()
