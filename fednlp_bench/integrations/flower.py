"""fednlp-bench tasks as a Flower app: a ServerApp and a ClientApp (Flower's Message API, flwr >= 1.21) that run
any task, partition and model of ours under any Flower strategy, with our client update, metrics and result JSON.

Needs the `flower` extra (`pip install 'fednlp-bench[flower]'`); the core never imports flwr. The app's settings
are its run config (`[tool.flwr.app.config]` of the app's pyproject.toml, or `flwr run --run-config`): every
`fednlp-bench run` flag by its name (`task`, `partition`, `alpha`, `clients`, `rounds`, `client-lr`, `profile`,
...), plus `strategy` (a Flower strategy of flwr.serverapp.strategy by name, e.g. FedAvg, FedProx, FedAdam, or a
user's own as `module:Class`) and `strategy-args` (a JSON object of its constructor arguments). SuperNode i
trains client i of the partition (`partition-id` in its node config); the server evaluates the global model with
the task's metrics every `eval-every` rounds and writes one fednlp-bench result JSON, which aggregates and
submits like ours (as a community row: the strategy is recorded as a plug-in). See docs/flower.md.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp import strategy as flwr_strategy

from ..algorithms.base import API_VERSION
from ..config import RunConfig
from ..errors import UserError
from ..fl.client import client_update
from ..fl.params import FlatParams
from ..fl.simulation import client_seed, evaluate, tuning_record
from ..tasks.base import Task

FLOWER_KEYS = ("strategy", "strategy-args", "num-server-rounds")  # run-config keys that are not fednlp-bench flags
BUILTIN_PROXIMAL = "FedProx"


@dataclass
class Job:
    """What every app process loads once per run config: the resolved settings, task, partition and a model."""

    rc: RunConfig
    task: Task
    train: list[np.ndarray]
    test: list[np.ndarray]
    partition: dict[str, Any]
    model: torch.nn.Module
    flat: FlatParams
    names: list[str] = field(default_factory=list)


_JOBS: dict[str, Job] = {}


def run_settings(run_config: dict[str, Any]) -> RunConfig:
    """A RunConfig from a Flower run config: its fednlp-bench keys go through `fednlp-bench run`'s own parser (so
    profiles, defaults and every check are the same); one line naming the key on bad input."""
    from ..cli import build_parser, config_from_args

    argv: list[str] = []
    for key, value in sorted(run_config.items()):
        if key in FLOWER_KEYS:
            continue
        flag = "--" + str(key).replace("_", "-")
        if isinstance(value, bool):
            if value:
                argv.append(flag)
        else:
            argv += [flag, str(value)]
    if "num-server-rounds" in run_config and "rounds" not in run_config:
        argv += ["--rounds", str(run_config["num-server-rounds"])]
    argv += ["--no-progress"]
    parser = build_parser()
    try:
        args = parser.parse_args(["run", *argv])
    except SystemExit:
        raise UserError(f"the Flower run config {sorted(k for k in run_config if k not in FLOWER_KEYS)} is not a "
                        "valid set of `fednlp-bench run` settings", "use the flags of `fednlp-bench run --help` "
                        "without their dashes, e.g. task = \"demo\", client-lr = 0.002") from None
    return config_from_args(args)


def load_job(run_config: dict[str, Any]) -> Job:
    """The job of a run config, built on first use in this process (ClientApp and ServerApp processes alike)."""
    from ..runner import make_partition_for, partition_record, prepare
    from ..tuning import tuning_from

    key = json.dumps({k: run_config[k] for k in sorted(run_config)}, sort_keys=True, default=str)
    if key not in _JOBS:
        rc, task = prepare(run_settings(run_config))
        if rc.algorithm != "fedavg":
            raise UserError(f"the Flower app takes its algorithm from the strategy (got algorithm '{rc.algorithm}')",
                            "leave `algorithm` out of the run config and set `strategy`")
        task.tuning = tuning_from(rc.to_dict())
        part = make_partition_for(rc, task)
        rc.clients = part.num_clients
        model = task.new_model(rc.seed)
        flat = FlatParams(model)
        names = [n for n, p in model.named_parameters() if p.requires_grad]
        _JOBS[key] = Job(rc, task, part.train, part.test, partition_record(rc, task, part), model, flat, names)
    return _JOBS[key]


def to_arrays(job: Job, vector: torch.Tensor) -> ArrayRecord:
    """The trainable parameters (what our flat vector holds) as an ArrayRecord of named float32 tensors."""
    return ArrayRecord(torch_state_dict={n: t.detach().cpu().clone() for n, t in zip(job.names, job.flat.split(vector))})


def from_arrays(job: Job, arrays: ArrayRecord) -> torch.Tensor:
    """The flat vector of an ArrayRecord written by to_arrays (or aggregated from such records)."""
    state = arrays.to_torch_state_dict()
    missing = [n for n in job.names if n not in state]
    if missing:
        raise UserError(f"the server's arrays lack parameter '{missing[0]}' of the model",
                        "run the ServerApp and ClientApp with the same run config")
    return torch.cat([state[n].reshape(-1).to(torch.float32) for n in job.names])


# --------------------------------------------------------------------------------------------- the ClientApp
def train_client(msg: Message, context: Context, run_config: dict[str, Any]) -> Message:
    """Train this SuperNode's client of the partition from the round's global model with our client update (our
    batch order, optimizer and seeds: client_seed(seed, round, client)); FedProx's `proximal-mu` turns on our
    proximal step. Replies with the trained arrays and the example count FedAvg weighs by."""
    job = load_job(run_config)
    client, clients = int(context.node_config["partition-id"]), int(context.node_config.get("num-partitions",
                                                                                            job.rc.clients))
    if clients != len(job.train):
        raise UserError(f"the federation has {clients} SuperNodes but the partition {len(job.train)} clients",
                        f"run {len(job.train)} SuperNodes (num-supernodes), or set clients = {clients}")
    config = msg.content["config"]
    server_round = int(config.get("server-round", 1))
    global_w = from_arrays(job, msg.content["arrays"])
    algorithm, ctx = None, None
    mu = float(config.get("proximal-mu", 0.0) or 0.0)
    from ..runner import client_config

    ccfg = client_config(job.rc)
    seed = client_seed(job.rc.seed, server_round, client)
    if mu > 0:  # Flower's FedProx asks for the proximal term: our FedProx's step
        from ..algorithms.base import ClientContext, RunInfo
        from ..algorithms.fedprox import FedProx, FedProxArgs

        info = RunInfo(num_clients=len(job.train), clients_per_round=job.rc.clients_per_round, rounds=job.rc.rounds,
                       seed=job.rc.seed, client=ccfg, server=None, weighting="examples")
        algorithm = FedProx(FedProxArgs(mu=mu), info)
        ctx = ClientContext(client=client, round=server_round, seed=seed, global_weights=global_w, lr=ccfg.lr,
                            num_examples=len(job.train[client]), num_batches=0, state={})
    res = client_update(job.task, job.model, job.flat, global_w, job.train[client], ccfg, torch.device("cpu"), seed,
                        algorithm, ctx)
    local = global_w - res.delta
    metrics = MetricRecord({"num-examples": int(res.num_examples), "train-loss": float(res.train_loss),
                            "client": client})
    return Message(content=RecordDict({"arrays": to_arrays(job, local), "metrics": metrics}), reply_to=msg)


# --------------------------------------------------------------------------------------------- the ServerApp
def strategy_spec(run_config: dict[str, Any]) -> str:
    """The run config's `strategy` as module:Class (a bare name is a class of flwr.serverapp.strategy)."""
    spec = str(run_config.get("strategy", "FedAvg"))
    return spec if ":" in spec else f"flwr.serverapp.strategy:{spec}"


