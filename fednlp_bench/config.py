"""Typed run configuration: defaults per algorithm, YAML loading, validation with clear errors, and the settings
key (a hash of what a run computes) that names its checkpoint and result."""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from .algorithms.registry import builtin_names
from .errors import UserError

ALGORITHMS = builtin_names()  # the built-in algorithms (algorithms/registry.py); plug-ins load by spec
ATTACKS = ("sign_flip", "scale", "noise")  # simulated attacking clients (fl/attacks.py)
PARTITIONS = ("uniform", "label", "quantity", "cluster", "natural")  # cluster = feature skew, natural = the data's own ids
PROFILES = ("smoke", "standard", "full")  # pipeline check, converged on 2 CPU cores, FedNLP's settings
CLIENT_OPTIMIZERS = ("sgd", "adamw")
SERVER_OPTIMIZERS = ("sgd", "adam", "yogi", "adagrad")
WEIGHTINGS = ("examples", "batches", "uniform")
BACKENDS = ("inprocess", "distributed")  # distributed: launched by torchrun, one process per GPU or CPU share
PRECISIONS = ("fp32", "bf16")
SELECTIONS = ("uniform", "activity", "power_of_choice")  # client selection (fl/selection.py)
# Settings that change where or how a run executes but not what it computes (left out of its checkpoint key).
EXECUTION_SETTINGS = ("output", "cache_dir", "device", "progress", "backend", "checkpoint_every", "checkpoint_dir",
                      "resume", "extra", "log_dir", "save_model")


# Settings added after runs were recorded and checkpointed: at these defaults they are left out of run_settings, so
# every earlier run keeps its settings key (its checkpoint resumes, its result keeps its file name).
LATER_SETTINGS = {"algorithm_args": {}, "attack": None, "attack_fraction": None, "attack_scale": None,
                  "local_train": None, "local_test": None, "peft": None, "lora_r": None, "lora_alpha": None,
                  "lora_dropout": None, "lora_targets": None, "virtual_tokens": None, "freeze": None,
                  "decoder_layers": None}


