"""What a label-skew alpha means here and in Flower Datasets: mean pairwise JSD of the client label mixes.

Run:  bash scripts/alpha_comparison.sh   (builds a throw-away venv with flwr-datasets; nothing is added to the
project's dependencies). It rewrites the table between the alpha-table markers of docs/partitions.md.

Both partitioners split the same labels: 20 classes with Zipf-like sizes (class k holds a share proportional to
1/(k+1)), 20,000 examples, 100 clients. fednlp-bench's label skew is FedNLP's rule (equal client sizes, client
label mix ~ Dir(alpha * p_global), shortfalls filled from what is left); Flower's DirichletPartitioner splits each
class over the clients with proportions ~ Dir(alpha) (min_partition_size 0, self_balancing off, so no draw is
rejected). The divergence is the mean over client pairs of the Jensen-Shannon divergence (log 2) of the client
label distributions, averaged over seeds.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

from fednlp_bench.partition import client_label_histograms, dirichlet_label_partition, mean_pairwise_jsd

PAGE = Path(__file__).resolve().parents[1] / "docs" / "partitions.md"
START, END = "<!-- alpha-table:start -->", "<!-- alpha-table:end -->"
ALPHAS = (0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
FLOWER_GRID = tuple(float(a) for a in np.round(np.geomspace(0.01, 10.0, 31), 4))


def imbalanced_labels(num_classes: int, num_examples: int) -> np.ndarray:
    """Exact class counts proportional to 1/(k+1), in a fixed shuffled order."""
    share = 1.0 / np.arange(1, num_classes + 1)
    counts = np.floor(share / share.sum() * num_examples).astype(int)
    counts[0] += num_examples - counts.sum()
    labels = np.repeat(np.arange(num_classes), counts)
    return np.random.default_rng(0).permutation(labels)


def divergence(hist: np.ndarray) -> float:
    """Mean pairwise JSD of the clients that hold examples (Flower's rule can leave a client empty)."""
    return mean_pairwise_jsd(hist[hist.sum(axis=1) > 0])


def ours(labels: np.ndarray, clients: int, alpha: float, seeds: range, num_classes: int) -> float:
    return float(np.mean([divergence(client_label_histograms(dirichlet_label_partition(labels, clients, alpha, seed=s),
                                                             labels, num_classes)) for s in seeds]))


def flower(labels: np.ndarray, clients: int, alpha: float, seeds: range, num_classes: int) -> float:
    from datasets import Dataset
    from flwr_datasets.partitioner import DirichletPartitioner

    ds = Dataset.from_dict({"label": labels})
    values = []
    for s in seeds:
        p = DirichletPartitioner(num_partitions=clients, partition_by="label", alpha=alpha, min_partition_size=0,
                                 self_balancing=False, seed=s)
        p.dataset = ds
        parts = [np.asarray(p.load_partition(i)["label"], dtype=np.int64) for i in range(clients)]
        # the partition holds labels, not ids: histogram them directly
        hist = np.stack([np.bincount(x, minlength=num_classes) for x in parts])
        values.append(divergence(hist))
    return float(np.mean(values))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classes", type=int, default=20)
    ap.add_argument("--examples", type=int, default=20_000)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--page", default=str(PAGE), help="markdown page whose alpha-table block is rewritten")
    args = ap.parse_args()
    labels, seeds = imbalanced_labels(args.classes, args.examples), range(args.seeds)
    grid = {a: flower(labels, args.clients, a, seeds, args.classes) for a in FLOWER_GRID}
    lines = ["| alpha | fednlp-bench (FedNLP's rule) | Flower DirichletPartitioner | Flower alpha with the same JSD |",
             "|---:|---:|---:|---:|"]
    for a in ALPHAS:
        mine, theirs = ours(labels, args.clients, a, seeds, args.classes), flower(labels, args.clients, a, seeds,
                                                                                 args.classes)
        match = min(grid, key=lambda b: abs(grid[b] - mine))
        lines.append(f"| {a:g} | {mine:.3f} | {theirs:.3f} | {match:g} |")
    table = "\n".join(lines)
    print(table)
    page = Path(args.page)
    text = page.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"alpha_comparison: error: {page} has no {START} ... {END} block; add one where the table goes")
    from flwr_datasets import __version__ as flower_version

    block = (f"{START}\nflwr-datasets {flower_version}; {args.classes} classes (sizes proportional to 1/(k+1)), {args.examples:,} examples, "
             f"{args.clients} clients; mean pairwise JSD (log 2) of the client label mixes, mean of {args.seeds} "
             f"seeds. The last column is the alpha of Flower's grid ({FLOWER_GRID[0]:g} to {FLOWER_GRID[-1]:g}, "
             f"{len(FLOWER_GRID)} values) whose JSD is nearest ours.\n\n{table}\n{END}")
    page.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S),
                    encoding="utf-8")


if __name__ == "__main__":
    main()
