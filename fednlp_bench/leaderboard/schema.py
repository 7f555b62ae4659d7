"""What a valid run JSON (schema 1) and a submission look like, as a list of problems or one UserError.

`validate_result` never raises on malformed input: it returns every problem it can find (empty = valid).
`check_result` raises UserError with the first one. `as_submission` turns a bare run JSON or a
`{"submission": ..., "result": ...}` wrapper into the wrapper form with every metadata field filled.

`run_settings` reads a run's trustworthy-FL settings (client selection, continual data, differential
privacy, membership-inference audit) with defaults for every key an older result lacks, and
`default_method` names a run by its algorithm plus its non-default settings (see METHOD_NAME_FORMAT).
"""
from __future__ import annotations

import math
import re
from typing import Any

from ..algorithms.registry import BUILTIN
from ..config import PARTITIONS
from ..errors import UserError
from ..tuning import DEFAULTS as TUNING_DEFAULTS

SUPPORTED_VERSIONS: tuple[int, ...] = (1,)
# The first package version that writes each schema version (named in the "too old" message).
FIRST_PACKAGE_WITH_SCHEMA: dict[int, str] = {1: "0.1.0"}

KINDS = ("federated", "centralized")
FAMILY_METRICS: dict[str, tuple[str, ...]] = {
    "text_classification": ("accuracy", "macro_f1"),
    "sequence_tagging": ("precision", "recall", "f1", "accuracy"),
    "extractive_qa": ("exact_match", "f1"),
    "seq2seq": ("rouge1", "rouge2", "rougeL"),
    "language_modeling": ("perplexity", "token_accuracy"),  # perplexity: lower is better, any value >= 0
}
CLIENT_STATS = ("mean", "std", "min", "p10", "median", "max")
DP_LEVELS = ("client", "example")
DEFAULT_SUBMITTER = "fednlp-bench"
SAME_BUDGET_METHOD = "centralized (same budget)"  # a centralized run with a fixed budget, not the converged one
PLUGIN_PREFIX = "plugin("  # method names of runs of algorithms that are not built in start with it, and only theirs

_HEX64 = re.compile(r"[0-9a-f]{64}")
_TOP_KEYS: dict[str, tuple[type, ...]] = {
    "schema_version": (int,), "package_version": (str,), "created_utc": (str,), "environment": (dict,),
    "kind": (str,), "config": (dict,), "seed": (int,), "task": (dict,), "curve": (list,), "final": (dict,),
    "wall_time_s": (int, float), "num_parameters": (int,), "upload_bytes_per_client_per_round": (int,),
}
_FEDERATED_KEYS: dict[str, tuple[type, ...]] = {"partition": (dict,), "clients": (dict,)}
_TASK_KEYS: dict[str, tuple[type, ...]] = {
    "name": (str,), "family": (str,), "model": (str,), "max_length": (int,), "num_train": (int,),
    "num_test": (int,), "data_fingerprint": (str,), "metric_names": (list,), "primary_metric": (str,),
}
_CONFIG_KEYS: dict[str, tuple[type, ...]] = {
    "task": (str,), "algorithm": (str,), "partition": (str,), "clients": (int,), "clients_per_round": (int,),
    "rounds": (int,), "seed": (int,), "model": (str,), "max_train": (int, type(None)),
}
_PARTITION_KEYS: dict[str, tuple[type, ...]] = {
    "method": (str,), "name": (str,), "clients": (int,), "seed": (int,), "digest": (str,),
}


def _is(value: Any, types: tuple[type, ...]) -> bool:
    """isinstance that does not take a bool for an int or a float."""
    if isinstance(value, bool):
        return bool in types
    return isinstance(value, types)


