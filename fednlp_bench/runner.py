"""From a RunConfig to a written result: load data, build the task, partition, train, record."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import LOAD_OPTIONS, RunConfig, run_settings, settings_key
from .errors import UserError
from .data.splits import check_classification_data, holdout_validation
from .fl.centralized import EarlyStopping, fl_equivalent_passes, run_centralized, run_centralized_converged
from .fl.client import ClientConfig
from .fl.checkpoint import settings_difference, stop_on_sigterm
from .fl.distributed import RankInfo, init_distributed, shutdown
from .fl.continual import ContinualStreams
from .fl.dp_sgd import example_privacy_record
from .fl.privacy import ClientDP, client_level_epsilon
from .fl.attacks import Attack
from .fl.simulation import Checkpointing, FLConfig, RunOutput, make_algorithm, pick_device, run_federated
from .fl.strategies import ServerConfig
from .partition import client_label_histograms, mean_pairwise_jsd, size_stats
from .partition.model import Partition
from .partition.recipe import PartitionRecipe, build_partition
from .results import per_client_metrics, remove_stale_temp_files, write_result
from .tasks import Task, adapter_class, get_spec, load_task_data
from .tasks.registry import subsample
from .tracking import open_log
from .tuning import tuning_from


def default_cache_dir() -> Path:
    return Path(os.environ.get("FEDNLP_CACHE", Path.home() / ".cache" / "fednlp_bench"))


def load_data(cfg: RunConfig):
    """The run's dataset (any family), subsampled by --max-train / --max-test; classification data is checked for
    empty texts and a single label (check_classification_data)."""
    spec = get_spec(cfg.task)
    load_opts = {k: getattr(cfg, k) for k in LOAD_OPTIONS.get(spec.family, ()) if getattr(cfg, k) is not None}
    data = load_task_data(cfg.task, cfg.data_dir, cfg.train_file, cfg.test_file, cfg.text_columns, cfg.label_column,
                          seed=data_seed(cfg), local_train=cfg.local_train, local_test=cfg.local_test, **load_opts)
    data = subsample(data, cfg.max_train, cfg.max_test, data_seed(cfg))
    if spec.family == "text_classification":
        files = [str(f) for f in (cfg.train_file, cfg.test_file) if f]
        cuts = [f"--{flag} {n}" for flag, n in (("max-train", cfg.max_train), ("max-test", cfg.max_test)) if n]
        check_classification_data(data, " + ".join(files), f" (the {' / '.join(cuts)} subset)" if cuts else "")
    return data


def tokenize_task(cfg: RunConfig, data) -> Task:
    """The task adapter of a dataset for the configured model (tokenized once, cached on disk)."""
    cache = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    adapter = adapter_class(get_spec(cfg.task).family)
    options = {k: getattr(cfg, k) for k in getattr(adapter, "OPTIONS", ()) if getattr(cfg, k, None) is not None}
    return adapter(data, model=cfg.model, max_length=cfg.max_length, cache_dir=cache, dropout=cfg.dropout, **options)


def build_task(cfg: RunConfig) -> Task:
    """Load (and subsample) the data, then tokenize it for the configured model."""
    return tokenize_task(cfg, load_data(cfg))


def build_validation_tasks(cfg: RunConfig) -> tuple[Task, Task, str]:
    """(training task, validation task, fingerprint of the whole data) of the converged centralized reference: a
    seeded --validation-fraction of the training split (data seed) is held out; the validation task's test split
    is that held-out part."""
    data = load_data(cfg)
    train, validation = holdout_validation(data, cfg.validation_fraction, data_seed(cfg))
    return tokenize_task(cfg, train), tokenize_task(cfg, validation), data.fingerprint


def client_config(cfg: RunConfig) -> ClientConfig:
    return ClientConfig(optimizer=cfg.client_optimizer, lr=cfg.client_lr, local_epochs=cfg.local_epochs,
                        batch_size=cfg.batch_size, precision=cfg.precision, dp_sgd_clip=cfg.dp_sgd_clip,
                        dp_sgd_noise_multiplier=cfg.dp_sgd_noise_multiplier)


def data_seed(cfg: RunConfig) -> int:
    """The seed of the data side (held-out split, subsets, partition): --data-seed, else --seed."""
    return cfg.seed if cfg.data_seed is None else cfg.data_seed


def partition_recipe(cfg: RunConfig, task_name: str) -> PartitionRecipe:
    """The partition recipe of a run's settings (data subset included): what a canonical recipe must say."""
    return PartitionRecipe(task=task_name, method=cfg.partition, clients=cfg.clients, alpha=cfg.alpha, beta=cfg.beta,
                           seed=data_seed(cfg), max_train=cfg.max_train, max_test=cfg.max_test,
                           local_train=cfg.local_train, local_test=cfg.local_test)


