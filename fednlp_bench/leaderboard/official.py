"""Official rows and partition claims: what a submission must prove about where its numbers come from.

An official submission is a reproduction's result (`fednlp-bench reproduce`): its settings are recomputed from the
task card's profile (the plan and its key, `reproduce.plan_runs`) and must be exactly what the profile plans for
its task, algorithm, partition and seed, under the maintainers' name and the profile's board label, on the
canonical recipe of the partition it names. Community submissions (`leaderboard submit`) may run anything, but
the partition digest they record must be the digest of the partition they name when a canonical recipe with
those parameters exists, and never another recipe's digest.
"""
from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ..config import EXECUTION_SETTINGS, PROFILES, RunConfig
from ..errors import UserError

MAINTAINERS = "fednlp-bench maintainers"  # the submitter name of official rows, reserved for reproduction
_RECIPE_KEYS = ("task", "method", "clients", "alpha", "beta", "seed", "k", "embed_model", "merge_small", "data_dir",
                "max_train", "max_test")
# Settings that say where a run read or wrote files; they do not change what it computes.
_PATH_SETTINGS = ("data_dir", "train_file", "test_file")


def profile_name(label: str) -> str:
    """The profile a board label belongs to: 'standard: tiny, ...' -> 'standard'; a bare profile name is itself;
    any other label is its own name."""
    head = str(label).split(":", 1)[0].strip()
    return head if head in PROFILES else str(label)


