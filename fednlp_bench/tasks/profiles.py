"""Run profiles of a task card: `smoke` (CPU, minutes: a pipeline check), `standard` (converged on 2 CPU cores, 3
seeds: the board's default) and `full` (FedNLP's settings, for GPUs).

A card's `profiles:` block holds, per profile, settings shared by every run of the task, the seeds and the
partitions a reproduction runs, and a block per algorithm (`centralized` or any built-in: `fedavg`, `fedprox`, `fedopt`,
`scaffold`, ...; an algorithm's arguments go in its block as `algorithm_args: {name: value}`):

    profiles:
      smoke:
        model: minilm
        max_train: 1000
        rounds: 5
        seeds: [1, 2]
        partitions: [uniform, label alpha=1, label alpha=0.1, quantity beta=5]
        fedavg: {client_optimizer: sgd, client_lr: 0.1,
                 more_seeds: {label alpha=1: [3, 4, 5]}}              # extra seeds on some of its partitions
        fedprox: {mu: 0.1, partitions: [uniform, label alpha=0.1]}   # an algorithm's own partitions
        centralized: {max_epochs: 10, patience: 2}                     # the converged reference
      full:
        model: distilbert-base-uncased

`full` starts from the card's `fednlp` block (FedNLP's published settings per algorithm); the profile's own
keys win. `fednlp-bench run --profile smoke` fills every setting the command line does not give.
"""
from __future__ import annotations

import re
from typing import Any

from ..config import ALGORITHMS, CLIENT_OPTIMIZERS, SERVER_OPTIMIZERS
from ..config import PROFILES as PROFILE_NAMES
from ..errors import UserError
from .spec import TaskSpec

RUN_ALGORITHMS = ("centralized", *ALGORITHMS)  # algorithm blocks a profile may hold: the built-ins

# Settings a profile (or one of its algorithm blocks) may give, by type; all are RunConfig fields.
INT_SETTINGS = ("rounds", "clients", "clients_per_round", "local_epochs", "batch_size", "max_length", "max_train",
                "max_test", "data_seed", "eval_every", "doc_stride", "max_answer_length", "n_best", "num_beams",
                "max_new_tokens", "max_target_length", "no_repeat_ngram_size", "decoder_layers", "max_epochs", "patience", "lora_r",
                "virtual_tokens")
FLOAT_SETTINGS = ("client_lr", "server_lr", "server_momentum", "mu", "epochs", "dropout", "validation_fraction",
                  "lora_alpha", "lora_dropout")
TEXT_SETTINGS = ("model", "source_prefix", "local_train", "local_test", "peft", "freeze")  # peft, freeze: tuning.py
CHOICE_SETTINGS = {"client_optimizer": CLIENT_OPTIMIZERS, "server_optimizer": SERVER_OPTIMIZERS}
MAPPING_SETTINGS = ("algorithm_args",)  # e.g. feddyn: {algorithm_args: {alpha: 0.01}}; typed when a run starts
SETTINGS = INT_SETTINGS + FLOAT_SETTINGS + TEXT_SETTINGS + tuple(CHOICE_SETTINGS) + MAPPING_SETTINGS
PLAN_KEYS = ("seeds", "partitions", "notes", "tuning")
METHOD_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,23}$")  # a tuning method's name in a card (`lora`, `freeze_e02`)

DEFAULT_SEEDS = {"smoke": [1, 2], "standard": [1, 2, 3], "full": [1, 2, 3]}
DEFAULT_DATA_SEED = 42  # the partition stays fixed across training seeds, as FedNLP's partition files did
# Canonical partitions per family: IID, label skew at two alphas, quantity skew; seq2seq has no labels to
# skew, so feature skew (TF-IDF clusters as labels) stands in for label skew, as in FedNLP.
DEFAULT_PARTITIONS = {
    "text_classification": ["uniform", "label alpha=1", "label alpha=0.1", "quantity beta=5"],
    "sequence_tagging": ["uniform", "label alpha=1", "label alpha=0.1", "quantity beta=5"],
    "extractive_qa": ["uniform", "label alpha=1", "label alpha=0.1", "quantity beta=5"],
    "seq2seq": ["uniform", "cluster alpha=1", "cluster alpha=0.1", "quantity beta=5"],
    "language_modeling": ["uniform", "cluster alpha=1", "cluster alpha=0.1", "quantity beta=5"],
}
PARTITION_RE = re.compile(r"^(uniform|natural|(label|cluster) alpha=([0-9.eE+-]+)|quantity beta=([0-9.eE+-]+))$")