def make_partition_for(cfg: RunConfig, task: Task) -> Partition:
    """The run's partition, built exactly as a partition recipe with the same settings would build it.

    Train and test are partitioned separately with the same method and seed (FedNLP's convention), so a
    run on the settings of a canonical recipe in partition/ has that recipe's digest. `natural` keeps at
    most --clients of the data's own ids (the largest); `cluster` is feature skew (TF-IDF clusters).
    """
    part, _ = build_partition(partition_recipe(cfg, task.name), task.data)
    if cfg.clients_per_round > part.num_clients:
        raise UserError(f"the {cfg.partition} partition has {part.num_clients} clients, fewer than "
                        f"--clients-per-round {cfg.clients_per_round}", f"pass --clients-per-round {part.num_clients} or less")
    return part


def partition_record(cfg: RunConfig, task: Task, part: Partition) -> dict[str, Any]:
    labels = task.skew_labels("train")
    hist = client_label_histograms(part.train, labels, int(labels.max()) + 1)
    return {
        "method": cfg.partition, "name": part.name,
        "clients": part.num_clients, "alpha": cfg.alpha, "beta": cfg.beta, "seed": data_seed(cfg),
        "digest": part.digest, "train_digest": part.train_digest, "test_digest": part.test_digest,
        "train_sizes": size_stats(part.train), "mean_pairwise_jsd": mean_pairwise_jsd(hist),
    }


def task_record(cfg: RunConfig, task: Task) -> dict[str, Any]:
    return {"name": task.name, "family": task.family, "model": task.model_name, "max_length": cfg.max_length,
            "num_train": task.num_examples("train"), "num_test": task.num_examples("test"),
            "num_labels": getattr(task, "num_labels", None), "data_fingerprint": task.data.fingerprint,
            "metric_names": list(task.metric_names), "primary_metric": task.primary_metric}


def output_record(out: RunOutput) -> dict[str, Any]:
    return {"curve": out.curve, "final": out.final, "wall_time_s": out.wall_time_s,
            "num_parameters": out.num_parameters}


def prepare(cfg: RunConfig) -> tuple[RunConfig, Task]:
    """Validate everything that needs no training (the algorithm's own checks included), load the task; nothing is
    written yet."""
    cfg.validate()
    rc = cfg.resolved()
    if rc.algorithm != "centralized":
        make_algorithm(fl_config(rc), rc.clients, torch.device("cpu"))  # refusals before any data is read
    task = build_task(rc)
    return rc, task


def checkpoint_key(rc: RunConfig) -> str:
    """Hash of the settings that decide what a run computes (not where or how it executes); its first 10 digits
    end the run's checkpoint folder and result file names."""
    return settings_key(rc.to_dict())


def checkpoint_folder(rc: RunConfig, task_name: str, key: str) -> Path:
    """--checkpoint-dir, else <output>/checkpoints/<task>-<algorithm>-<partition>-seed<seed>-<key>."""
    if rc.checkpoint_dir:
        return Path(rc.checkpoint_dir)
    algorithm = re.sub(r"[^A-Za-z0-9._-]+", "_", rc.algorithm)  # module:Class specs hold a colon
    name = f"{task_name}-{algorithm}-{rc.partition}-seed{rc.seed}-{key[:10]}"
    return Path(rc.output) / "checkpoints" / name