def canonical_recipes(folder: str | Path) -> list[tuple[dict[str, Any], str]]:
    """(recipe parameters, expected digest) of every canonical recipe (`*.yaml`) in the partition folder."""
    out = []
    for path in sorted(Path(folder).glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise UserError(f"canonical partition {path} is not valid YAML", "fix its syntax") from exc
        if isinstance(raw, dict) and isinstance(raw.get("expected_digest"), str):
            out.append((_recipe_params(raw), raw["expected_digest"]))
    return out


def _recipe_params(raw: dict[str, Any]) -> dict[str, Any]:
    from ..partition.recipe import PartitionRecipe

    known = {k.replace("-", "_"): v for k, v in raw.items() if k.replace("-", "_") in _RECIPE_KEYS}
    d = PartitionRecipe(**known).to_dict()
    return {k: (float(v) if k in ("alpha", "beta") and v is not None else v) for k, v in d.items()
            if k not in ("data_dir", "expected_digest")}


def claimed_recipe(result: dict[str, Any]) -> dict[str, Any]:
    """The partition recipe a federated result names: its task, method, clients, alpha/beta, data seed, subsets."""
    from ..partition.recipe import PartitionRecipe

    cfg, part = result["config"], result["partition"]
    seed = cfg.get("data_seed") if cfg.get("data_seed") is not None else result["seed"]
    recipe = PartitionRecipe(task=cfg["task"], method=part["method"], clients=part["clients"],
                             alpha=cfg.get("alpha"), beta=cfg.get("beta"), seed=seed, max_train=cfg.get("max_train"),
                             max_test=cfg.get("max_test"))
    return _recipe_params(recipe.to_dict())


def partition_status(result: dict[str, Any], recipes: list[tuple[dict[str, Any], str]]) -> tuple[bool, str | None]:
    """(canonical, problem) of a federated result's partition: canonical when a recipe with the parameters it names
    has its digest; a problem when that recipe has another digest, or when its digest is another recipe's."""
    digest = result["partition"]["digest"]
    claim = claimed_recipe(result)
    named = [d for params, d in recipes if params == claim]
    if named:
        if digest in named:
            return True, None
        return False, (f"partition digest {digest[:16]}... is not the digest of the partition it names "
                       f"({_describe(claim)}: {named[0][:16]}...)")
    others = [params for params, d in recipes if d == digest]
    if others:
        return False, (f"partition digest {digest[:16]}... belongs to another canonical partition "
                       f"({_describe(others[0])}), not to the one it names ({_describe(claim)})")
    return False, None


def _describe(params: dict[str, Any]) -> str:
    bits = [params.get("task", "?"), params.get("method", "?")]
    for k in ("alpha", "beta", "clients", "seed"):
        if params.get(k) is not None:
            bits.append(f"{k} {params[k]:g}" if isinstance(params[k], float) else f"{k} {params[k]}")
    return " ".join(str(b) for b in bits)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
        except (TypeError, ValueError):
            return False
    return a == b


def official_problems(meta: dict[str, Any], result: dict[str, Any],
                      recipes: list[tuple[dict[str, Any], str]]) -> list[str]:
    """Why an official submission is not what its profile's reproduction produces (empty list = it is).
    `recipes`: canonical_recipes() of the board's partition folder."""
    from ..reproduce import SPECIAL_TABLES

    cfg = result["config"]
    rep = (cfg.get("extra") or {}).get("reproduce") if isinstance(cfg.get("extra"), dict) else None
    if not isinstance(rep, dict) or not isinstance(rep.get("key"), str):
        return ["an official row must come from `fednlp-bench reproduce` (its result has no reproduction key)"]
    if meta.get("submitter") != MAINTAINERS:
        return [f"an official row is submitted as '{MAINTAINERS}', not '{meta.get('submitter')}'"]
    label = str(meta.get("profile", ""))
    profile = profile_name(label)
    if profile not in PROFILES:
        return [f"profile label '{label}' names no profile ({', '.join(PROFILES)})"]
    from ..tasks.registry import TASKS

    family = rep["table"] if rep.get("table") in SPECIAL_TABLES else result["task"]["family"]
    algorithm, task = cfg["algorithm"], cfg["task"]
    federated = result["kind"] == "federated"
    if task not in TASKS and not str(task).lower().endswith((".yaml", ".yml")):
        return [f"task '{task}' is neither a built-in task nor a task card (official rows reproduce a card)"]
    try:
        plan = planned_runs(family, profile, task)
    except UserError as exc:
        return [f"task {task} has no {profile} plan ({exc})"]
    run = plan.get(rep["key"])
    if run is None or run.algorithm != algorithm or run.seed != result["seed"]:
        where = "" if not federated else f" on {cfg['partition']}"
        return [f"its settings are not what the {profile} profile plans for {task} {algorithm}{where} seed "
                f"{result['seed']} (reproduction key {rep['key'][:16]} matches no run of the card's plan, whose seeds "
                f"are {sorted({r.seed for r in plan.values()})}): official rows come only from `fednlp-bench "
                "reproduce`"]
    problems = []
    if label != run.board_profile:
        problems.append(f"profile label '{label}' is not the {profile} profile's ('{run.board_profile}')")
    planned = run.config(Path(cfg.get("output") or "runs"), progress=False).resolved()
    expected = planned.to_dict()
    if not federated and planned.max_epochs is None:  # a fixed budget records the passes it made
        from ..runner import centralized_passes

        expected["epochs"] = centralized_passes(planned)
    defaults = RunConfig().to_dict()
    for key, value in expected.items():
        if key in EXECUTION_SETTINGS or key in _PATH_SETTINGS:
            continue
        if key not in cfg and _same(defaults.get(key), value):
            continue  # a result written before this setting existed ran with its default
        if key not in cfg or not _same(cfg[key], value):
            problems.append(f"config.{key} is {json.dumps(cfg.get(key))}, the {profile} profile plans "
                            f"{json.dumps(value)}")
            break
    if federated:
        canonical, problem = partition_status(result, recipes)
        if problem:
            problems.append(problem)
        elif not canonical:
            problems.append("its partition matches no canonical recipe in partition/ (official rows use them)")
    return problems


def planned_runs(family: str, profile: str, task: str) -> dict[str, Any]:
    """Reproduction key -> planned run, for every run of a task's table under a profile (the card's own plan:
    its seeds, partitions and algorithms, nothing overridden). Built-in cards' plans are cached; a card file is
    read again each time (it may have changed)."""
    from ..reproduce import plan_runs
    from ..tasks.registry import TASKS

    if task in TASKS:
        return _builtin_plan(family, profile, task)
    return {r.key: r for r in plan_runs(family, profile, tasks=[task])}


@lru_cache(maxsize=64)
def _builtin_plan(family: str, profile: str, task: str) -> dict[str, Any]:
    from ..reproduce import plan_runs

    return {r.key: r for r in plan_runs(family, profile, tasks=[task])}


def planned_config_key(result: dict[str, Any]) -> str | None:
    """The reproduction key a result carries (config.extra.reproduce.key), or None."""
    rep = ((result.get("config") or {}).get("extra") or {}).get("reproduce")
    return rep.get("key") if isinstance(rep, dict) and isinstance(rep.get("key"), str) else None

