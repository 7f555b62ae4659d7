"""Result records: one JSON per run (written atomically, named by its run id) and a learning-curve PNG beside it;
per-client metric distributions, and removal of the temp files a killed write left."""
from __future__ import annotations

import json
import math
import os
import platform
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import UserError

SCHEMA_VERSION = 1


def client_distribution(values: np.ndarray, higher_is_better: bool = True) -> dict[str, float]:
    """Mean, std, min, p10, median and max of per-client metric values (NaNs dropped).

    p10 is the 10th-percentile client by quality: the 10th percentile of the values when larger is better,
    the 90th when smaller is better (perplexity), so it always reads as "the worst 10% of clients do this well".
    """
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return {k: float("nan") for k in ("mean", "std", "min", "p10", "median", "max")}
    return {"mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()),
            "p10": float(np.percentile(v, 10 if higher_is_better else 90)), "median": float(np.median(v)),
            "max": float(v.max())}


def per_client_metrics(task, predictions, test_parts: list[np.ndarray]) -> dict[str, dict[str, float]]:
    """Metric distribution over clients, each client scored on its own test partition."""
    from .tasks.spec import higher_is_better

    rows = [task.metrics(predictions, "test", ids) for ids in test_parts]
    return {m: client_distribution(np.array([r[m] for r in rows]), higher_is_better(m)) for m in task.metric_names}


def run_id(record: dict[str, Any]) -> str:
    """<task>-<method>-<partition>-seed<seed>-<settings key>; the method is the algorithm plus its non-default
    selection, continual-data and DP settings (the board's method name, e.g. fedavg+activity), the settings key the
    first 10 digits of the hash of every setting that changes what is computed (config.settings_key, as in the
    run's checkpoint folder), so runs that differ in any setting (learning rate, rounds, clients...) written to one
    folder do not overwrite each other."""
    from .config import settings_key
    from .leaderboard.schema import default_method

    cfg = record["config"]
    part = record.get("partition", {}).get("name", "all")
    task = record.get("task", {}).get("name") or cfg["task"]  # the card's name when --task is a card file
    name = default_method(record)
    if record.get("kind") == "centralized":  # "centralized" files: the fixed budget; the converged reference apart
        tags = name.split("+")[1:]
        name = "+".join(["centralized-converged" if cfg.get("max_epochs") is not None else "centralized", *tags])
    method = re.sub(r"[^A-Za-z0-9._+=-]+", "_", name).strip("_")
    return f"{task}-{method}-{part}-seed{cfg['seed']}-{settings_key(cfg)[:10]}"


def _clean(obj: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN/inf to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# `.<name>.tmp<pid>` (and `.<name>.tmp<pid>.png`): what atomic_write, save_figure and checkpoints write before renaming
_TEMP_NAME = re.compile(r"^\..+\.tmp(\d+)(\.png)?$")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Delete the temp files a killed write left in `folder` (`.<name>.tmp<pid>` of a process that is gone);
    returns them. A running process's temp files are left alone."""
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for path in sorted(folder.iterdir()):
        match = _TEMP_NAME.match(path.name)
        if not match or not path.is_file():
            continue
        pid = int(match.group(1))
        if pid != os.getpid() and _running(pid):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` through a temp file (`.<name>.tmp<pid>`) renamed into place; on failure the temp file is removed."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_figure(fig, path: Path, dpi: int = 110) -> None:
    """Save a matplotlib figure atomically (temp file, then rename) and close it."""
    import matplotlib.pyplot as plt

    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.png")
    try:
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)


def environment() -> dict[str, str]:
    import torch
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "platform": platform.platform(terse=True)}


def write_result(record: dict[str, Any], output: str, plot: bool = True) -> Path:
    """Write `<output>/<run id>.json` (and `.png`) atomically; returns the JSON path. The folder is made here,
    when there is a result to write."""
    out = Path(output)
    record = {"schema_version": SCHEMA_VERSION, "package_version": __version__,
              "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "environment": environment(), **record}
    path = out / f"{run_id(record)}.json"
    try:
        out.mkdir(parents=True, exist_ok=True)
        if plot:
            plot_curve(record, path.with_suffix(".png"))
        atomic_write(path, (json.dumps(_clean(record), indent=2, sort_keys=False) + "\n").encode())
    except OSError as exc:
        raise UserError(f"cannot write the result to {out} ({exc.strerror or exc})",
                        "pass --output with a folder you can write to, on a disk with room") from None
    return path


def plot_curve(record: dict[str, Any], path: Path) -> None:
    """Learning curve of the primary metric (and train loss) over rounds or passes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = record["task"]["primary_metric"]
    curve = record["curve"]
    xs = [p["round"] for p in curve]
    xlabel = "pass over the training data" if record["kind"] == "centralized" else "round"
    split = "validation" if curve and curve[0].get("split") == "validation" else "test"
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(xs, [p["metrics"][metric] for p in curve], marker="o", ms=3, label=f"{split} {metric}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric)
    if all("train_loss" in p for p in curve):  # runs on other runtimes (FedML) report no client losses
        ax2 = ax.twinx()
        ax2.plot(xs, [p["train_loss"] for p in curve], color="tab:gray", ls="--", lw=1, label="train loss")
        ax2.set_ylabel("train loss")
    ax.set_title(f"{record['config']['task']} · {record['config']['algorithm']} · {record.get('partition', {}).get('name', 'all data')}",
                 fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