def run_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The settings of a run config (as a dict) that decide what it computes: all but EXECUTION_SETTINGS (and the
    LATER_SETTINGS at their defaults)."""
    return {k: v for k, v in config.items()
            if k not in EXECUTION_SETTINGS and not (k in LATER_SETTINGS and v == LATER_SETTINGS[k])}


def settings_key(config: dict[str, Any]) -> str:
    """Hash (16 hex digits) of run_settings(config): names a run's checkpoint folder and its result file."""
    blob = json.dumps(run_settings(config), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


TAG_SCHEMES = ("auto", "BIO", "IOB1", "IOBES")
# Settings read by one task family only: loading options, then the adapter's options.
LOAD_OPTIONS = {"sequence_tagging": ("tag_scheme",)}

# Early stopping of the converged centralized reference (--max-epochs): patience and held-out share.
DEFAULT_PATIENCE = 2
DEFAULT_VALIDATION_FRACTION = 0.1

# Client learning rates that make every algorithm learn (see README, "Learning rates").
DEFAULT_CLIENT_LR = {("sgd", True): 0.5, ("sgd", False): 0.05, ("adamw", True): 2e-3, ("adamw", False): 5e-5}


@dataclass
class RunConfig:
    """Everything that defines a run; the whole object is stored in the result JSON."""

    task: str = "demo"
    algorithm: str = "fedavg"  # a built-in (ALGORITHMS), module:Class, an installed plug-in's name, or centralized
    algorithm_args: dict[str, Any] = field(default_factory=dict)  # the algorithm's typed arguments (its Args)
    partition: str = "uniform"
    alpha: float | None = None
    beta: float | None = None
    clients: int = 10
    clients_per_round: int = 5
    rounds: int = 10
    local_epochs: int = 1
    batch_size: int = 32
    client_optimizer: str | None = None  # default: adamw for fedopt and the tiny model, else sgd
    client_lr: float | None = None  # default: DEFAULT_CLIENT_LR by optimizer and model
    mu: float | None = None  # FedProx proximal weight (default 0.1 for fedprox, 0 otherwise)
    server_optimizer: str = "sgd"
    server_lr: float = 1.0
    server_momentum: float | None = None  # default 0.9 for fedopt with sgd
    weighting: str = "examples"
    selection: str = "uniform"  # uniform | activity (p ~ examples) | power_of_choice (largest local loss of d)
    selection_candidates: int | None = None  # power_of_choice: candidates d (default 2 * clients_per_round)
    dp_clip: float | None = None  # client-level DP-FedAvg: clip each client's delta to this L2 norm (None: off)
    dp_noise_multiplier: float = 0.0  # noise std on the sum of clipped deltas = multiplier * clip
    dp_delta: float = 1e-5  # the delta of the reported (epsilon, delta)
    dp_sgd_clip: float | None = None  # example-level DP-SGD in local training: clip each example's gradient (None: off)
    dp_sgd_noise_multiplier: float = 0.0  # DP-SGD noise std on the sum of clipped per-example gradients / clip
    continual_rounds: int | None = None  # continual data: each client's examples arrive over rounds 1..this
    storage_cap: int | None = None  # continual data: a client keeps at most this many newest examples
    mia: bool = False  # after training, run the loss-threshold membership-inference attack on the final model
    attack: str | None = None  # simulated attacking clients: sign_flip | scale | noise (fl/attacks.py)
    attack_fraction: float | None = None  # share of the clients that attack (fixed for the run, seeded)
    attack_scale: float | None = None  # the attack's strength (default: sign_flip 1, scale 10, noise 1)
    epochs: float | None = None  # centralized only; default: the same passes over the data as the FL run
    max_epochs: int | None = None  # centralized only: train to convergence (early stopping on a validation split)
    patience: int | None = None  # early stopping: epochs without a better validation metric before stopping (2)
    validation_fraction: float | None = None  # early stopping: share of the training data held out (0.1)
    # Which parameters train (tuning.py): --peft lora|prefix|prompt|ia3|bitfit (None: all), its knobs, and
    # FedNLP's --freeze e,0,1 (embeddings and layers 0-1 frozen, full fine-tuning of the rest)
    peft: str | None = None
    lora_r: int | None = None  # LoRA rank (default 8)
    lora_alpha: float | None = None  # LoRA scaling alpha (default 16)
    lora_dropout: float | None = None  # dropout on LoRA's input (default 0.05)
    lora_targets: list[str] | None = None  # modules LoRA adapts (default: peft's for the model type)
    virtual_tokens: int | None = None  # prompt / prefix tuning: virtual tokens (default 20)
    freeze: str | None = None
    eval_every: int = 1
    seed: int = 42
    data_seed: int | None = None  # held-out split, subsets and partition (default: seed); fix it to vary training only
    profile: str | None = None  # smoke | full: the task card's settings for this profile (flags given win)
    model: str | None = None  # default: the task's
    max_length: int | None = None  # default: the task's
    dropout: float | None = None
    data_dir: str | None = None
    train_file: str | None = None
    test_file: str | None = None
    # Split files in the task's local data folder that replace the card's (data.local), e.g. a profile's larger
    # training file; file names, not paths, so the run's settings are the same on every machine.
    local_train: str | None = None
    local_test: str | None = None
    text_columns: list[str] | None = None
    label_column: str | None = None
    tag_scheme: str | None = None  # tagging: auto | BIO | IOB1 | IOBES (default auto: detected from the tags)
    doc_stride: int | None = None  # QA: overlap (tokens) between windows of a long context
    max_answer_length: int | None = None  # QA: longest answer span (tokens) the decoder considers
    n_best: int | None = None  # QA: start/end candidates searched per window
    num_beams: int | None = None  # seq2seq: 1 = greedy decoding
    max_new_tokens: int | None = None  # seq2seq: generation length at evaluation
    max_target_length: int | None = None  # seq2seq: target tokens kept for training
    source_prefix: str | None = None  # seq2seq: text put before every source (T5: "summarize: ")
    no_repeat_ngram_size: int | None = None  # seq2seq: forbid repeating any n-gram of this size in one output
    decoder_layers: int | None = None  # seq2seq, BERT-family warm start: keep the decoder's first N layers
    max_train: int | None = None
    max_test: int | None = None
    output: str = "runs"
    cache_dir: str | None = None
    device: str = "auto"
    progress: bool = True
    backend: str = "inprocess"  # inprocess | distributed (under torchrun)
    precision: str = "fp32"  # fp32 | bf16 (autocast of the training forward pass; meant for GPUs)
    compile: bool = False  # torch.compile the model for local training
    checkpoint_every: int = 0  # write a checkpoint every k rounds (0: only when stopped by SIGTERM)
    checkpoint_dir: str | None = None  # default: <output>/checkpoints/<run key>
    resume: bool = False  # continue from the latest checkpoint of this run, if there is one
    log_dir: str | None = None  # TensorBoard event files of the run's curve (tracking.py; the [tracking] extra)
    save_model: str | None = None  # save the final model in Hugging Face format (with tokenizer and model card) here
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def is_tiny(self) -> bool:
        return (self.model or "tiny") == "tiny"

    def resolved(self) -> "RunConfig":
        """A copy with every algorithm default filled in (what the result JSON records)."""
        from .tasks.registry import get_spec

        spec = get_spec(self.task)
        c = RunConfig(**{f.name: getattr(self, f.name) for f in fields(self)})
        c.model = c.model or spec.default_model
        c.max_length = c.max_length or spec.max_length
        if c.client_optimizer is None:
            # Plain SGD does not train a randomly initialised transformer (tried lr 0.05 to 5 on the demo):
            # the tiny model's clients use AdamW; pretrained models keep FedNLP's SGD for FedAvg/FedProx.
            c.client_optimizer = "adamw" if (c.algorithm == "fedopt" or c.is_tiny) else "sgd"
        if c.client_lr is None:
            c.client_lr = DEFAULT_CLIENT_LR[(c.client_optimizer, c.is_tiny)]
        if c.algorithm == "fedprox" and "mu" in c.algorithm_args:  # FedProx's mu is kept where --mu puts it
            c.algorithm_args = dict(c.algorithm_args)
            c.mu = float(c.algorithm_args.pop("mu"))
        if c.mu is None:
            c.mu = 0.1 if c.algorithm == "fedprox" else 0.0
        if c.algorithm != "centralized":  # the arguments that differ from the defaults, typed (a canonical form)
            from .algorithms.registry import load_algorithm, non_default_args, parse_args

            loaded = load_algorithm(c.algorithm)
            extra = {"mu": c.mu} if c.algorithm == "fedprox" else {}
            args = non_default_args(parse_args(loaded, {**c.algorithm_args, **extra}))
            c.algorithm_args = {k: v for k, v in args.items() if k not in extra}
        if c.peft is not None or c.freeze is not None:  # the method's knobs filled in, --freeze canonical
            from .tuning import DEFAULTS, KNOB_METHODS, canonical_freeze

            c.freeze = canonical_freeze(c.freeze)
            for key, default in DEFAULTS.items():
                if c.peft in KNOB_METHODS[key] and getattr(c, key) is None:
                    setattr(c, key, default)
        if c.server_momentum is None:
            c.server_momentum = 0.9 if (c.algorithm == "fedopt" and c.server_optimizer == "sgd") else 0.0
        if c.max_epochs is not None:
            c.patience = DEFAULT_PATIENCE if c.patience is None else c.patience
            c.validation_fraction = (DEFAULT_VALIDATION_FRACTION if c.validation_fraction is None
                                     else c.validation_fraction)
        return c

    def validate(self) -> None:
        """Checks that need no data; raises UserError naming the flag to fix."""
        from .tasks.registry import get_spec

        get_spec(self.task)
        choice = {
            "partition": (self.partition, PARTITIONS),
            "server-optimizer": (self.server_optimizer, SERVER_OPTIMIZERS),
            "weighting": (self.weighting, WEIGHTINGS),
            "backend": (self.backend, BACKENDS),
            "selection": (self.selection, SELECTIONS),
            "precision": (self.precision, PRECISIONS),
        }
        if self.profile is not None:
            choice["profile"] = (self.profile, PROFILES)
        if self.client_optimizer is not None:
            choice["client-optimizer"] = (self.client_optimizer, CLIENT_OPTIMIZERS)
        for flag, (value, allowed) in choice.items():
            if value not in allowed:
                raise UserError(f"unknown --{flag} '{value}'", f"choose one of: {', '.join(allowed)}")
        positive_ints = {"rounds": self.rounds, "clients": self.clients, "clients-per-round": self.clients_per_round,
                         "local-epochs": self.local_epochs, "batch-size": self.batch_size, "eval-every": self.eval_every}
        for flag, value in positive_ints.items():
            if not isinstance(value, int) or value < 1:
                raise UserError(f"--{flag} must be a positive integer (got {value})", f"pass --{flag} 1 or more")
        if self.clients_per_round > self.clients:
            raise UserError(
                f"--clients-per-round {self.clients_per_round} is more than --clients {self.clients}",
                "sample at most as many clients per round as there are clients",
            )
        for name, value in (("local_train", self.local_train), ("local_test", self.local_test)):
            if value is not None and (not isinstance(value, str) or not value or Path(value).name != value
                                      or value in (".", "..")):
                raise UserError(f"{name} must be a file name in the task's data folder (got {value!r})",
                                f"write {name}: train.json (no folder part); use --train-file for a file elsewhere")
        if self.partition in ("label", "cluster") and (self.alpha is None or not self.alpha > 0):
            raise UserError(f"{self.partition} skew needs alpha > 0 (got {self.alpha})",
                            "pass --alpha with a positive value such as 0.1")
        if self.partition == "quantity" and (self.beta is None or not self.beta > 0):
            raise UserError(f"quantity skew needs beta > 0 (got {self.beta})", "pass --beta with a positive value such as 5")
        for flag, value in {"client-lr": self.client_lr, "server-lr": self.server_lr, "epochs": self.epochs}.items():
            if value is not None and not value > 0:
                raise UserError(f"--{flag} must be > 0 (got {value})", f"pass a positive --{flag}")
        self._validate_early_stopping()
        if self.mu is not None and not self.mu >= 0:  # `not >=` also rejects nan
            raise UserError(f"--mu must be >= 0 (got {self.mu})", "pass --mu 0 or more")
        self._validate_algorithm()
        for flag, value in {"max-train": self.max_train, "max-test": self.max_test}.items():
            if value is not None and (not isinstance(value, int) or value < 1):
                raise UserError(f"--{flag} must be a positive integer (got {value})",
                                f"pass --{flag} 1 or more, or leave it out")
        for flag, value in {"doc-stride": self.doc_stride, "max-answer-length": self.max_answer_length,
                            "n-best": self.n_best, "num-beams": self.num_beams, "max-new-tokens": self.max_new_tokens,
                            "max-target-length": self.max_target_length,
                            "no-repeat-ngram-size": self.no_repeat_ngram_size,
                            "decoder-layers": self.decoder_layers}.items():
            if value is not None and (not isinstance(value, int) or value < 1):
                raise UserError(f"--{flag} must be a positive integer (got {value})", f"pass --{flag} 1 or more")
        if self.tag_scheme is not None and self.tag_scheme not in TAG_SCHEMES:
            raise UserError(f"unknown tag scheme '{self.tag_scheme}'", f"pass --tag-scheme {' | '.join(TAG_SCHEMES)}")
        if self.selection_candidates is not None and (not isinstance(self.selection_candidates, int)
                                                      or self.selection_candidates < self.clients_per_round):
            raise UserError(f"--selection-candidates must be at least --clients-per-round "
                            f"{self.clients_per_round} (got {self.selection_candidates})",
                            "pass a larger --selection-candidates, or leave it out (default 2x clients per round)")
        if self.dp_clip is not None:
            self._check_dp("dp-clip", self.dp_clip, "dp-noise-multiplier", self.dp_noise_multiplier)
            if self.selection != "uniform":
                raise UserError(f"DP accounting assumes uniform client sampling (got --selection {self.selection})",
                                "use --selection uniform with --dp-clip")
        self._validate_dp_sgd()
        from .tuning import KNOB_METHODS, check_tuning

        check_tuning(self.peft, get_spec(self.task).family, self.freeze, {k: getattr(self, k) for k in KNOB_METHODS})
        for flag, value in {"continual-rounds": self.continual_rounds, "storage-cap": self.storage_cap}.items():
            if value is not None and (not isinstance(value, int) or value < 1):
                raise UserError(f"--{flag} must be a positive integer (got {value})", f"pass --{flag} 1 or more")
        if self.storage_cap is not None and self.continual_rounds is None:
            raise UserError("--storage-cap applies to continual data only", "add --continual-rounds A")
        if not isinstance(self.checkpoint_every, int) or self.checkpoint_every < 0:
            raise UserError(f"--checkpoint-every must be 0 or a positive integer (got {self.checkpoint_every})",
                            "pass --checkpoint-every 1 or more, or 0 to checkpoint only on SIGTERM")
        if self.max_length is not None and self.max_length < 8:
            raise UserError(f"--max-length must be at least 8 (got {self.max_length})", "pass --max-length 64 or more")
        check_output_dir(self.output)
        if self.checkpoint_dir is not None:
            check_output_dir(self.checkpoint_dir, "--checkpoint-dir", "checkpoint folder")
        if self.cache_dir is not None:
            check_output_dir(self.cache_dir, "--cache-dir", "tokenization cache folder")
        if self.log_dir is not None:
            from .tracking import require_tensorboard

            require_tensorboard()
            check_output_dir(self.log_dir, "--log-dir", "TensorBoard log folder")
        if self.save_model is not None:
            from .saved_model import check_model_folder

            check_output_dir(self.save_model, "--save-model", "model folder")
            check_model_folder(self.save_model)

    def _validate_algorithm(self) -> None:
        """--algorithm, its arguments, FedProx's --mu and the attack; the algorithm is loaded (a plug-in imported)."""
        if not isinstance(self.algorithm_args, dict) or not all(isinstance(k, str) for k in self.algorithm_args):
            raise UserError("algorithm_args must be a mapping of argument names to values",
                            "write algorithm_args: {name: value} in the config, or --algorithm-arg name=value")
        if self.algorithm == "centralized":
            if self.algorithm_args:
                raise UserError("--algorithm-arg applies to federated runs only", "leave it out")
        else:
            from .algorithms.compat import refuse_incompatible
            from .algorithms.registry import load_algorithm, parse_args

            loaded = load_algorithm(self.algorithm)
            given = dict(self.algorithm_args)
            if self.algorithm == "fedprox" and "mu" in given:
                if self.mu is not None and float(given["mu"]) != self.mu:
                    raise UserError(f"--mu {self.mu} and --algorithm-arg mu={given['mu']} disagree", "pass one of them")
                given.pop("mu")
            elif self.algorithm != "fedprox" and self.mu:
                raise UserError(f"--mu is FedProx's proximal weight; --algorithm {self.algorithm} does not use it",
                                "leave out --mu, or pass --algorithm fedprox")
            parse_args(loaded, {**given, **({"mu": self.mu} if self.algorithm == "fedprox" and self.mu is not None
                                           else {})})
            refuse_incompatible(loaded.cls, loaded.spec, client_dp=self.dp_clip is not None,
                                example_dp=self.dp_sgd_clip is not None, weighting=self.weighting)
        if self.attack is None:
            if self.attack_fraction is not None or self.attack_scale is not None:
                raise UserError("--attack-fraction and --attack-scale need --attack",
                                "add --attack sign_flip|scale|noise")
            return
        if self.algorithm == "centralized":
            raise UserError("--attack simulates attacking clients of a federated run", "leave out --attack")
        if self.attack not in ATTACKS:
            raise UserError(f"unknown --attack '{self.attack}'", f"choose one of: {', '.join(ATTACKS)}")
        if self.attack_fraction is None or not 0 < self.attack_fraction < 1:
            raise UserError(f"--attack needs --attack-fraction in (0, 1) (got {self.attack_fraction})",
                            "pass e.g. --attack-fraction 0.3; leave out --attack for no attack")
        if self.attack_scale is not None and not (self.attack_scale > 0 and math.isfinite(self.attack_scale)):
            raise UserError(f"--attack-scale must be a positive number (got {self.attack_scale})",
                            "pass e.g. --attack-scale 10, or leave it out for the attack's default")

    def _validate_early_stopping(self) -> None:
        """--max-epochs / --patience / --validation-fraction: the converged centralized reference only."""
        given = {"max-epochs": self.max_epochs, "patience": self.patience,
                 "validation-fraction": self.validation_fraction}
        if self.max_epochs is None:
            extra = [flag for flag, value in given.items() if value is not None]
            if extra:
                raise UserError(f"--{extra[0]} applies to early stopping only", "add --max-epochs N")
            return
        if self.algorithm != "centralized":
            raise UserError("--max-epochs (early stopping) applies to the centralized baseline only",
                            "run `fednlp-bench centralized --max-epochs N`, or use --rounds for a federated run")
        if self.epochs is not None:
            raise UserError("--epochs (a fixed budget) and --max-epochs (early stopping) cannot be combined",
                            "pass one of them")
        for flag in ("max-epochs", "patience"):
            value = given[flag]
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise UserError(f"--{flag} must be a positive integer (got {value})", f"pass --{flag} 1 or more")
        frac = self.validation_fraction
        if frac is not None and not 0 < frac < 0.5:
            raise UserError(f"--validation-fraction must lie in (0, 0.5) (got {frac})", "pass e.g. 0.1")

    def _check_dp(self, clip_flag: str, clip: float, noise_flag: str, noise: float) -> None:
        """A DP mechanism's clip norm (> 0), noise multiplier (>= 0) and the shared --dp-delta (in (0, 1))."""
        if not clip > 0:
            raise UserError(f"--{clip_flag} must be > 0 (got {clip})", "pass a positive clip norm such as 1.0")
        if not noise >= 0:
            raise UserError(f"--{noise_flag} must be >= 0 (got {noise})",
                            "pass 0 (clipping only) or a positive multiplier such as 1.0")
        if not 0 < self.dp_delta < 1:
            raise UserError(f"--dp-delta must lie in (0, 1) (got {self.dp_delta})", "pass e.g. 1e-5")

    def _validate_dp_sgd(self) -> None:
        """Example-level DP-SGD settings (fl/dp_sgd.py)."""
        if self.dp_sgd_clip is None:
            if self.dp_sgd_noise_multiplier:
                raise UserError("--dp-sgd-noise-multiplier needs --dp-sgd-clip", "add --dp-sgd-clip, e.g. 1.0")
            return
        from .fl.dp_sgd import SUPPORTED_FAMILIES
        from .tasks.registry import get_spec

        self._check_dp("dp-sgd-clip", self.dp_sgd_clip, "dp-sgd-noise-multiplier", self.dp_sgd_noise_multiplier)
        if self.dp_clip is not None:
            raise UserError("--dp-clip (client level) and --dp-sgd-clip (example level) cannot be combined",
                            "pass one of them")
        if self.algorithm != "centralized" and self.selection != "uniform":
            raise UserError(f"DP-SGD accounting assumes uniform client selection (got --selection {self.selection})",
                            "use --selection uniform with --dp-sgd-clip")
        if self.compile:
            raise UserError("--compile cannot be combined with --dp-sgd-clip (per-example gradients use torch.func)",
                            "leave out --compile")
        family = get_spec(self.task).family
        if family not in SUPPORTED_FAMILIES:
            raise UserError(f"--dp-sgd-clip supports {', '.join(SUPPORTED_FAMILIES)} tasks, not {family}",
                            "use client-level --dp-clip for this task")


def check_output_dir(path: str, flag: str = "--output", what: str = "output folder") -> None:
    """Fail early (before any data is read or training starts) when files could not be written under `path`.

    Creates nothing: the folder itself is made when its first file is written. A folder that does not exist yet
    is checked through its nearest existing parent.
    """
    p = Path(path).expanduser()
    fix = f"pass {flag} with a folder you can write to"
    if p.exists() and not p.is_dir():
        raise UserError(f"{what} '{path}' is not writable (it is a file)", fix)
    existing = p
    while not existing.is_dir() and existing != existing.parent:
        if existing.exists() or existing.is_symlink():  # a file (or a dangling link) where a folder must be
            raise UserError(f"{what} '{path}' is not writable ({existing} is not a folder)", fix)
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{what} '{path}' is not writable (no write permission in {existing})", fix)
    try:  # permission bits do not tell about read-only file systems: try a temp file, removed at once
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise UserError(f"{what} '{path}' is not writable ({exc.strerror})", fix) from None


def load_yaml_config(path: str) -> dict[str, Any]:
    """Read a YAML mapping of RunConfig fields (dashes or underscores)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file not found: {path}", "check the path passed to --config")
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"config file {path} is not valid YAML ({str(exc).splitlines()[0]})", "fix the YAML syntax") from exc
    if not isinstance(raw, dict):
        raise UserError(f"config file {path} must hold a mapping of settings", "write `key: value` lines")
    known = {f.name: f.type for f in fields(RunConfig)}
    out = {}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        if name not in known:
            raise UserError(f"unknown setting '{key}' in {path}", "see `fednlp-bench run --help` for the settings")
        out[name] = _yaml_value(key, value, str(known[name]), path)
    return out


def _yaml_value(key: Any, value: Any, annotation: str, path: str) -> Any:
    """Check a YAML value against its RunConfig field type (argparse does this for flags)."""
    base = annotation.removesuffix(" | None")
    if value is None and annotation.endswith(" | None"):
        return value
    if base == "float" and isinstance(value, str):  # PyYAML reads 2e-3 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if base == "list[str]" and isinstance(value, str):
        value = [value]
    ok = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
          "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          "str": lambda v: isinstance(v, str), "bool": lambda v: isinstance(v, bool),
          "list[str]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
          "dict[str, Any]": lambda v: isinstance(v, dict)}.get(base, lambda v: True)
    if not ok(value):
        want = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
                "list[str]": "a list of strings", "dict[str, Any]": "a mapping"}.get(base, base)
        raise UserError(f"setting '{key}' in {path} must be {want} (got {value!r})", f"fix '{key}' in the config file")
    return float(value) if base == "float" else value