def check_resume(rc: RunConfig, folder: Path, key: str) -> None:
    """--resume when this run's own checkpoint folder has none, but a folder beside it holds a checkpoint of the same
    task, algorithm, partition and seed with other settings: a UserError naming the settings that differ (without
    it the run would start over from round 1 without a word)."""
    if not rc.resume or rc.checkpoint_dir or (folder / "checkpoint.pt").exists() or not folder.parent.is_dir():
        return
    prefix = folder.name[: -len(key[:10])]
    others = sorted(p for p in folder.parent.iterdir()
                    if re.fullmatch(re.escape(prefix) + "[0-9a-f]{10}", p.name) and (p / "checkpoint.pt").is_file())
    if not others:
        return
    other = max(others, key=lambda p: (p / "checkpoint.pt").stat().st_mtime)  # the latest, when there are several
    differ = settings_difference(other, run_settings(rc.to_dict()))
    raise UserError(f"--resume found no checkpoint of these settings, but {other} holds one of {prefix.rstrip('-')} "
                    f"with other settings{f' ({differ})' if differ else ''}",
                    "resume with the settings it was written with, or leave out --resume to start a new run "
                    "(its result gets a file of its own)")


def algorithm_args(rc: RunConfig) -> dict[str, Any]:
    """The algorithm's arguments of a resolved config (FedProx's mu is the --mu setting)."""
    return {**rc.algorithm_args, **({"mu": rc.mu} if rc.algorithm == "fedprox" else {})}


def fl_config(rc: RunConfig, train_parts: list[np.ndarray] | None = None) -> FLConfig:
    attack = Attack(rc.attack, rc.attack_fraction, rc.attack_scale, rc.seed) if rc.attack else None
    return FLConfig(algorithm=rc.algorithm, algorithm_args=algorithm_args(rc), attack=attack,
                    rounds=rc.rounds, clients_per_round=rc.clients_per_round,
                    client=client_config(rc),
                    server=ServerConfig(optimizer=rc.server_optimizer, lr=rc.server_lr, momentum=rc.server_momentum),
                    weighting=rc.weighting, eval_every=rc.eval_every, seed=rc.seed, progress=rc.progress,
                    compile=rc.compile, selection=rc.selection, selection_candidates=rc.selection_candidates,
                    dp=ClientDP(rc.dp_clip, rc.dp_noise_multiplier, rc.dp_delta) if rc.dp_clip is not None else None,
                    streams=ContinualStreams.build(train_parts, rc.continual_rounds, rc.storage_cap, data_seed(rc))
                    if rc.continual_rounds and train_parts is not None else None)


def privacy_record(rc: RunConfig, client_steps: dict[int, dict[int, int]] | None = None) -> dict[str, Any] | None:
    """(epsilon, delta) by opacus's RDP accountant: client level (DP-FedAvg), or example level (DP-SGD: the worst
    client's epsilon from the local steps each client took, `client_steps`); None without DP."""
    if rc.dp_sgd_clip is not None:
        return example_privacy_record(rc.dp_sgd_clip, rc.dp_sgd_noise_multiplier, rc.dp_delta, rc.batch_size,
                                      client_steps or {})
    if rc.dp_clip is None:
        return None
    q = rc.clients_per_round / rc.clients
    eps = client_level_epsilon(rc.dp_noise_multiplier, q, rc.rounds, rc.dp_delta)
    return {"level": "client", "mechanism": "DP-FedAvg (clip, Gaussian noise on the sum, fixed denominator)",
            "clip": rc.dp_clip, "noise_multiplier": rc.dp_noise_multiplier, "sample_rate": q, "rounds": rc.rounds,
            "delta": rc.dp_delta, "epsilon": eps, "accountant": "opacus.accountants.RDPAccountant"}


def algorithm_record(rc: RunConfig) -> dict[str, Any]:
    """The algorithm block of a result: spec, class, where it came from (version or source hash), every argument."""
    from .algorithms.registry import load_algorithm, parse_args

    loaded = load_algorithm(rc.algorithm)
    return loaded.record(parse_args(loaded, algorithm_args(rc)))


