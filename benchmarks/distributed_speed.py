"""The distributed backend vs one process on the same run: wall time and final-parameter difference.

Run:  python benchmarks/distributed_speed.py [--procs 2]
Three executions of one `fednlp-bench run` config: in-process with all cores' threads (what a user gets by
default), in-process with one thread, and `torchrun --nproc-per-node P` with the gloo backend and one thread
per rank. Wall times are end to end (process start to result); "train s" is the run's own wall time (model,
rounds, evaluation). Parameters come from each run's final checkpoint. On a CPU box the ranks share the
same cores, so the speed-up is bounded by the core count; on GPUs each rank has its own device.
Prints a table and writes its section of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _report import machine, markdown_table, publish  # noqa: E402
from _tasks import bench_config  # noqa: E402


def run(cmd: list[str], threads: int | None, out: Path) -> dict:
    env = dict(os.environ)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    rec = json.loads(next(out.glob("*.json")).read_text())
    weights = torch.load(next(out.glob("checkpoints/*/checkpoint.pt")), weights_only=False)["global_weights"]
    return {"wall s": wall, "train s": rec["wall_time_s"], "accuracy": rec["final"]["accuracy"], "weights": weights}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--per-round", type=int, default=4)
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    cfg, source = bench_config(args.model)
    data = ["--task", cfg.task, "--model", args.model, "--clients", str(args.clients), "--clients-per-round",
            str(args.per_round), "--rounds", str(args.rounds), "--checkpoint-every", str(args.rounds), "--no-progress"]
    if cfg.data_dir:
        data += ["--data-dir", cfg.data_dir]
    cores = os.cpu_count() or 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        plans = [("in-process", cores, []), ("in-process", 1, []),
                 (f"torchrun gloo x{args.procs}", 1, ["--backend", "distributed"])]
        for i, (name, threads, extra) in enumerate(plans):
            out = Path(tmp) / str(i)
            cli = ["-m", "fednlp_bench.cli", "run", *data, *extra, "--output", str(out)]
            if extra:
                cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
                       "--nproc-per-node", str(args.procs), *cli]
            else:
                cmd = [sys.executable, *cli]
            rows.append({"backend": name, "processes": args.procs if extra else 1, "threads each": threads,
                         **run(cmd, threads, out)})
    ref1 = rows[1]["weights"]
    for r in rows:
        r["max abs diff vs in-process 1 thread"] = float((r.pop("weights") - ref1).abs().max())
    df = pd.DataFrame(rows)
    df["wall speed-up"] = rows[0]["wall s"] / df["wall s"]
    df["train speed-up"] = rows[0]["train s"] / df["train s"]
    table = markdown_table(df, floatfmt=".3g")
    header = (f"{args.model} model on {source}, {args.clients} clients, {args.per_round} per round, "
              f"{args.rounds} rounds; {cores} cores; speed-ups relative to the first row. "
              f"Weights are compared with the 1-thread in-process run: the distributed ranks run 1 thread each, "
              f"and a different thread count changes float reduction order inside each client. {machine()}.")
    publish("Distributed backend", header, table, f"python benchmarks/distributed_speed.py --procs {args.procs}",
            not args.no_write)


if __name__ == "__main__":
    main()
