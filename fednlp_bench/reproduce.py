"""Reproduce one table of the leaderboard: every task of a family (or the trustworthy-FL or robustness table), its
algorithms, canonical partitions and seeds.

`fednlp-bench reproduce TABLE --profile smoke|standard|full` (what scripts/reproduce_<table>.sh runs):
for each task of the table whose card has the profile, the untrained model's metric (the starting point), the
centralized baseline and FedAvg, FedProx, FedOpt and any other built-in with a block in the profile (or
--algorithms; the trustworthy-FL and robustness tables run their own algorithms and variants on one partition) on
the profile's partitions, over its seeds; then every result is submitted to the leaderboard and the board is
rebuilt. Resumable: each run's settings hash is stored in its result (config.extra.reproduce.key), and a run whose
result is already in the runs folder is skipped. `write_recipes` writes the canonical partition recipes of a plan.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .config import ALGORITHMS, RunConfig
from .errors import UserError
from .leaderboard.aggregate import LAST_FRACTION
from .tasks.profiles import (PROFILE_NAMES, has_profile, more_seeds, parse_partition, profile_plan, profile_settings,
                             tuning_block, tuning_settings)
from .tasks.spec import FAMILIES, TaskSpec, higher_is_better

TABLE_ALIASES = {"classification": "text_classification", "tagging": "sequence_tagging", "qa": "extractive_qa"}
FL_ALGORITHMS = ("fedavg", "fedprox", "fedopt")  # what a table reproduces by default (--algorithms: any built-in)
# "learned": the seed-mean final metric gains at least LEARNED_MARGIN over the untrained model and at least
# LEARNED_SHARE of the centralized baseline's gain (so a model stuck near chance does not pass on noise).
LEARNED_MARGIN = 0.02
LEARNED_SHARE = 0.2
# Settings that change the data or the tokenized task (runs sharing them reuse one loaded task).
TASK_KEYS = ("task", "model", "max_length", "max_train", "max_test", "data_seed", "data_dir", "dropout", "tag_scheme",
             "doc_stride", "max_answer_length", "n_best", "num_beams", "max_new_tokens", "max_target_length",
             "source_prefix", "no_repeat_ngram_size", "decoder_layers", "cache_dir")


# The trustworthy-FL table: FedAvg on a quantity-skewed partition (clients differ in activity) under each client
# selection strategy, static vs continual data, and without / with client-level and example-level DP; every run
# also audits membership inference. Variants are RunConfig settings; `continual` and its cap scale with the
# profile (data arrive over the first half of the rounds, a client keeps two thirds of an average client's data).
TRUST_TABLE = "trustworthy"
TRUST_TASKS = ("sst2", "agnews_lm")
TRUST_PARTITION = "quantity beta=5"
TRUST_VARIANTS: dict[str, dict[str, Any]] = {
    "uniform": {},
    "activity": {"selection": "activity"},
    "power_of_choice": {"selection": "power_of_choice"},
    "continual": {"continual": True},
    "continual+activity": {"continual": True, "selection": "activity"},
    "dp-client": {"dp_clip": 0.5, "dp_noise_multiplier": 0.3},
    "dp-example": {"dp_sgd_clip": 1.0, "dp_sgd_noise_multiplier": 0.5},
}


# The robustness table (Byzantine clients): FedAvg and the robust aggregators on the IID partition of agnews,
# without attackers and with 10% and 30% of the clients sending a boosted sign-flipped update (-4 x their delta:
# at 30% the plain mean points the wrong way). Every aggregator trains with FedAvg's settings of the profile; the
# trimmed mean trims 30% at each end and Krum tolerates 3 attackers of the 10 clients of a round.
ROBUST_TABLE = "robustness"
ROBUST_TASKS = ("agnews",)
ROBUST_PARTITION = "uniform"
ROBUST_ALGORITHMS: dict[str, dict[str, Any]] = {"fedavg": {}, "median": {}, "trimmed_mean": {"beta": 0.3},
                                                "krum": {"byzantine": 3}}
ROBUST_VARIANTS: dict[str, dict[str, Any]] = {
    "": {},
    "sign_flip-10": {"attack": "sign_flip", "attack_fraction": 0.1, "attack_scale": 4.0},
    "sign_flip-30": {"attack": "sign_flip", "attack_fraction": 0.3, "attack_scale": 4.0},
}


# The tuning table (parameter-efficient FL): FedAvg with full fine-tuning beside LoRA, BitFit, prompt tuning,
# freezing, ... on the tasks whose profile has a `tuning:` block (its model, partitions, reference and methods:
# tasks/profiles.py). A method with the profile's own FedAvg settings is the family table's run (same key).
TUNING_TABLE = "tuning"
TUNING_TASKS = ("agnews", "wnut17")


@dataclass(frozen=True)
class SpecialTable:
    """A table that is not a task family: its tasks, algorithms, one partition and the variants each runs in."""

    tasks: tuple[str, ...]
    algorithms: tuple[str, ...]
    partition: str
    variants: tuple[str, ...]


SPECIAL_TABLES = {  # tables that are not a task family
    TRUST_TABLE: SpecialTable(TRUST_TASKS, ("fedavg",), TRUST_PARTITION, tuple(TRUST_VARIANTS)),
    ROBUST_TABLE: SpecialTable(ROBUST_TASKS, tuple(ROBUST_ALGORITHMS), ROBUST_PARTITION, tuple(ROBUST_VARIANTS)),
    TUNING_TABLE: SpecialTable(TUNING_TASKS, ("fedavg",), "", ()),  # partitions and methods: each card's block
}


def table_family(table: str) -> str:
    family = TABLE_ALIASES.get(table, table)
    if family not in FAMILIES and family not in SPECIAL_TABLES:
        raise UserError(f"unknown table '{table}'", f"choose one of: {', '.join(FAMILIES)}, {', '.join(SPECIAL_TABLES)} "
                        f"(or {', '.join(TABLE_ALIASES)})")
    return family


def variant_settings(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The RunConfig settings of a trustworthy-table variant on top of a profile's settings."""
    out = {k: v for k, v in TRUST_VARIANTS[name].items() if k != "continual"}
    if TRUST_VARIANTS[name].get("continual"):
        rounds, clients = settings.get("rounds", 10), settings.get("clients", 10)
        out["continual_rounds"] = max(2, rounds // 2)
        if settings.get("max_train"):
            out["storage_cap"] = max(8, (2 * settings["max_train"]) // (3 * clients))
    return {**out, "mia": True}


def robust_settings(spec: TaskSpec, profile: str, algorithm: str) -> dict[str, Any]:
    """A robustness-table run's settings: FedAvg's settings of the profile (the aggregators differ only on the
    server), with the aggregator's ROBUST_ALGORITHMS arguments."""
    if algorithm == "centralized":
        return profile_settings(spec, profile, algorithm)
    settings = profile_settings(spec, profile, "fedavg")
    args = ROBUST_ALGORITHMS.get(algorithm) or {}
    return {**settings, "algorithm_args": dict(args)} if args else settings


def table_tasks(family: str, profile: str, only: Iterable[str] | None = None) -> list[TaskSpec]:
    """The tasks of a table under a profile: the family's cards that define it (smoke: an explicit block)."""
    from .tasks.registry import TASKS, get_spec

    if family in SPECIAL_TABLES:
        specs = [get_spec(name) for name in (only or SPECIAL_TABLES[family].tasks)]
        missing = [s.name for s in specs if not has_profile(s, profile)]
        if missing:
            raise UserError(f"task '{missing[0]}' has no {profile} profile", f"add profiles.{profile} to its card")
        if family == TUNING_TABLE:
            specs = [s for s in specs if tuning_block(s, profile) is not None or only]
            if not specs:
                raise UserError(f"no task of the tuning table has a tuning block in its {profile} profile",
                                f"add profiles.{profile}.tuning to a card in tasks/")
        return specs
    if only:
        specs = [get_spec(name) for name in only]
        for s in specs:
            if s.family != family:
                raise UserError(f"task '{s.name}' is {s.family}, not in the {family} table",
                                f"run it with `fednlp-bench reproduce {s.family}`")
            if not has_profile(s, profile):
                raise UserError(f"task '{s.name}' has no {profile} profile", f"add profiles.{profile} to its card")
        return specs
    specs = [s for s in TASKS.values() if s.family == family and
             (profile in s.profiles if profile != "full" else has_profile(s, profile))]
    if not specs:
        raise UserError(f"no task of the {family} table has a {profile} profile",
                        f"add profiles.{profile} to a {family} card in tasks/")
    return specs


@dataclass
class PlannedRun:
    """One run of a reproduction; `settings` are RunConfig fields (profile, partition and seed applied)."""

    task: str  # a built-in task name, or the path of a card file
    algorithm: str  # centralized or a built-in algorithm
    seed: int
    partition: dict[str, Any]
    settings: dict[str, Any]
    board_profile: str
    variant: str = ""  # a special table's variant (TRUST_VARIANTS, ROBUST_VARIANTS); "" in the family tables
    table: str = ""  # a special table's name for its runs (its centralized runs sit beside the family table's)
    key: str = field(init=False)

    def __post_init__(self) -> None:
        blob = json.dumps({"task": self.task, "algorithm": self.algorithm, "seed": self.seed,
                           "partition": self.partition, "settings": self.settings}, sort_keys=True)
        self.key = hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        """The algorithm, with the variant when there is one (fedavg+activity)."""
        return f"{self.algorithm}+{self.variant}" if self.variant else self.algorithm

    @property
    def untrained_key(self) -> str:
        """The untrained model's score depends on the task, the model and the seed (its initial weights) only."""
        return f"{self.task}|{self.settings.get('model')}|seed{self.seed}"

    @property
    def partition_label(self) -> str:
        p = self.partition
        if not p:
            return "-"
        return p["partition"] + "".join(f" {k}={p[k]:g}" for k in ("alpha", "beta") if k in p)

    def config(self, output: Path, progress: bool) -> RunConfig:
        extra = {"reproduce": {"key": self.key, "board_profile": self.board_profile}}
        if self.table:
            extra["reproduce"]["table"] = self.table
        return RunConfig(**{**self.settings, **self.partition, "task": self.task, "algorithm": self.algorithm,
                            "seed": self.seed, "output": str(output), "progress": progress, "extra": extra})


def board_profile(spec: TaskSpec, profile: str, settings: dict[str, Any] | None = None) -> str:
    """The leaderboard's profile label of a task's reproduction (centralized and FL rows share it), from its FedAvg
    settings (the profile's, or the tuning table's `settings`)."""
    s = profile_settings(spec, profile, "fedavg") if settings is None else settings
    model = s.get("model", spec.default_model)
    data = f", {s['max_train']} train" if s.get("max_train") else ""
    return (f"{profile}: {model}, {s.get('clients', 10)} clients, {s.get('clients_per_round', 5)}/round, "
            f"{s.get('rounds', 10)} rounds{data}")


def card_algorithms(spec: TaskSpec, profile: str) -> list[str]:
    """The built-in algorithms beyond FL_ALGORITHMS that a task's profile plans: those with a block of their own
    (e.g. `scaffold: {client_optimizer: sgd, client_lr: 0.1, partitions: [label alpha=0.1]}`)."""
    block = spec.profiles.get(profile, {})
    return [a for a in ALGORITHMS if a not in FL_ALGORITHMS and isinstance(block.get(a), dict)]


def plan_runs(family: str, profile: str, tasks: Iterable[str] | None = None, seeds: Iterable[int] | None = None,
              algorithms: Iterable[str] | None = None, partitions: Iterable[str] | None = None) -> list[PlannedRun]:
    """Every run of the table, in order: per task, per seed, the centralized run, then each algorithm x partition.
    The algorithms are FedAvg, FedProx and FedOpt and any other built-in with a block in the task's profile
    (card_algorithms), unless `algorithms` names them; an algorithm block's `more_seeds` add seeds to some of its
    partitions."""
    if profile not in PROFILE_NAMES:
        raise UserError(f"unknown profile '{profile}'", f"choose one of: {', '.join(PROFILE_NAMES)}")
    if family == TUNING_TABLE:
        return plan_tuning_runs(profile, tasks, seeds, algorithms, partitions)
    special = SPECIAL_TABLES.get(family)
    algos = list(algorithms) if algorithms else ["centralized", *(special.algorithms if special else FL_ALGORITHMS)]
    for a in algos:
        if a not in ("centralized", *ALGORITHMS):  # built-ins only: a reproduction never imports a plug-in
            raise UserError(f"unknown algorithm '{a}'", f"choose from: centralized, {', '.join(ALGORITHMS)}")
    try:
        chosen_parts = [parse_partition(p) for p in partitions] if partitions else None
    except ValueError as exc:
        raise UserError(f"unknown partition '{exc}'", "write uniform, natural, 'label alpha=A', 'cluster alpha=A' "
                        "or 'quantity beta=B'") from None
    # a special table: its algorithms on its one partition in each of its variants; the family tables: no variant
    variants, table = (list(special.variants), family) if special else ([""], "")
    runs = []
    chosen = list(tasks) if tasks else None
    for i, spec in enumerate(table_tasks(family, profile, chosen)):
        ref = chosen[i] if chosen else spec.name  # a card file given by path stays a path (its name is not built in)
        card_seeds, _ = profile_plan(spec, profile)
        label = board_profile(spec, profile)
        task_algos = algos if algorithms or special else algos + card_algorithms(spec, profile)
        parts_of = {a: [parse_partition(special.partition)] if special else profile_plan(spec, profile, a)[1]
                    for a in task_algos if a != "centralized"}
        # an algorithm block's `more_seeds`: further seeds on some of its partitions (e.g. a sweep that needs them)
        more = {(a, json.dumps(p, sort_keys=True)): more_seeds(spec, profile, a, p) for a in parts_of
                for p in parts_of[a]} if not special else {}
        extra = sorted({s for v in more.values() for s in v} - set(card_seeds))
        planned = set(card_seeds) | set(extra)
        for seed in (list(seeds) if seeds else card_seeds + extra):
            everything = seed in card_seeds or seed not in planned  # a seed outside the plan runs the whole table
            for algo in task_algos:
                settings = (robust_settings(spec, profile, algo) if family == ROBUST_TABLE
                            else profile_settings(spec, profile, algo))
                if algo == "centralized":
                    if everything:
                        runs.append(PlannedRun(ref, algo, seed, {}, settings, label, table=table))
                    continue
                for part in chosen_parts or parts_of[algo]:
                    if not everything and seed not in more.get((algo, json.dumps(part, sort_keys=True)), []):
                        continue
                    for name in variants:
                        run_settings = settings if not name else {**settings, **(
                            variant_settings(name, settings) if family == TRUST_TABLE else ROBUST_VARIANTS[name])}
                        runs.append(PlannedRun(ref, algo, seed, part, run_settings, label, variant=name, table=table))
    return runs


def plan_tuning_runs(profile: str, tasks: Iterable[str] | None = None, seeds: Iterable[int] | None = None,
                     algorithms: Iterable[str] | None = None, partitions: Iterable[str] | None = None
                     ) -> list[PlannedRun]:
    """The tuning table: per task and seed, the full fine-tuning reference (centralized, to convergence), then each
    method of the card's tuning block on each of its partitions (FedAvg). `algorithms` may narrow it to
    centralized and/or fedavg; `partitions` replaces the block's."""
    algos = list(algorithms) if algorithms else ["centralized", "fedavg"]
    if set(algos) - {"centralized", "fedavg"}:
        raise UserError(f"the tuning table runs centralized and fedavg, not {sorted(set(algos) - {'centralized', 'fedavg'})[0]}",
                        "leave out --algorithms, or give centralized and/or fedavg")
    try:
        chosen_parts = [parse_partition(p) for p in partitions] if partitions else None
    except ValueError as exc:
        raise UserError(f"unknown partition '{exc}'", "write uniform, natural, 'label alpha=A', 'cluster alpha=A' "
                        "or 'quantity beta=B'") from None
    runs = []
    chosen = list(tasks) if tasks else None
    for i, spec in enumerate(table_tasks(TUNING_TABLE, profile, chosen)):
        ref = chosen[i] if chosen else spec.name
        block = tuning_block(spec, profile)
        if block is None:
            raise UserError(f"task '{spec.name}' has no tuning block in its {profile} profile",
                            f"add profiles.{profile}.tuning to its card")
        card_seeds, profile_parts = profile_plan(spec, profile)
        parts = chosen_parts or ([parse_partition(p) for p in block["partitions"]] if "partitions" in block
                                 else profile_parts)
        methods = {m: tuning_settings(spec, profile, m) for m in block["methods"]}
        label = board_profile(spec, profile, next(iter(methods.values())))
        for seed in (list(seeds) if seeds else card_seeds):
            if "centralized" in algos:
                runs.append(PlannedRun(ref, "centralized", seed, {}, tuning_settings(spec, profile, None), label,
                                       table=TUNING_TABLE))
            if "fedavg" in algos:
                for part in parts:
                    for name, settings in methods.items():
                        runs.append(PlannedRun(ref, "fedavg", seed, part, settings, label, variant=name,
                                               table=TUNING_TABLE))
    return runs


def finished_runs(folder: Path) -> dict[str, Path]:
    """Reproduction key -> result JSON, for every finished run in the folder."""
    done = {}
    for path in sorted(folder.glob("*.json")):
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
            key = rec["config"]["extra"]["reproduce"]["key"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a reproduction result (or unreadable): never counted as finished
        done[key] = path
    return done


def board_runs(board: Path | None) -> dict[str, Path]:
    """Reproduction key -> submission file, for every reproduction run already on the board (committed results:
    a fresh clone does not run them again)."""
    done: dict[str, Path] = {}
    folder = Path(board) / "submissions" if board is not None else None
    if folder is None or not folder.is_dir():
        return done
    for path in sorted(folder.glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            key = doc["result"]["config"]["extra"]["reproduce"]["key"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(key, str):
            done[key] = path
    return done


def stored_untrained(path: Path) -> float | None:
    """The untrained model's metric a reproduction stored in a result (config.extra.reproduce.untrained), if any."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        result = doc.get("result", doc) if isinstance(doc, dict) else {}
        value = result["config"]["extra"]["reproduce"]["untrained"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _task_key(cfg: RunConfig) -> tuple:
    return tuple(str(getattr(cfg, k)) for k in TASK_KEYS)


# Settings of a federated run only, reset when its task is loaded as for a centralized run (they do not change the
# data, and a centralized config refuses them: the robustness table's first unfinished run may be an attacked one).
FEDERATED_ONLY = {"algorithm_args": {}, "attack": None, "attack_fraction": None, "attack_scale": None}


def load_task(cfg: RunConfig):
    """The tokenized task of a run's settings (validated; the algorithm does not matter for loading)."""
    from .runner import prepare

    return prepare(RunConfig(**{**vars(cfg), "algorithm": "centralized", **FEDERATED_ONLY}))[1]


def untrained_metric(cfg: RunConfig, task) -> float:
    """The primary metric of the freshly initialised model (the seed's starting point of every run)."""
    from .fl.simulation import evaluate, pick_device

    device = pick_device(cfg.device)
    _, metrics = evaluate(task, task.new_model(cfg.seed).to(device), device)
    return float(metrics[task.primary_metric])


@dataclass
class Reproduction:
    family: str
    profile: str
    runs: list[PlannedRun]
    folder: Path
    board: Path | None
    progress: bool = True
    recipes: Path | None = None  # canonical partition recipes (default: partition/ beside the board folder)
    ran: int = 0
    skipped: int = 0
    superseded: int = 0
    results: dict[str, Path] = field(default_factory=dict)
    untrained: dict[str, float] = field(default_factory=dict)

    def untrained_path(self) -> Path:
        return self.folder / "untrained.json"

    def execute(self, submitter: str | None = None) -> None:
        """Run every planned run not already finished (reusing one loaded task per data setting).

        A run is finished when its result is in the runs folder or, with a board, when the board holds a
        reproduction submission of it (its key in config.extra.reproduce): a fresh clone resumes from what is
        committed. With `submitter`, each new result is submitted as soon as it is written, so an interrupted
        reproduction loses at most the run in progress; the board itself is rebuilt by `build_board`.
        """
        from .runner import run_central, run_fl

        self.folder.mkdir(parents=True, exist_ok=True)
        done = finished_runs(self.folder)
        on_board = board_runs(self.board) if self.board is not None else {}
        ut_path = self.untrained_path()
        self.untrained = json.loads(ut_path.read_text()) if ut_path.is_file() else {}
        tasks: dict[tuple, Any] = {}
        bar = tqdm(self.runs, desc=f"reproduce {self.family} ({self.profile})", unit="run", disable=not self.progress)
        for run in bar:
            bar.set_postfix_str(f"{run.task} {run.label} {run.partition_label} seed {run.seed}")
            cfg = run.config(self.folder, progress=False)
            ut_key = run.untrained_key
            finished = done.get(run.key) or on_board.get(run.key)
            if finished is not None and ut_key not in self.untrained:
                recorded = stored_untrained(finished)
                if recorded is not None:
                    self.untrained[ut_key] = recorded
            if finished is not None and ut_key in self.untrained:
                self.results[run.key] = finished
                self.skipped += 1
                if submitter and run.key not in on_board:
                    self.submit_run(run, submitter)
                continue
            tk = _task_key(cfg)
            if tk not in tasks:
                tasks.clear()  # one loaded task at a time: memory stays flat across a table
                tasks[tk] = load_task(cfg)
            task = tasks[tk]
            if ut_key not in self.untrained:
                self.untrained[ut_key] = untrained_metric(cfg.resolved(), task)
                ut_path.write_text(json.dumps(self.untrained, indent=1, sort_keys=True) + "\n")
            if finished is not None:
                self.results[run.key] = finished
                self.skipped += 1
                if submitter and run.key not in on_board:
                    self.submit_run(run, submitter)
                continue
            cfg.extra["reproduce"]["untrained"] = self.untrained[ut_key]
            cfg.validate()
            record = run_central(cfg, task) if run.algorithm == "centralized" else run_fl(cfg, task)
            self.results[run.key] = Path(record["path"])
            self.ran += 1
            if submitter:
                self.submit_run(run, submitter)

    def submit_run(self, run: PlannedRun, submitter: str) -> bool:
        """Submit one run's result unless the board holds it; an earlier submission of the same run made with
        other settings is removed first (see remove_superseded). Returns whether a submission was written."""
        from .leaderboard.submit import SUBMISSIONS, content_hash, read_submission, submit

        if self.board is None:
            return False
        path = self.results[run.key]
        _, result = read_submission(path)
        if (self.board / SUBMISSIONS / f"{content_hash(result)[:16]}.json").exists():
            return False
        self.superseded += self.remove_superseded([run])
        # A partition that matches no recipe in partition/ (e.g. hub data instead of the canonical local
        # copy) is submitted as a non-canonical row, marked on the board.
        from .leaderboard.official import MAINTAINERS

        official = submitter == MAINTAINERS  # another submitter's reproduction is a community row of the profile
        submit(path, self.board, recipes=self.recipes, submitter=submitter,
               profile=run.board_profile if official else self.profile, official=official,
               allow_non_canonical=not official)
        return True

    def submit_and_build(self, submitter: str) -> int:
        """Submit every result of the plan not yet on the board, then rebuild the board; returns how many were new."""
        from .leaderboard.submit import build

        if self.board is None:
            return 0
        new = sum(self.submit_run(run, submitter) for run in self.runs)
        build(self.board)
        return new

    def remove_superseded(self, runs: Iterable[PlannedRun] | None = None) -> int:
        """Delete the board's earlier reproduction submissions of planned runs (all, or `runs`) that are not their
        current result: made with other settings (a card changed since) or an earlier copy of a run done again
        (its result was lost). Same task, algorithm, partition, seed and profile label; submissions not made by a
        reproduction are never touched. Keeps one submission per run and seed."""
        from .leaderboard.schema import default_method
        from .leaderboard.submit import SUBMISSIONS, content_hash, read_submission

        def ident(task: str, algorithm: str, partition: dict, seed: int, label: str, result: dict) -> tuple:
            # the board's method name tells selection / continual / DP variants apart; --mia does not change it; a
            # table's runs never replace another table's (the trustworthy table repeats some standard runs)
            cfg = result["config"]
            return (task, algorithm, partition.get("partition"), partition.get("alpha"), partition.get("beta"), seed,
                    label, default_method(result), bool(cfg.get("mia", False)),
                    ((cfg.get("extra") or {}).get("reproduce") or {}).get("table", ""))

        current = {}
        for r in (self.runs if runs is None else runs):
            result = read_submission(self.results[r.key])[1]
            current[ident(r.task, r.algorithm, r.partition, r.seed, r.board_profile, result)] = content_hash(result)
        removed = 0
        for path in sorted((self.board / SUBMISSIONS).glob("*.json")):
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
                cfg = doc["result"]["config"]
                cfg["extra"]["reproduce"]["key"]  # only reproduction submissions
                part = {} if cfg["algorithm"] == "centralized" else {
                    "partition": cfg["partition"], **{k: cfg[k] for k in ("alpha", "beta") if cfg.get(k) is not None}}
                me = ident(cfg["task"], cfg["algorithm"], part, cfg["seed"], doc["submission"]["profile"], doc["result"])
                stored = content_hash(doc["result"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if me in current and current[me] != stored:
                path.unlink()
                removed += 1
        return removed

    def summary(self) -> pd.DataFrame:
        """Per task, partition and algorithm: seed mean and std of the final primary metric, the untrained one, and
        the seed mean of how much the last 20% of rounds moved it (`late_move`, the plateau check)."""
        rows = []
        for run in self.runs:
            rec = json.loads(self.results[run.key].read_text(encoding="utf-8"))
            rec = rec["result"] if "result" in rec and "submission" in rec else rec  # a board submission
            metric = rec["task"]["primary_metric"]
            privacy, mia = rec.get("privacy") or {}, rec.get("membership_inference") or {}
            rows.append({"task": run.task, "partition": run.partition_label, "algorithm": run.label,
                         "seed": run.seed, "metric": metric, "final": rec["final"][metric],
                         "untrained": self.untrained[run.untrained_key],
                         "client_p10": (rec.get("clients") or {}).get(metric, {}).get("p10", math.nan),
                         "epsilon": math.inf if privacy and privacy.get("epsilon") is None
                         else privacy.get("epsilon", math.nan),
                         "mia_auc": mia.get("auc", math.nan), "wall_s": rec.get("wall_time_s", math.nan),
                         "late_move": late_move(rec)})
        df = pd.DataFrame(rows)
        extra = {c: (c, "mean") for c in ("client_p10", "epsilon", "mia_auc") if df[c].notna().any()}
        out = (df.groupby(["task", "partition", "algorithm", "metric"], sort=False)
               .agg(seeds=("seed", "count"), mean=("final", "mean"), std=("final", "std"),
                    untrained=("untrained", "mean"), **extra, late_move=("late_move", "mean"),
                    wall_s=("wall_s", "sum")).reset_index())
        # Scores where higher is better: the metric itself, or -log(metric) for perplexity (a gain is then the
        # log of the perplexity ratio, so LEARNED_MARGIN reads as "at least 2% lower perplexity").
        up = out["metric"].map(higher_is_better).astype(bool)

        def score(col: str) -> pd.Series:
            return out[col].where(up, -np.log(out[col].clip(lower=1e-300)))

        mean, untrained = score("mean"), score("untrained")
        central = mean[out["algorithm"] == "centralized"].groupby(out["task"]).first()
        central_gain = (out["task"].map(central) - untrained).fillna(0.0).clip(lower=0.0)
        need = np.maximum(LEARNED_MARGIN, LEARNED_SHARE * central_gain)
        out["learned"] = (mean - untrained) >= need
        return out


PLATEAU_SHARE = LAST_FRACTION  # the plateau check: how much the last 20% of rounds (the board's last20) move it


def late_move(record: dict[str, Any]) -> float:
    """How much a federated run's primary metric moved over its last PLATEAU_SHARE of rounds: the final value minus
    the value at the last evaluated round at or before (1 - PLATEAU_SHARE) * rounds (in the metric's units; for a
    lower-is-better metric, the old value minus the final one, so a positive move is an improvement either way).
    NaN for a centralized run or a curve without such a point."""
    if record.get("kind") != "federated":
        return math.nan
    metric = record["task"]["primary_metric"]
    rounds = record["config"]["rounds"]
    cut = math.floor((1 - PLATEAU_SHARE) * rounds)
    earlier = [p for p in record["curve"] if p["round"] <= cut]
    if not earlier:
        return math.nan
    before, after = earlier[-1]["metrics"][metric], record["final"][metric]
    return float(after - before) if higher_is_better(metric) else float(before - after)


def reproduce(table: str, profile: str, runs_dir: str | Path = "runs/reproduce", board: str | Path | None = "leaderboard",
              tasks: Iterable[str] | None = None, seeds: Iterable[int] | None = None,
              algorithms: Iterable[str] | None = None, partitions: Iterable[str] | None = None,
              submitter: str = "fednlp-bench maintainers", progress: bool = True) -> Reproduction:
    # the default submitter is official.MAINTAINERS: the official rows of the board
    """Plan, run what is not finished, submit and rebuild the board; returns the reproduction (see .summary())."""
    family = table_family(table)
    runs = plan_runs(family, profile, tasks, seeds, algorithms, partitions)
    if board and (seeds or partitions):
        card = {r.key for r in plan_runs(family, profile, tasks, algorithms=algorithms)}
        extra = [r for r in runs if r.key not in card]
        if extra:
            raise UserError(f"{len(extra)} planned run(s) are not in the cards' {profile} plan (e.g. {extra[0].task} "
                            f"{extra[0].label} {extra[0].partition_label} seed {extra[0].seed}): the board's "
                            "official rows are exactly what the cards plan",
                            "add --no-board to run them without submitting, or change the card's profile")
    rep = Reproduction(family, profile, runs, Path(runs_dir) / profile / family, Path(board) if board else None,
                       progress)
    rep.execute(submitter if board else None)
    rep.submit_and_build(submitter)
    return rep


def write_recipes(table: str, profile: str, folder: str | Path, tasks: Iterable[str] | None = None) -> list[Path]:
    """Write a canonical recipe (partition/*.yaml, with its expected digest) for every partition of the plan."""
    import yaml

    from .partition.recipe import build_partition, load_recipe, load_recipe_data
    from .runner import partition_recipe

    family = table_family(table)
    out = []
    seen = set()
    present = set()  # digests of the recipes already in the folder
    for f in sorted(Path(folder).glob("*.yaml")) if Path(folder).is_dir() else []:
        try:
            present.add(load_recipe(f).expected_digest)
        except UserError:
            continue
    for run in plan_runs(family, profile, tasks):
        if run.algorithm == "centralized":
            continue
        p = run.partition
        recipe = partition_recipe(run.config(Path(folder), progress=False), run.task)
        ident = json.dumps(recipe.to_dict(), sort_keys=True)
        if ident in seen:
            continue
        seen.add(ident)
        data = load_recipe_data(recipe)
        part, _ = build_partition(recipe, data)
        recipe.expected_digest = part.digest
        if part.digest in present:  # already canonical (the tuning table shares partitions with the family's)
            continue
        # a card given by path is named by its file name; the tuning table's own partitions say so
        name = f"{Path(run.task).stem}_{profile}{'_tuning' if family == TUNING_TABLE else ''}_{p['partition']}" + \
            "".join(f"_{k[0]}{p[k]:g}" for k in ("alpha", "beta") if k in p)
        path = Path(folder) / f"{name}.yaml"
        head = (f"# canonical partition ({profile} profile): {part.name} of task {run.task} "
                f"({len(data.train_labels)} train / {len(data.test_labels)} test)\n"
                f"# data fingerprint {data.fingerprint}\n")
        path.write_text(head + yaml.safe_dump(recipe.to_dict(), sort_keys=False))
        out.append(path)
    return out
