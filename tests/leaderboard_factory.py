"""Builds valid schema-1 run JSONs for the leaderboard tests (structure copied from real run files)."""
from __future__ import annotations

import copy
from typing import Any

FAMILY_METRICS = {
    "text_classification": ["accuracy", "macro_f1"],
    "sequence_tagging": ["precision", "recall", "f1", "accuracy"],
    "extractive_qa": ["exact_match", "f1"],
    "seq2seq": ["rouge1", "rouge2", "rougeL"],
    "language_modeling": ["perplexity", "token_accuracy"],
}
PRIMARY = {"text_classification": "accuracy", "sequence_tagging": "f1", "extractive_qa": "f1", "seq2seq": "rougeL",
           "language_modeling": "perplexity"}
DIGEST = "6be21ae22470b88cd22dda7fbf83204b00b0b99994d0ff9d16fa34f0967ed316"
FINGERPRINT = "4aaf836e1c62cf5f12288c150cda168be0fced0577938c1e43992b5d79a41370"


def _metrics(names: list[str], primary: str, value: float) -> dict[str, float]:
    return {m: (value if m == primary else 0.5) for m in names}


def make_record(kind: str = "federated", *, task: str = "demo", family: str = "text_classification",
                algorithm: str = "fedavg", seed: int = 42, final: float = 0.7, curve: list[float] | None = None,
                partition: str = "uniform", alpha: float | None = None, digest: str = DIGEST,
                client_p10: float = 0.4, client_std: float = 0.1, upload: int = 1342984, clients: int = 10,
                clients_per_round: int = 5, rounds: int = 3, model: str = "tiny", max_train: int | None = None,
                fingerprint: str = FINGERPRINT, settings: dict[str, Any] | None = None,
                privacy: dict[str, Any] | None = None, mia_auc: float | None = None,
                converged: bool = True) -> dict[str, Any]:
    """A valid schema-1 run JSON; `curve` is the primary metric per round (default: ramps to `final`).

    A centralized record is the converged reference (max_epochs set) unless `converged` is False (a fixed budget
    of `rounds` passes).

    Without `settings`, `privacy` and `mia_auc` the record has none of the keys of the trustworthy-FL options
    (like a result written before they existed). `settings` is merged into the config (e.g. selection,
    continual_rounds, dp_clip); `privacy` becomes the "privacy" block and `mia_auc` the AUC of a
    "membership_inference" block.
    """
    names, primary = FAMILY_METRICS[family], PRIMARY[family]
    federated = kind == "federated"
    values = curve if curve is not None else [final * (i + 1) / rounds for i in range(rounds)]
    points = []
    for i, v in enumerate(values):
        point: dict[str, Any] = {"round": i + 1, "metrics": _metrics(names, primary, v), "train_loss": 1.0 / (i + 1)}
        if federated:
            point["clients"] = list(range(clients_per_round))
        else:
            point["passes"] = float(i + 1)
        point["wall_time_s"] = 1.5 * (i + 1)
        points.append(point)
    config = {
        "task": task, "algorithm": algorithm if federated else "centralized", "partition": partition,
        "alpha": alpha, "beta": None, "clients": clients, "clients_per_round": clients_per_round, "rounds": rounds,
        "local_epochs": 1, "batch_size": 32, "client_optimizer": "adamw", "client_lr": 0.002, "mu": 0.0,
        "server_optimizer": "sgd", "server_lr": 1.0, "server_momentum": 0.0, "weighting": "examples",
        "epochs": None if federated or converged else float(rounds),
        "max_epochs": rounds if not federated and converged else None,
        "patience": 2 if not federated and converged else None, "eval_every": 1, "seed": seed, "model": model,
        "max_length": 64, "dropout": None, "data_dir": None, "max_train": max_train, "max_test": None,
        "output": "runs", "cache_dir": None, "device": "auto", "progress": False, "extra": {},
    }
    record: dict[str, Any] = {
        "schema_version": 1, "package_version": "0.1.0", "created_utc": "2026-11-25T16:45:59+00:00",
        "environment": {"python": "3.11.7", "torch": "2.13.0+cpu", "transformers": "5.24.0", "platform": "Linux"},
        "kind": kind, "config": config, "seed": seed,
        "task": {"name": task, "family": family, "model": model, "max_length": 64, "num_train": 564, "num_test": 141,
                 "num_labels": 2, "data_fingerprint": fingerprint, "metric_names": list(names),
                 "primary_metric": primary},
    }
    if federated:
        name = "uniform" if partition == "uniform" else f"niid_{partition}_clients={clients}_alpha={alpha!r}"
        record["partition"] = {
            "method": partition, "name": name, "clients": clients, "alpha": alpha, "beta": None, "seed": seed,
            "digest": digest, "train_digest": "a" * 64, "test_digest": "b" * 64,
            "train_sizes": {"min": 51, "max": 57, "mean": 56.4, "std_over_mean": 0.03}, "mean_pairwise_jsd": 0.04,
        }
    record["curve"] = points
    if not federated and converged:  # the converged reference: its curve is the validation metric per epoch
        for point in points:
            point["split"] = "validation"
        record["early_stopping"] = {"monitor": f"validation {primary}", "max_epochs": rounds, "patience": 2,
                                    "epochs_run": len(points), "best_epoch": len(points),
                                    "best_validation": points[-1]["metrics"], "validation_examples": 56,
                                    "train_examples": 508}
        record["task"]["num_validation"] = 56
    record["final"] = _metrics(names, primary, final)
    record["wall_time_s"] = max(7.8, 1.5 * len(points))  # at or after the curve's last wall time
    record["num_parameters"] = upload // 4  # a client uploads its float32 parameters
    if federated:
        record["clients"] = {m: {"mean": 0.5, "std": client_std if m == primary else 0.1, "min": 0.0,
                                 "p10": client_p10 if m == primary else 0.2, "median": 0.5, "max": 0.9}
                             for m in names}
    record["upload_bytes_per_client_per_round"] = upload if federated else 0
    if settings:
        record["config"].update(settings)
    if privacy is not None:
        record["privacy"] = privacy
    if mia_auc is not None:
        record["membership_inference"] = {"attack": "loss threshold (Yeom et al. 2018)", "auc": mia_auc,
                                          "members": 100, "non_members": 100, "member_loss_mean": 0.5,
                                          "non_member_loss_mean": 0.6}
    return record


def with_change(record: dict[str, Any], path: str, value: Any = None, delete: bool = False) -> dict[str, Any]:
    """A deep copy of `record` with the dotted `path` set to `value` (or deleted); list indices are digits."""
    out = copy.deepcopy(record)
    *parents, last = path.split(".")
    node: Any = out
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    key: Any = int(last) if isinstance(node, list) else last
    if delete:
        del node[key]
    else:
        node[key] = value
    return out
