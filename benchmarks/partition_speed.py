"""Label-skew partition speed: fednlp-bench vs flwr-datasets' DirichletPartitioner on the same labels.

Run:  bash benchmarks/partition_speed.sh   (builds a throw-away venv with flwr-datasets; nothing is
added to the project's dependencies). Prints a table and writes its section of benchmarks/RESULTS.md.
By default both partitioners see the same 1,000,000 labels (10 classes) and make 1,000 clients at alpha
0.5; each time is the best of --repeats.
Their semantics differ (FedNLP: equal client sizes, per-client label mix ~ Dir(alpha*p); Flower:
per-label split across clients ~ Dir(alpha)), so this compares cost, not output.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _report import markdown_table, publish
from fednlp_bench.partition import dirichlet_label_partition, partition_digest


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--results", default=str(Path(__file__).with_name("RESULTS.md")))
    args = ap.parse_args()
    labels = np.random.default_rng(0).integers(0, 10, size=args.examples)

    ours = best_of(lambda: dirichlet_label_partition(labels, args.clients, args.alpha, seed=42), args.repeats)
    parts = dirichlet_label_partition(labels, args.clients, args.alpha, seed=42)
    assert sum(len(p) for p in parts) == args.examples
    rows = [{"partitioner": "fednlp-bench label skew (numpy)", "seconds": ours}]

    try:
        from datasets import Dataset
        from flwr_datasets.partitioner import DirichletPartitioner

        ds = Dataset.from_dict({"label": labels})

        def flower() -> None:
            p = DirichletPartitioner(num_partitions=args.clients, partition_by="label", alpha=args.alpha,
                                     min_partition_size=0, self_balancing=False, seed=42)
            p.dataset = ds
            p.load_partition(0)  # computes every client's indices

        rows.append({"partitioner": "flwr-datasets DirichletPartitioner", "seconds": best_of(flower, args.repeats)})
    except ImportError as exc:
        rows.append({"partitioner": f"flwr-datasets not installed ({exc.name})", "seconds": float("nan")})

    df = pd.DataFrame(rows)
    df["ratio vs fednlp-bench"] = df["seconds"] / ours
    header = (f"label skew, {args.examples:,} labels x {args.clients:,} clients, alpha {args.alpha}, best of "
              f"{args.repeats}; digest {partition_digest(parts)[:12]}")
    table = markdown_table(df)
    publish("Partition speed", header, table, "bash benchmarks/partition_speed.sh", path=Path(args.results))


if __name__ == "__main__":
    main()