def make_strategy(job: Job, spec: str, extra: dict[str, Any]):
    """The strategy of a module:Class spec (a class of flwr.serverapp.strategy, or a user's Strategy), built with
    `extra` (strategy-args) over: sample clients_per_round of the clients each round (fraction_train), no
    client-side evaluation (the server evaluates), and FedProx's proximal_mu 0.1 unless strategy-args gives it."""
    if not spec.startswith("flwr.serverapp.strategy:"):
        module, _, name = spec.partition(":")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise UserError(f"strategy '{spec}' cannot be loaded ({exc})",
                            "give a class of flwr.serverapp.strategy by name, or module:Class on the PYTHONPATH") \
                from None
    else:
        cls = getattr(flwr_strategy, spec.split(":", 1)[1], None)
        if cls is None:
            raise UserError(f"unknown Flower strategy '{spec.split(':', 1)[1]}'",
                            f"choose one of: {', '.join(n for n in flwr_strategy.__all__ if n[0].isupper())}")
    if not (isinstance(cls, type) and issubclass(cls, flwr_strategy.Strategy)):
        raise UserError(f"strategy '{spec}' is not a Flower Strategy class", "subclass flwr.serverapp.strategy.Strategy")
    rc = job.rc
    n, k = len(job.train), rc.clients_per_round
    common = {"fraction_train": k / n, "fraction_evaluate": 0.0, "min_train_nodes": k, "min_evaluate_nodes": 0,
              "min_available_nodes": n}
    if cls.__name__ == BUILTIN_PROXIMAL:
        common["proximal_mu"] = 0.1  # our --mu default
    params = inspect.signature(cls.__init__).parameters
    kwargs = {k_: v for k_, v in common.items() if k_ in params} | dict(extra)
    try:
        return cls(**kwargs), kwargs
    except TypeError as exc:
        raise UserError(f"strategy '{spec}' does not take these arguments ({exc})",
                        "fix strategy-args (a JSON object of the strategy's constructor arguments)") from None