def parse_partition(text: str) -> dict[str, Any]:
    """'label alpha=0.1' -> {'partition': 'label', 'alpha': 0.1}; raises ValueError when malformed."""
    m = PARTITION_RE.match(str(text).strip())
    if not m:
        raise ValueError(text)
    method = m.group(1).split()[0]
    out: dict[str, Any] = {"partition": method}
    if m.group(3) is not None:
        out["alpha"] = float(m.group(3))
    if m.group(4) is not None:
        out["beta"] = float(m.group(4))
    if out.get("alpha", 1.0) <= 0 or out.get("beta", 1.0) <= 0:
        raise ValueError(text)
    return out


def _seed_list(card, value: Any, where: str) -> list[int]:
    if (not isinstance(value, list) or not value or len(set(value)) != len(value)
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value)):
        raise card.fail(where, f"expected a list of distinct non-negative integers, got {value!r}",
                        f"write {where}: [1, 2]")
    return list(value)


def _partition_text(card, value: Any, where: str) -> str:
    """A card's partition text, checked (UserError naming `where` when parse_partition cannot read it)."""
    try:
        parse_partition(value)
    except ValueError:
        raise card.fail(where, f"unknown partition {value!r}", "write uniform, natural, 'label alpha=A', "
                        "'cluster alpha=A' or 'quantity beta=B' (A, B > 0)") from None
    return str(value).strip()


def check_settings(card, block: Any, key: str, allow_plan: bool) -> dict[str, Any]:
    """Validate one profile block (or algorithm block) of a card; returns its settings. `card` is a cards._Card.
    An algorithm block may name its own `partitions` (the profile's are the default)."""
    allowed = set(SETTINGS) | (set(PLAN_KEYS) | set(RUN_ALGORITHMS) if allow_plan else {"partitions", "more_seeds"})
    card.mapping(block, key, allowed)
    out: dict[str, Any] = {}
    for k, v in block.items():
        full = f"{key}.{k}"
        if k in INT_SETTINGS:
            out[k] = card.positive_int(v, full)
        elif k in FLOAT_SETTINGS:
            out[k] = card.number(v, full, allow_zero=k in ("mu", "server_momentum", "dropout", "lora_dropout"))
        elif k in TEXT_SETTINGS or k == "notes":
            out[k] = card.string(v, full)
        elif k in CHOICE_SETTINGS:
            out[k] = card.choice(v, full, CHOICE_SETTINGS[k])
        elif k in MAPPING_SETTINGS:
            if allow_plan:
                raise card.fail(full, "an algorithm's arguments belong to that algorithm's block",
                                f"move it under {key}.<algorithm>, e.g. {key}.feddyn.{k}")
            if not isinstance(v, dict) or not all(isinstance(a, str) and isinstance(b, (int, float, str, bool))
                                                  for a, b in v.items()):
                raise card.fail(full, f"expected a mapping of argument names to numbers or text, got {v!r}",
                                f"write {full}: {{alpha: 0.01}}")
            out[k] = dict(v)
        elif k == "seeds":
            out[k] = _seed_list(card, v, full)
        elif k == "more_seeds":
            if not isinstance(v, dict) or not v:
                raise card.fail(full, f"expected a mapping of partitions to seed lists, got {v!r}",
                                f"write {full}: {{label alpha=1: [4, 5]}}")
            out[k] = {_partition_text(card, p, full): _seed_list(card, seeds, f"{full}.{p}") for p, seeds in v.items()}
        elif k == "tuning":
            out[k] = check_tuning_block(card, v, full)
        elif k == "partitions":
            if not isinstance(v, list) or not v:
                raise card.fail(full, f"expected a list of partitions, got {v!r}",
                                f"write {full}: [uniform, label alpha=0.1, quantity beta=5]")
            out[k] = [_partition_text(card, p, full) for p in v]
        else:  # an algorithm block
            out[k] = check_settings(card, v, full, allow_plan=False)
    return out