def ranks_for(rc: RunConfig) -> RankInfo:
    """This process's rank: joins torchrun's process group for --backend distributed, else rank 0 of 1."""
    if rc.backend == "distributed":
        return init_distributed(rc.device)
    return RankInfo(device=pick_device(rc.device))


def membership_record(rc: RunConfig, task: Task, weights, member_ids: np.ndarray, device) -> dict[str, Any] | None:
    """The membership-inference audit of the final model when --mia is set."""
    if not rc.mia:
        return None
    from .fl.params import FlatParams
    from .membership import membership_audit

    model = task.new_model(rc.seed)
    if rc.algorithm != "centralized":  # the model the algorithm trained (its wrap_model)
        model = make_algorithm(fl_config(rc), rc.clients, device)[1].wrap_model(model)
    model = model.to(device)
    FlatParams(model).set_(weights.to(device))
    return membership_audit(task, model, member_ids, device, seed=rc.seed)


def trained_ids(part: Partition, curve: list[dict], eval_every: int) -> np.ndarray:
    """Training ids of the clients that trained (from the curve; every client when not every round was logged)."""
    if eval_every == 1 and curve and all("clients" in c for c in curve):
        clients = sorted({c for point in curve for c in point["clients"]})
    else:
        clients = range(part.num_clients)
    return np.concatenate([part.train[c] for c in clients]) if clients else np.array([], dtype=np.int64)


def run_fl(cfg: RunConfig, task: Task | None = None) -> dict[str, Any] | None:
    """One federated run; returns the record (also written under cfg.output). Ranks other than 0 return None.

    Stopped by SIGTERM, the run checkpoints after the current round and raises fl.checkpoint.Interrupted;
    with `resume` it continues from the latest checkpoint of the same settings.
    """
    rc, task = (cfg.resolved(), task) if task is not None else prepare(cfg)
    task.tuning = tuning_from(rc.to_dict())
    part = make_partition_for(rc, task)
    rc.clients = part.num_clients  # natural: the number of ids kept
    parts = {"train": part.train, "test": part.test}
    key = checkpoint_key(rc)
    folder = checkpoint_folder(rc, task.name, key)
    check_resume(rc, folder, key)
    ranks = ranks_for(rc)
    if ranks.is_main:  # temp files of a write killed in an earlier run
        for place in (folder, Path(rc.output)):
            remove_stale_temp_files(place)
    checkpointing = Checkpointing(folder=folder, key=key, every=rc.checkpoint_every, resume=rc.resume,
                                  settings=run_settings(rc.to_dict()))
    log = open_log(rc.log_dir, rc.resume) if ranks.is_main else None  # rank 0 evaluates, so it logs
    try:
        with stop_on_sigterm() as stop:
            out = run_federated(task, parts["train"], fl_config(rc, parts["train"]), ranks.device, ranks,
                                checkpointing, stop, on_eval=log.point if log else None)
    finally:
        if log:
            log.close()
        shutdown(ranks)
    if not ranks.is_main:
        return None
    record = {"kind": "federated", "config": rc.to_dict(), "seed": rc.seed, "task": task_record(rc, task),
              "algorithm": algorithm_record(rc),
              **({"attack": out.attack} if out.attack is not None else {}),
              "partition": partition_record(rc, task, part), **output_record(out), **tuning_fields(task, out),
              "clients": per_client_metrics(task, out.predictions, parts["test"]),
              "upload_bytes_per_client_per_round": out.upload_bytes,
              "privacy": privacy_record(rc, out.client_steps),
              "membership_inference": membership_record(rc, task, out.weights, trained_ids(part, out.curve,
                                                                                          rc.eval_every), ranks.device),
              "execution": {"backend": rc.backend, "world_size": ranks.world, "device": str(ranks.device),
                            "torch_threads": torch.get_num_threads(),
                            "precision": rc.precision, "compile": rc.compile, "resumed_from_round": out.resumed_from,
                            "checkpoint": str(folder / "checkpoint.pt") if rc.checkpoint_every else None}}
    record["path"] = str(write_result(record, rc.output))
    save_if_asked(rc, task, out, record)
    return record


