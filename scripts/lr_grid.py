"""Learning-rate sanity grid for the smoke profile: which client optimizer and learning rate make FedAvg,
FedProx and FedOpt learn on each task, and the values the task cards keep (profiles.smoke).

Every run takes the task card's smoke settings and overrides only what the grid varies; seed 1, the
partition fixed by data seed 42 as in the reproductions. The script prints the final primary metric of each
candidate next to the untrained model's, run by run and then as one table, and appends that table to --output
(CSV).

    DATA_DIR=../shared/data python scripts/lr_grid.py --tasks sst2 wnut17 \
        --grid "fedavg sgd 0.1" "fedavg adamw 1e-4" "fedavg adamw 3e-4" --partition "label alpha=1"

A grid entry is "ALGORITHM OPTIMIZER LR [key=value ...]", e.g. "fedprox adamw 1e-4 mu=0.01" or
"fedopt adamw 1e-4 server_lr=1.0 server_momentum=0.9". Without --grid the default grid below runs.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd

DEFAULT_GRID = [
    "fedavg sgd 0.1", "fedavg sgd 0.5", "fedavg adamw 3e-5", "fedavg adamw 1e-4", "fedavg adamw 3e-4",
    "fedprox adamw 1e-4 mu=0.01", "fedprox adamw 1e-4 mu=0.1",
    "fedopt adamw 1e-4 server_momentum=0.0", "fedopt adamw 1e-4 server_momentum=0.9",
]


def parse_entry(text: str) -> dict:
    algo, optimizer, lr, *rest = text.split()
    out = {"algorithm": algo, "client_optimizer": optimizer, "client_lr": float(lr)}
    for kv in rest:
        key, value = kv.split("=", 1)
        out[key] = int(value) if value.isdigit() else float(value)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", required=True, help="tasks whose cards have a smoke profile")
    p.add_argument("--grid", nargs="+", default=DEFAULT_GRID, help="entries 'ALGORITHM OPTIMIZER LR [key=value]'")
    p.add_argument("--partition", default="uniform", help="partition, e.g. uniform or 'label alpha=1'")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--output", default="runs/lr_grid/grid.csv", help="CSV of the grid (appended)")
    args = p.parse_args(argv)
    if os.environ.get("DATA_DIR"):
        os.environ.setdefault("FEDNLP_DATA_DIR", os.environ["DATA_DIR"])

    from fednlp_bench.cli import quiet_model_loading
    from fednlp_bench.config import RunConfig
    from fednlp_bench.reproduce import load_task, untrained_metric
    from fednlp_bench.runner import run_fl
    from fednlp_bench.tasks.profiles import parse_partition, profile_settings
    from fednlp_bench.tasks.registry import get_spec

    quiet_model_loading()
    part = parse_partition(args.partition)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.tasks:
        spec = get_spec(name)
        task = None
        for entry in args.grid:
            e = parse_entry(entry)
            settings = {**profile_settings(spec, "smoke", e["algorithm"]), **e, **part}
            cfg = RunConfig(**{**settings, "task": name, "seed": args.seed, "output": str(out.parent / "runs"),
                               "progress": False})
            if task is None:
                task = load_task(cfg)
                untrained = untrained_metric(cfg.resolved(), task)
            start = time.perf_counter()
            rec = run_fl(cfg, task)
            metric = rec["task"]["primary_metric"]
            rows.append({"task": name, "partition": args.partition, "entry": entry, "metric": metric,
                         "final": rec["final"][metric], "untrained": untrained,
                         "seconds": round(time.perf_counter() - start, 1)})
            print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
    df = pd.DataFrame(rows)
    df.to_csv(out, mode="a", header=not out.exists(), index=False)
    print()
    print(df.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
