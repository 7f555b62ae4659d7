"""`fednlp-bench compare`: centralized vs the run's algorithm (FedAvg by default) on an IID and on a label-skew
partition, one task and one budget; a table, a CSV and a plot of the three curves."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from .config import RunConfig
from .errors import UserError
from .results import save_figure
from .runner import prepare, run_central, run_fl
from .tasks.spec import higher_is_better


def compare(cfg: RunConfig, skew_alpha: float = 0.1) -> tuple[str, Path]:
    """Run the three settings, write results, a CSV and a plot; return the printed table and the folder."""
    if cfg.log_dir is not None:  # three runs in one folder would draw as one zigzag curve
        raise UserError("log_dir applies to `fednlp-bench run` and `centralized`, not to compare's three runs",
                        "leave log_dir out of the config, or run the settings one by one with --log-dir")
    runs = {
        "centralized": replace(cfg, algorithm="centralized", partition="uniform", alpha=None),
        "fedavg iid": replace(cfg, algorithm=cfg.algorithm, partition="uniform", alpha=None),
        f"fedavg alpha={skew_alpha:g}": replace(cfg, algorithm=cfg.algorithm, partition="label", alpha=skew_alpha),
    }
    if cfg.algorithm != "fedavg":
        runs = {k.replace("fedavg", cfg.algorithm): v for k, v in runs.items()}
    for run in runs.values():
        run.validate()  # every setting checked before anything is trained or written
    _, task = prepare(next(iter(runs.values())))
    records = {}
    for label, run in runs.items():
        records[label] = run_central(run, task) if run.algorithm == "centralized" else run_fl(run, task)
    metric = task.primary_metric
    central = records[next(iter(records))]["final"][metric]
    rows = []
    for label, rec in records.items():
        row = {"setting": label, **{m: rec["final"][m] for m in task.metric_names}}
        final = rec["final"][metric]
        if higher_is_better(metric):
            row[f"{metric} / centralized"] = final / central if central else float("nan")
        else:  # perplexity: centralized / federated, so 1.0 is as good as centralized here too
            row[f"centralized / {metric}"] = central / final if final else float("nan")
        if rec["kind"] == "federated":
            row["client p10 " + metric] = rec["clients"][metric]["p10"]
            row["partition JSD"] = rec["partition"]["mean_pairwise_jsd"]
        row["wall s"] = rec["wall_time_s"]
        rows.append(row)
    df = pd.DataFrame(rows)
    out = Path(cfg.output)
    df.to_csv(out / f"compare-{task.name}.csv", index=False)
    plot_compare(records, metric, out / f"compare-{task.name}.png")
    header = (f"task {task.name} ({task.num_examples('train')} train / {task.num_examples('test')} test), "
              f"model {task.model_name}, {cfg.clients} clients, {cfg.clients_per_round} per round, {cfg.rounds} rounds")
    return header + "\n" + df.to_string(index=False, float_format=lambda x: f"{x:.3f}"), out


def plot_compare(records: dict, metric: str, path: Path) -> None:
    """Test metric against passes over the training data, one line per setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for label, rec in records.items():
        cfg = rec["config"]
        if rec["kind"] == "centralized":
            xs = [p["passes"] for p in rec["curve"]]
        else:
            per_round = cfg["local_epochs"] * cfg["clients_per_round"] / cfg["clients"]
            xs = [p["round"] * per_round for p in rec["curve"]]
        ax.plot(xs, [p["metrics"][metric] for p in rec["curve"]], marker="o", ms=3, label=label)
    ax.set_xlabel("passes over the training data")
    ax.set_ylabel(f"test {metric}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