def tuning_fields(task: Task, out: RunOutput) -> dict[str, Any]:
    """The result's `tuning` entry (method, its settings, trainable / total parameters, frozen digest), when the
    run trains part of the model; full fine-tuning adds nothing (earlier results stay as they were)."""
    return {"tuning": {**task.tuning.record(), **out.tuning}} if out.tuning is not None else {}


def save_if_asked(rc: RunConfig, task: Task, out: RunOutput, record: dict[str, Any]) -> None:
    """--save-model DIR: the final model in Hugging Face format (saved_model.py), after the result is written."""
    if rc.save_model:
        from .saved_model import save_model

        save_model(task, out.weights, rc.seed, Path(rc.save_model), record)


def centralized_passes(cfg: RunConfig) -> float:
    return cfg.epochs or fl_equivalent_passes(cfg.rounds, cfg.local_epochs, cfg.clients_per_round, cfg.clients)


def run_central(cfg: RunConfig, task: Task | None = None) -> dict[str, Any]:
    """The centralized baseline: with --max-epochs the converged reference (early stopping on a held-out validation
    split, the best epoch's test metrics), else a fixed budget, by default as many passes over the data as the
    matching FL run. `task` (the whole training split) is used by the fixed budget only."""
    cfg.algorithm = "centralized"
    if cfg.max_epochs is not None:
        return run_central_converged(cfg)
    rc, task = (cfg.resolved(), task) if task is not None else prepare(cfg)
    task.tuning = tuning_from(rc.to_dict())
    remove_stale_temp_files(Path(rc.output))
    passes = centralized_passes(rc)
    log = open_log(rc.log_dir)
    try:
        out = run_centralized(task, passes, client_config(rc), pick_device(rc.device), rc.seed, rc.progress,
                              compile=rc.compile, on_eval=log.point if log else None)
    finally:
        if log:
            log.close()
    return central_record(rc, task, out, {"epochs": passes}, task.num_examples("train"))


def run_central_converged(cfg: RunConfig) -> dict[str, Any]:
    """The converged centralized reference (see run_central)."""
    cfg.validate()
    rc = cfg.resolved()
    from .tasks.spec import higher_is_better

    task, validation, fingerprint = build_validation_tasks(rc)
    task.tuning = validation.tuning = tuning_from(rc.to_dict())
    remove_stale_temp_files(Path(rc.output))
    stopping = EarlyStopping(rc.max_epochs, rc.patience, higher_is_better(task.primary_metric))
    log = open_log(rc.log_dir)
    try:
        out = run_centralized_converged(task, validation, stopping, client_config(rc), pick_device(rc.device),
                                        rc.seed, rc.progress, compile=rc.compile, on_eval=log.point if log else None)
        if log:  # the best epoch's test metrics, the run's final result
            log.scalars(out.early_stopping["best_epoch"], {f"eval/{k}": v for k, v in out.final.items()})
    finally:
        if log:
            log.close()
    # the fingerprint of the whole data (as the FL runs record it), so the board pairs the reference with them
    return central_record(rc, task, out, {}, task.num_examples("train"),
                          {"data_fingerprint": fingerprint, "num_validation": validation.num_examples("test")})


def central_record(rc: RunConfig, task: Task, out: RunOutput, config_extra: dict[str, Any], member_count: int,
                   task_extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the result record of a centralized run (either kind)."""
    record = {"kind": "centralized", "config": {**rc.to_dict(), **config_extra}, "seed": rc.seed,
              "task": {**task_record(rc, task), **(task_extra or {})}, **output_record(out), **tuning_fields(task, out),
              "upload_bytes_per_client_per_round": 0,
              **({"privacy": privacy_record(rc, out.client_steps)} if rc.dp_sgd_clip is not None else {}),
              "membership_inference": membership_record(rc, task, out.weights, np.arange(member_count),
                                                        pick_device(rc.device))}
    if out.early_stopping is not None:
        record["early_stopping"] = out.early_stopping
    record["execution"] = {"device": str(pick_device(rc.device)), "torch_threads": torch.get_num_threads(),
                           "precision": rc.precision, "compile": rc.compile}
    record["path"] = str(write_result(record, rc.output))
    save_if_asked(rc, task, out, record)
    return record