def _type_name(types: tuple[type, ...]) -> str:
    names = {int: "integer", float: "number", str: "string", dict: "object", list: "list", type(None): "null"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _check_keys(obj: dict[str, Any], spec: dict[str, tuple[type, ...]], prefix: str) -> list[str]:
    problems = []
    for key, types in spec.items():
        if key not in obj:
            problems.append(f"missing key '{prefix}{key}'")
        elif not _is(obj[key], types):
            problems.append(f"'{prefix}{key}' must be {_type_name(types)} (got {type(obj[key]).__name__})")
    return problems


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of `metric` is better (tasks.spec.higher_is_better; False for perplexity, loss).

    Imported on first use: the tasks package imports torch, which reading the schema does not need.
    """
    from ..tasks.spec import higher_is_better as _higher

    return _higher(metric)


def _metric_problem(name: str, value: Any, metric: str = "") -> str | None:
    """None if `value` is a finite fraction in [0, 1] (for a lower-is-better metric such as perplexity: a
    finite number >= 0), else the problem (null is how NaN is written)."""
    if value is None:
        return f"{name} is null (NaN)"
    if not _is(value, (int, float)):
        return f"{name} must be a number (got {type(value).__name__})"
    if not math.isfinite(value):
        return f"{name} is {value} (not finite)"
    if metric and not higher_is_better(metric):
        return None if value >= 0.0 else f"{name} = {value!r} is negative"
    if not 0.0 <= value <= 1.0:
        return f"{name} = {value!r} is outside [0, 1]"
    return None


def _check_metric_dict(values: Any, names: list[str], where: str, metric: str | None = None) -> list[str]:
    """The metrics `names` of `values`, each checked for its own range (or `metric`'s: per-client statistics)."""
    if not isinstance(values, dict):
        return [f"'{where}' must be an object of metrics"]
    if sorted(values) != sorted(names):
        return [f"'{where}' has metrics {sorted(values)}, expected the task's {sorted(names)}"]
    return [p for m in names if (p := _metric_problem(f"{where}.{m}", values[m], metric or m)) is not None]


def _optional_blocks_problems(record: dict[str, Any]) -> list[str]:
    """The optional "privacy" and "membership_inference" blocks: absent or null, or well-formed."""
    problems = []
    privacy = record.get("privacy")
    if privacy is not None:
        if not isinstance(privacy, dict):
            problems.append(f"'privacy' must be an object or null (got {type(privacy).__name__})")
        else:
            if "level" in privacy and privacy["level"] not in DP_LEVELS:
                problems.append(f"privacy.level '{privacy['level']}' is not one of {', '.join(DP_LEVELS)}")
            eps = privacy.get("epsilon")
            if eps is not None and not (_is(eps, (int, float)) and eps >= 0):  # inf: no formal guarantee (z = 0)
                problems.append(f"privacy.epsilon must be a number >= 0 (got {eps!r})")
    mia = record.get("membership_inference")
    if mia is not None:
        if not isinstance(mia, dict):
            problems.append(f"'membership_inference' must be an object or null (got {type(mia).__name__})")
        elif (p := _metric_problem("membership_inference.auc", mia.get("auc"))) is not None:
            problems.append(p)
    return problems


def _version_problem(version: Any) -> str | None:
    if not _is(version, (int,)):
        return f"'schema_version' must be an integer (got {version!r})"
    oldest, newest = min(SUPPORTED_VERSIONS), max(SUPPORTED_VERSIONS)
    if version < oldest:
        return (f"schema_version {version} is older than the oldest this package reads ({oldest}); "
                f"re-run with fednlp-bench >= {FIRST_PACKAGE_WITH_SCHEMA[oldest]}")
    if version > newest:
        return (f"schema_version {version} is newer than the newest this package reads ({newest}); "
                "upgrade fednlp-bench to read it")
    if version not in SUPPORTED_VERSIONS:
        return f"schema_version {version} is not supported (this package reads {list(SUPPORTED_VERSIONS)})"
    return None


def validate_result(record: Any) -> list[str]:
    """Every problem of a run JSON (schema 1) as one line each; an empty list means valid."""
    if not isinstance(record, dict):
        return [f"a result must be a JSON object (got {type(record).__name__})"]
    if "schema_version" not in record:
        return ["missing key 'schema_version'"]
    if (p := _version_problem(record["schema_version"])) is not None:
        return [p]
    problems = _check_keys(record, _TOP_KEYS, "")
    if problems:
        return problems
    kind = record["kind"]
    if kind not in KINDS:
        return [f"unknown kind '{kind}' (expected one of {', '.join(KINDS)})"]
    federated = kind == "federated"
    problems += _check_keys(record, _FEDERATED_KEYS, "") if federated else []
    task, config = record["task"], record["config"]
    problems += _check_keys(task, _TASK_KEYS, "task.") + _check_keys(config, _CONFIG_KEYS, "config.")
    if federated and isinstance(record.get("partition"), dict):
        problems += _check_keys(record["partition"], _PARTITION_KEYS, "partition.")
    if problems:
        return problems

    # Task: family and its metric names.
    family, names = task["family"], task["metric_names"]
    if family not in FAMILY_METRICS:
        return [f"unknown task family '{family}' (expected one of {', '.join(FAMILY_METRICS)})"]
    if sorted(map(str, names)) != sorted(FAMILY_METRICS[family]) or len(set(names)) != len(names):
        return [f"task.metric_names {names} do not match family {family} (expected {list(FAMILY_METRICS[family])})"]
    if task["primary_metric"] not in names:
        problems.append(f"task.primary_metric '{task['primary_metric']}' is not one of task.metric_names {names}")

    # Metrics: final, curve, per-client distributions.
    problems += _check_metric_dict(record["final"], names, "final")
    curve = record["curve"]
    if not curve:
        problems.append("'curve' is empty (a run records at least one evaluation)")
    last = None
    for i, point in enumerate(curve):
        if not isinstance(point, dict):
            problems.append(f"'curve[{i}]' must be an object")
            continue
        rnd = point.get("round")
        if not _is(rnd, (int,)):
            problems.append(f"'curve[{i}].round' must be an integer (got {rnd!r})")
        else:
            if last is not None and rnd <= last:
                problems.append(f"curve rounds are not increasing (round {rnd} after round {last})")
            last = rnd
        problems += _check_metric_dict(point.get("metrics"), names, f"curve[{i}].metrics")
    if federated:
        clients = record["clients"]
        if sorted(clients) != sorted(names):
            problems.append(f"'clients' has metrics {sorted(clients)}, expected the task's {sorted(names)}")
        else:
            for m in names:
                problems += _check_metric_dict(clients[m], list(CLIENT_STATS), f"clients.{m}", metric=m)
    problems += _optional_blocks_problems(record)

    # Config consistency.
    # A user's own card (--task path/to/card.yaml) names the task inside the card, so only built-in names must match.
    is_card_path = str(config["task"]).lower().endswith((".yaml", ".yml"))
    if config["task"] != task["name"] and not is_card_path:
        problems.append(f"config.task '{config['task']}' != task.name '{task['name']}'")
    if config["seed"] != record["seed"]:
        problems.append(f"config.seed {config['seed']} != seed {record['seed']}")
    algorithm = config["algorithm"]
    if federated:
        problems += _algorithm_problems(record)
    if not federated and algorithm != "centralized":
        problems.append(f"config.algorithm '{algorithm}' does not match kind centralized (expected 'centralized')")
    if config["clients"] < 1 or config["clients_per_round"] < 1 or config["rounds"] < 1:
        problems.append("config.clients, config.clients_per_round and config.rounds must be >= 1")
    if config["clients_per_round"] > config["clients"]:
        problems.append(f"config.clients_per_round {config['clients_per_round']} > config.clients {config['clients']}")
    if record["upload_bytes_per_client_per_round"] < 0:
        problems.append("'upload_bytes_per_client_per_round' must be >= 0")
    if federated:
        part = record["partition"]
        if not _HEX64.fullmatch(part["digest"]):
            problems.append(f"partition.digest '{part['digest'][:80]}' is not 64 lowercase hex characters (a sha256)")
        for key in ("train_digest", "test_digest"):
            if key in part and not (isinstance(part[key], str) and _HEX64.fullmatch(part[key])):
                problems.append(f"partition.{key} is not 64 lowercase hex characters (a sha256)")
        if config["partition"] not in PARTITIONS:
            problems.append(f"config.partition '{config['partition']}' is not one of {', '.join(PARTITIONS)}")
        if part["method"] != config["partition"]:
            problems.append(f"partition.method '{part['method']}' != config.partition '{config['partition']}'")
        if part["clients"] != config["clients"]:
            problems.append(f"partition.clients {part['clients']} != config.clients {config['clients']}")
        data_seed = config.get("data_seed")
        expected = record["seed"] if data_seed is None else data_seed  # --data-seed fixes the partition across seeds
        if part["seed"] != expected:
            what = "config.data_seed" if data_seed is not None else "seed"
            problems.append(f"partition.seed {part['seed']} != {what} {expected}")
    if not problems:
        problems += _consistency_problems(record)
    return problems


def builtin_class(name: str) -> str:
    """The qualified class name of a built-in algorithm ("fednlp_bench.algorithms.fedavg.FedAvg")."""
    return BUILTIN[name].replace(":", ".")


def is_plugin_run(result: dict[str, Any]) -> bool:
    """Whether a federated result was made by an algorithm that is not built in (read from the record only: nothing
    the record names is imported)."""
    cfg = result.get("config") if isinstance(result.get("config"), dict) else {}
    return result.get("kind") == "federated" and cfg.get("algorithm") not in BUILTIN


def _algorithm_problems(record: dict[str, Any]) -> list[str]:
    """config.algorithm and the "algorithm" block agree: a built-in name is the built-in class (a plug-in cannot pass
    for one); a plug-in run records its class, version or source hash and arguments. Results written before the
    Algorithm API have no block and name a built-in."""
    name = record["config"]["algorithm"]
    block = record.get("algorithm")
    if name == "centralized":
        return ["config.algorithm 'centralized' is not a federated algorithm (expected kind centralized)"]
    if block is None:
        return [] if name in BUILTIN else [f"config.algorithm '{name}' is not a federated algorithm: no built-in "
                                           f"({', '.join(BUILTIN)}), and the result has no 'algorithm' block naming "
                                           "its class"]
    if not isinstance(block, dict):
        return [f"'algorithm' must be an object (got {type(block).__name__})"]
    problems = []
    for key, types in (("spec", (str,)), ("class", (str,)), ("builtin", (bool,)), ("args", (dict,)),
                       ("upload_vectors", (int,)), ("api_version", (int,))):
        if not _is(block.get(key), types):
            problems.append(f"algorithm.{key} must be {_type_name(types)} (got {block.get(key)!r})")
    if problems:
        return problems
    if block["spec"] != name:
        problems.append(f"algorithm.spec '{block['spec']}' != config.algorithm '{name}'")
    if name in BUILTIN:
        if not block["builtin"] or block["class"] != builtin_class(name):
            problems.append(f"config.algorithm '{name}' is a built-in name, but the run's class is "
                            f"'{block['class']}', not the built-in {builtin_class(name)}")
    elif block["builtin"]:
        problems.append(f"algorithm.builtin is true for '{name}', which is not a built-in algorithm")
    elif not (_is(block.get("version"), (str,)) or _HEX64.fullmatch(str(block.get("source_sha256")))):
        problems.append("a plug-in run records its distribution's version or its source file's sha256 "
                        "(algorithm.version / algorithm.source_sha256)")
    if block["upload_vectors"] < 1:
        problems.append("algorithm.upload_vectors must be >= 1")
    return problems


def _consistency_problems(record: dict[str, Any]) -> list[str]:
    """What the curve, model, clients per round, wall time and upload bytes say must agree with the config."""
    config, curve, task = record["config"], record["curve"], record["task"]
    federated = record["kind"] == "federated"
    problems = []
    rounds = [p.get("round") for p in curve if isinstance(p, dict) and _is(p.get("round"), (int,))]
    if rounds and min(rounds) < 1:
        problems.append(f"curve round {min(rounds)} is not a round (rounds start at 1)")
    if federated and rounds and rounds[-1] != config["rounds"]:
        problems.append(f"the curve ends at round {rounds[-1]} but config.rounds is {config['rounds']} (a run "
                        "evaluates its last round)")
    if not federated and rounds:
        es = record.get("early_stopping")
        limit = config.get("max_epochs") if config.get("max_epochs") is not None else config.get("epochs")
        if _is(limit, (int, float)) and rounds[-1] > math.ceil(limit):
            problems.append(f"the curve reaches epoch {rounds[-1]}, beyond the {limit} the config allows")
        if isinstance(es, dict) and es.get("epochs_run") != len(curve):
            problems.append(f"early_stopping.epochs_run {es.get('epochs_run')} != the {len(curve)} epochs of the curve")
    if federated:
        for i, point in enumerate(curve):
            clients = point.get("clients") if isinstance(point, dict) else None
            if clients is not None and (not isinstance(clients, list) or len(clients) != config["clients_per_round"]):
                problems.append(f"curve[{i}] lists {len(clients) if isinstance(clients, list) else clients!r} "
                                f"clients, config.clients_per_round is {config['clients_per_round']}")
                break
    model = config.get("model")
    if isinstance(model, str):
        from ..tasks.models import resolve_model

        if task["model"] not in (model, resolve_model(model).name):
            problems.append(f"task.model '{task['model']}' is not the model of config.model '{model}'")
    wall = record["wall_time_s"]
    if not (math.isfinite(wall) and wall >= 0):
        problems.append(f"wall_time_s {wall!r} must be a finite number >= 0")
    else:
        times = [p.get("wall_time_s") for p in curve if isinstance(p, dict) and p.get("wall_time_s") is not None]
        if any(not _is(t, (int, float)) or not math.isfinite(t) or t < 0 for t in times):
            problems.append("a curve point's wall_time_s is not a finite number >= 0")
        elif any(b < a for a, b in zip(times, times[1:])) or (times and times[-1] > wall + 1e-6):
            problems.append("the curve's wall times go backwards or past the run's wall_time_s")
    upload, params = record["upload_bytes_per_client_per_round"], record["num_parameters"]
    vectors = (record.get("algorithm") or {}).get("upload_vectors", 1) if federated else 0
    if federated and upload != 4 * params * vectors:
        problems.append(f"upload_bytes_per_client_per_round {upload} is not the {4 * params * vectors} bytes of "
                        f"{vectors} x {params} float32 parameters")
    if not federated and upload != 0:
        problems.append("a centralized run uploads nothing (upload_bytes_per_client_per_round must be 0)")
    if params < 1:
        problems.append("num_parameters must be >= 1")
    return problems


def check_result(record: Any, where: str) -> None:
    """Raise UserError naming `where` (a file) and the first problem of `record`; return if valid."""
    problems = validate_result(record)
    if problems:
        first = problems[0]
        fix = "" if "schema_version" in first else "submit the run JSON as fednlp-bench wrote it (or re-run)"
        raise UserError(f"{where}: invalid result: {first}", fix)


def default_profile(result: dict[str, Any]) -> str:
    """The profile of a run without one: f"{model}, {rounds} rounds, max_train {max_train or 'all'}"."""
    cfg = result["config"]
    return f"{cfg['model']}, {cfg['rounds']} rounds, max_train {cfg.get('max_train') or 'all'}"


METHOD_NAME_FORMAT = """\
<algorithm>[(<arg>=<value>,...)][+<tuning>][+<selection>][+continual(A=<rounds>[,cap=<examples>])][+dp-client(z=<z>,S=<clip>)][+dp-example(z=<z>,C=<clip>)][+attack(<kind>,f=<fraction>,s=<scale>)]
  algorithm: config.algorithm for a built-in (fedavg, fedprox, fedopt, scaffold, ...), plugin(<spec>) for any other
             (a plug-in's entry-point name or module.Class); centralized for the converged centralized reference
             (early stopping), "centralized (same budget)" for a centralized run with a fixed number of passes
  args: the algorithm's arguments that differ from their defaults (config.algorithm_args), sorted by name
  tuning: --peft and --freeze: lora(r=<rank>[,alpha=..][,dropout=..][,targets=a/b]) (alpha 16 and dropout 0.05
          shown only when changed), ia3, prompt(n=<virtual tokens>), prefix(n=...), bitfit, freeze(<e,0,1,...>);
          full fine-tuning, the default, adds nothing
  selection: activity, or power_of_choice(d=<candidates>) (d defaults to 2 x clients per round, at most the clients);
             uniform, the default, adds nothing
  continual: --continual-rounds A and --storage-cap (",cap=..." only when set)
  dp-client: client-level DP-FedAvg, noise multiplier z (--dp-noise-multiplier) and update clip S (--dp-clip)
  dp-example: example-level DP-SGD, noise multiplier z (--dp-sgd-noise-multiplier) and per-example clip C (--dp-sgd-clip)
  attack: simulated attacking clients (--attack, --attack-fraction, --attack-scale; the scale as the run used it)
  numbers as Python writes them (1.0, 0.3, 8); a run with every default setting is named by its algorithm alone"""


def _number(value: Any) -> str:
    """A setting's value in a method name: ints as ints, floats by their shortest repr (1.0, 0.3, 1e-05)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return str(value) if isinstance(value, int) else repr(float(value))


def _dp_setting(cfg: dict[str, Any], privacy: dict[str, Any], level: str) -> tuple[Any, Any] | None:
    """(noise multiplier, clip) of one DP level from the config, else from a privacy block of that level."""
    clip_key, noise_key = ("dp_clip", "dp_noise_multiplier") if level == "client" else \
        ("dp_sgd_clip", "dp_sgd_noise_multiplier")
    if cfg.get(clip_key) is not None:
        return cfg.get(noise_key) if cfg.get(noise_key) is not None else 0.0, cfg[clip_key]
    if privacy.get("level") == level:
        return privacy.get("noise_multiplier"), privacy.get("clip")
    return None


def tuning_tags(cfg: dict[str, Any]) -> list[str]:
    """The method-name tags of --peft and --freeze (METHOD_NAME_FORMAT); [] for full fine-tuning."""
    tags = []
    peft = cfg.get("peft")
    if peft == "lora":
        knobs = [f"r={_number(cfg.get('lora_r'))}"]
        for key, name in (("lora_alpha", "alpha"), ("lora_dropout", "dropout")):
            if cfg.get(key) is not None and cfg[key] != TUNING_DEFAULTS[key]:
                knobs.append(f"{name}={_number(cfg[key])}")
        if cfg.get("lora_targets"):
            knobs.append("targets=" + "/".join(map(str, cfg["lora_targets"])))
        tags.append(f"lora({','.join(knobs)})")
    elif peft in ("prompt", "prefix"):
        tags.append(f"{peft}(n={_number(cfg.get('virtual_tokens'))})")
    elif peft:
        tags.append(str(peft))
    if cfg.get("freeze"):
        tags.append(f"freeze({cfg['freeze']})")
    return tags


def run_settings(result: dict[str, Any]) -> dict[str, Any]:
    """The trustworthy-FL settings of a run (every key an older result lacks takes its default).

    Returns {"selection": "uniform" | "activity" | "power_of_choice" ("" for centralized runs),
    "data": "static" | "continual", "dp": "none" | "client" | "example" | "client+example",
    "epsilon": float (NaN without DP or without a privacy block, inf when the block's epsilon is null: an
    infinite epsilon, written as null), "mia_auc": float (NaN without a membership-inference audit),
    "attack": "none" or the simulated attack with its strength ("sign_flip(s=4.0)"), "attack_fraction": the share of
    attacking clients (0.0 without), "tags": the method-name tags of the non-default settings, in
    METHOD_NAME_FORMAT's order}.
    """
    cfg = result.get("config") if isinstance(result.get("config"), dict) else {}
    privacy = result.get("privacy") if isinstance(result.get("privacy"), dict) else {}
    federated = result.get("kind") != "centralized"
    tags: list[str] = tuning_tags(cfg)
    selection = str(cfg.get("selection") or "uniform") if federated else ""
    if selection == "power_of_choice":
        per_round = cfg.get("clients_per_round") or 0
        d = cfg.get("selection_candidates") or 2 * per_round
        if isinstance(cfg.get("clients"), int) and isinstance(d, int):
            d = min(d, cfg["clients"])
        tags.append(f"power_of_choice(d={_number(d)})")
    elif selection not in ("uniform", ""):
        tags.append(selection)
    continual = cfg.get("continual_rounds")
    if continual:
        cap = cfg.get("storage_cap")
        tags.append(f"continual(A={_number(continual)}" + (f",cap={_number(cap)})" if cap else ")"))
    levels = []
    for level, clip_name in (("client", "S"), ("example", "C")):
        dp = _dp_setting(cfg, privacy, level)
        if dp is not None:
            levels.append(level)
            tags.append(f"dp-{level}(z={_number(dp[0])},{clip_name}={_number(dp[1])})")
    attack = result.get("attack") if isinstance(result.get("attack"), dict) else {}
    attack_name, attack_fraction = "none", 0.0
    if cfg.get("attack") or attack:
        kind = attack.get("kind", cfg.get("attack"))
        fraction = attack.get("fraction", cfg.get("attack_fraction"))
        scale = attack.get("scale", cfg.get("attack_scale"))
        tags.append(f"attack({kind},f={_number(fraction)},s={_number(scale)})")
        attack_name = f"{kind}(s={_number(scale)})"
        attack_fraction = float(fraction) if _is(fraction, (int, float)) else math.nan
    eps = privacy.get("epsilon", math.nan)
    if eps is None:  # result files write an infinite epsilon (noise multiplier 0: no guarantee) as null
        eps = math.inf
    mia = result.get("membership_inference") if isinstance(result.get("membership_inference"), dict) else {}
    auc = mia.get("auc")
    return {"selection": selection, "data": "continual" if continual else "static", "dp": "+".join(levels) or "none",
            "epsilon": float(eps) if levels and _is(eps, (int, float)) else math.nan,
            "mia_auc": float(auc) if _is(auc, (int, float)) else math.nan, "attack": attack_name,
            "attack_fraction": attack_fraction, "tags": tags}


def default_method(result: dict[str, Any]) -> str:
    """The method name of a run without one: its algorithm ("centralized" for a centralized run) followed by
    "+<tag>" for each non-default training setting, e.g. "fedavg+power_of_choice(d=8)+dp-client(z=0.3,S=0.5)"
    (METHOD_NAME_FORMAT). A run with default settings (every run before these settings existed) keeps the
    bare algorithm name, so runs that train differently are never averaged into one row."""
    if result.get("kind") == "centralized":
        # the converged reference (early stopping) is "centralized"; a fixed number of passes is named as such
        converged = (result.get("config") or {}).get("max_epochs") is not None
        base = "centralized" if converged else SAME_BUDGET_METHOD
    else:
        cfg = result.get("config") or {}
        name = str(cfg.get("algorithm"))
        base = name if name in BUILTIN else f"{PLUGIN_PREFIX}{name.replace(':', '.')})"
        args = cfg.get("algorithm_args") if isinstance(cfg.get("algorithm_args"), dict) else {}
        if args:
            base += "(" + ",".join(f"{k}={_number(args[k])}" for k in sorted(args)) + ")"
    return "+".join([base, *run_settings(result)["tags"]])


def as_submission(obj: Any, where: str) -> dict[str, Any]:
    """A submission in wrapper form, metadata filled: {"submission": {submitter, method, profile, notes}, "result"}.

    A bare run JSON (no "submission" key) gets submitter "fednlp-bench", the default method and profile.
    Other metadata keys of a wrapper (e.g. "canonical", "content_hash" stored by submit) are kept.
    The result is validated (UserError naming `where` if not valid).
    """
    if isinstance(obj, dict) and "submission" in obj:
        meta, result = obj["submission"], obj.get("result")
        if not isinstance(meta, dict):
            raise UserError(f"{where}: 'submission' must be an object", 'use {"submitter": ..., "method": ..., "profile": ...}')
        for key in ("submitter", "method", "profile", "notes"):
            if meta.get(key) is not None and not isinstance(meta[key], str):
                raise UserError(f"{where}: submission.{key} must be a string", f"write submission.{key} as text")
        if result is None:
            raise UserError(f"{where}: a submission needs a 'result' (the run JSON)", "put the run JSON under 'result'")
    else:
        meta, result = {}, obj
    check_result(result, where)
    filled = {"submitter": meta.get("submitter") or DEFAULT_SUBMITTER,
              "method": meta.get("method") or default_method(result),
              "profile": meta.get("profile") or default_profile(result),
              "notes": meta.get("notes") or ""}
    return {"submission": {**meta, **filled}, "result": result}