def check_tuning_block(card, block: Any, key: str) -> dict[str, Any]:
    """A profile's `tuning:` block (the tuning table, `fednlp-bench reproduce tuning`): settings shared by its runs
    on top of the profile's (e.g. a pretrained model), its `partitions`, a `centralized` block for its reference and
    `methods`: name -> settings of one FedAvg variant (`peft`, `lora_r`, `freeze`, `client_lr`, ...)."""
    card.mapping(block, key, set(SETTINGS) - set(MAPPING_SETTINGS) | {"partitions", "centralized", "methods", "notes"})
    shared = {k: v for k, v in block.items() if k not in ("centralized", "methods", "notes")}
    out = check_settings(card, shared, key, allow_plan=False)
    if "notes" in block:
        out["notes"] = card.string(block["notes"], f"{key}.notes")
    if "more_seeds" in out:
        raise card.fail(f"{key}.more_seeds", "the tuning table runs the profile's seeds", f"remove {key}.more_seeds")
    out["centralized"] = check_settings(card, block.get("centralized") or {}, f"{key}.centralized", allow_plan=False)
    methods = block.get("methods")
    if not isinstance(methods, dict) or not methods:
        raise card.fail(f"{key}.methods", f"expected a mapping of method names to settings, got {methods!r}",
                        f"write {key}.methods: {{full: {{}}, lora: {{peft: lora, lora_r: 8}}}}")
    out["methods"] = {}
    for name, settings in methods.items():
        if not isinstance(name, str) or not METHOD_NAME_RE.match(name):
            raise card.fail(f"{key}.methods", f"method name {name!r} is not a short lower-case word",
                            "name methods like full, lora, bitfit, freeze_e02")
        checked = check_settings(card, settings or {}, f"{key}.methods.{name}", allow_plan=False)
        if {"partitions", "more_seeds"} & set(checked):
            raise card.fail(f"{key}.methods.{name}", "a method runs on the tuning block's partitions",
                            f"move partitions to {key}.partitions")
        out["methods"][name] = checked
    if {"peft", "freeze"} & set(out["centralized"]):
        raise card.fail(f"{key}.centralized", "the reference is full fine-tuning",
                        f"remove peft and freeze from {key}.centralized")
    return out


def parse_profiles(card, value: Any, family: str = "text_classification") -> dict[str, dict[str, Any]]:
    """The card's `profiles:` block, validated: {profile: {setting: value, algorithm: {...}, seeds, partitions}}."""
    if value is None:
        return {}
    blocks = card.mapping(value, "profiles", set(PROFILE_NAMES))
    out = {}
    for name, block in blocks.items():
        settings = check_settings(card, block or {}, f"profiles.{name}", allow_plan=True)
        for algo in (None,) + RUN_ALGORITHMS:
            merged = {**settings, **(settings.get(algo, {}) if algo else {})}
            if merged.get("clients_per_round", 0) > merged.get("clients", 10**9):
                where = f"profiles.{name}" + (f".{algo}" if algo else "")
                raise card.fail(f"{where}.clients_per_round", f"{merged['clients_per_round']} is more than clients "
                                f"({merged['clients']})", "sample at most as many clients per round as there are clients")
            if algo and "more_seeds" in settings.get(algo, {}):
                own = [parse_partition(p) for p in settings[algo].get("partitions", settings.get(
                    "partitions", DEFAULT_PARTITIONS[family]))]
                for p in settings[algo]["more_seeds"]:
                    if parse_partition(p) not in own:
                        raise card.fail(f"profiles.{name}.{algo}.more_seeds", f"partition {p!r} is not one of "
                                        f"{algo}'s partitions", "give more seeds only to partitions the algorithm runs")
        out[name] = settings
    return out