def algorithm_block(spec: str, strategy, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The result's `algorithm` entry: a Flower strategy is recorded like a plug-in (its class, flwr's version, the
    source hash of its file), so the board keeps its rows apart from the built-ins."""
    import flwr

    cls = type(strategy)
    try:
        source = hashlib.sha256(Path(inspect.getfile(cls)).read_bytes()).hexdigest()
    except (OSError, TypeError):
        source = None
    return {"spec": spec, "name": cls.__name__, "class": f"{cls.__module__}.{cls.__qualname__}", "kind": "flower",
            "builtin": False, "api_version": API_VERSION, "args": {k: v for k, v in kwargs.items()
                                                                    if isinstance(v, (int, float, str, bool))},
            "distribution": "flwr", "version": flwr.__version__, "source_sha256": source, "upload_vectors": 1}


class CheckedGrid:
    """The strategy's grid with every reply checked: a ClientApp that fails stops the run with its error (Flower's
    strategies would aggregate the others, or none, and go on), and the clients that trained are recorded."""

    def __init__(self, grid: Grid) -> None:
        self._grid = grid
        self.trained: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)

    def send_and_receive(self, messages, *args, **kwargs):
        replies = list(self._grid.send_and_receive(messages, *args, **kwargs))
        failed = [r for r in replies if r.has_error()]
        if failed:
            raise UserError(f"a ClientApp failed: {failed[0].error.reason}",
                            "see the SuperNode's log; every SuperNode needs fednlp-bench and the task's data")
        clients = [int(r.content["metrics"]["client"]) for r in replies
                   if "metrics" in r.content and "client" in r.content["metrics"]]
        if clients:
            self.trained = sorted(clients)
        return replies


def runtime_of(grid: Grid) -> str:
    """flower-simulation (the simulation engine's in-memory grid) or flower-deployment (a SuperLink's grid)."""
    return "flower-simulation" if "InMemory" in type(grid).__name__ else "flower-deployment"


def run_federated_on_flower(grid: Grid, run_config: dict[str, Any], runtime: str = "flower") -> dict[str, Any]:
    """Run the strategy from our initial model (the run's seed) for `rounds` rounds; evaluate the global model on the
    task's test split every eval-every rounds (and the last); write the result JSON to `output` and return it."""
    from ..results import per_client_metrics, write_result
    from ..runner import task_record

    start = time.perf_counter()
    job = load_job(run_config)
    rc, task = job.rc, job.task
    spec = strategy_spec(run_config)
    try:
        extra = json.loads(str(run_config.get("strategy-args", "{}")))
    except json.JSONDecodeError as exc:
        raise UserError(f"strategy-args is not a JSON object ({exc})", 'write strategy-args = "{\\"eta\\": 0.01}"') \
            from None
    if not isinstance(extra, dict):
        raise UserError(f"strategy-args must be a JSON object (got {type(extra).__name__})",
                        'write strategy-args = "{\\"eta\\": 0.01}"')
    strategy, kwargs = make_strategy(job, spec, extra)
    initial = job.flat.get().clone()
    tuning = tuning_record(task, job.model)
    curve: list[dict[str, Any]] = []
    last: dict[str, Any] = {}

    def evaluate_fn(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        if server_round == 0 or not (server_round % rc.eval_every == 0 or server_round == rc.rounds):
            return None
        job.flat.set_(from_arrays(job, arrays))
        preds, metrics = evaluate(task, job.model, torch.device("cpu"))
        curve.append({"round": server_round, "metrics": metrics, "clients": list(checked.trained),
                      "wall_time_s": time.perf_counter() - start})
        last.update(preds=preds, metrics=metrics)
        return MetricRecord({k: float(v) for k, v in metrics.items()})

    checked = CheckedGrid(grid)
    strategy.start(grid=checked, initial_arrays=to_arrays(job, initial), num_rounds=rc.rounds,
                   train_config=ConfigRecord({}), evaluate_fn=evaluate_fn)
    record = {"kind": "federated", "config": {**rc.to_dict(), "algorithm": spec, "extra": {**rc.extra, "runtime":
                                                                                            runtime}},
              "seed": rc.seed, "task": task_record(rc, task), "algorithm": algorithm_block(spec, strategy, kwargs),
              "partition": job.partition, "curve": curve, "final": last["metrics"],
              "wall_time_s": time.perf_counter() - start, "num_parameters": job.flat.numel,
              "clients": per_client_metrics(task, last["preds"], job.test),
              "upload_bytes_per_client_per_round": job.flat.nbytes,
              **({"tuning": {**task.tuning.record(), **tuning}} if tuning is not None else {}),
              "execution": {"backend": runtime, "world_size": len(job.train), "device": "cpu",
                            "torch_threads": torch.get_num_threads(), "flwr_strategy": type(strategy).__name__}}
    record["path"] = str(write_result(record, rc.output))
    return record


# ----------------------------------------------------------------------------------------------------- the apps
def make_apps(settings: dict[str, Any] | None = None) -> tuple[ServerApp, ClientApp]:
    """A ServerApp and a ClientApp whose run config is `settings` updated by the run's own (pyproject.toml,
    `flwr run --run-config`). `flwr.simulation.run_simulation` takes no run config: pass the settings here."""
    fixed = dict(settings or {})
    server, client = ServerApp(), ClientApp()

    @client.train()
    def _train(msg: Message, context: Context) -> Message:
        return train_client(msg, context, {**fixed, **dict(context.run_config)})

    @server.main()
    def _main(grid: Grid, context: Context) -> None:
        run_federated_on_flower(grid, {**fixed, **dict(context.run_config)}, runtime_of(grid))

    return server, client


# the components `flwr run` loads (examples/flower_app/pyproject.toml); plain assignments, which flwr's static check reads
_APPS = make_apps()
server_app = _APPS[0]
client_app = _APPS[1]