def has_profile(spec: TaskSpec, profile: str) -> bool:
    """Whether the card defines `profile` (`full` also comes from a card's FedNLP settings)."""
    return profile in spec.profiles or (profile == "full" and bool(spec.fednlp))


def profile_settings(spec: TaskSpec, profile: str, algorithm: str) -> dict[str, Any]:
    """The RunConfig settings of one algorithm's runs under `profile` (seeds and partitions excluded)."""
    if profile not in PROFILE_NAMES:
        raise UserError(f"unknown profile '{profile}'", f"choose one of: {', '.join(PROFILE_NAMES)}")
    if not has_profile(spec, profile):
        raise UserError(f"task '{spec.name}' has no {profile} profile",
                        f"add profiles.{profile} to its card ({spec.card or 'tasks/'}) or leave out --profile")
    block = spec.profiles.get(profile, {})
    out: dict[str, Any] = {"data_seed": DEFAULT_DATA_SEED}
    if profile == "full":
        paper = spec.fednlp.get(algorithm if algorithm != "centralized" else "fedavg", {})
        out.update(paper)
        if algorithm == "centralized" and paper:
            # FedNLP's centralized baselines fine-tuned with AdamW 5e-5 (its classification and NER runs).
            out.update(client_optimizer="adamw", client_lr=5e-5)
    out.update({k: v for k, v in block.items() if k in SETTINGS})
    out.update({k: v for k, v in block.get(algorithm, {}).items() if k in SETTINGS})
    return out


def tuning_block(spec: TaskSpec, profile: str) -> dict[str, Any] | None:
    """The profile's `tuning:` block (validated by check_tuning_block), or None."""
    return spec.profiles.get(profile, {}).get("tuning")


def tuning_settings(spec: TaskSpec, profile: str, method: str | None) -> dict[str, Any]:
    """The RunConfig settings of a tuning-table run: the profile's FedAvg settings (its centralized ones for the
    reference, method None), then the tuning block's shared settings, then the method's (or `centralized`) block."""
    block = tuning_block(spec, profile)
    if block is None:
        raise UserError(f"task '{spec.name}' has no tuning block in its {profile} profile",
                        f"add profiles.{profile}.tuning to its card ({spec.card or 'tasks/'})")
    out = profile_settings(spec, profile, "centralized" if method is None else "fedavg")
    out.update({k: v for k, v in block.items() if k in SETTINGS})
    out.update(block["centralized"] if method is None else block["methods"][method])
    return out


def more_seeds(spec: TaskSpec, profile: str, algorithm: str, partition: dict[str, Any]) -> list[int]:
    """The seeds an algorithm's block adds to one of its partitions (`more_seeds`), beyond the profile's seeds."""
    block = spec.profiles.get(profile, {}).get(algorithm, {})
    return [s for p, seeds in block.get("more_seeds", {}).items() if parse_partition(p) == partition for s in seeds]


def profile_plan(spec: TaskSpec, profile: str, algorithm: str | None = None) -> tuple[list[int], list[dict[str, Any]]]:
    """The seeds and partitions a reproduction runs for this task under `profile` (an algorithm's own
    `partitions` when its block names them)."""
    block = spec.profiles.get(profile, {})
    seeds = block.get("seeds", DEFAULT_SEEDS[profile])
    partitions = block.get("partitions", DEFAULT_PARTITIONS[spec.family])
    if algorithm is not None:
        partitions = block.get(algorithm, {}).get("partitions", partitions)
    return list(seeds), [parse_partition(p) for p in partitions]
