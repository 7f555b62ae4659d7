"""Which parameters a run trains: full fine-tuning, parameter-efficient methods (LoRA, prompt and prefix tuning and
IA3 from the peft library; BitFit: biases and the task head) and FedNLP's layer freezing (`--freeze e,0,1`).

Only the trainable parameters enter the flat vector (fl/params.py): they are what clients train and upload, what
the server aggregates and what checkpoints hold. The frozen base is rebuilt from the same seed and weights on every
rank and after a resume; `frozen_digest` fingerprints it so that a run can check it is the same.
"""
from __future__ import annotations

import contextlib
import hashlib
import re
import warnings
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from .errors import UserError

if TYPE_CHECKING:  # torch is imported where it is used, so the leaderboard can read DEFAULTS without it
    import torch

PEFT_METHODS = ("lora", "prefix", "prompt", "ia3", "bitfit")
FROM_PEFT = ("lora", "prefix", "prompt", "ia3")  # the methods the peft library implements
# Prompt and prefix tuning prepend virtual tokens: peft keeps the outputs aligned for sequence classification
# (one output per example); per-token outputs (tags, answer spans, generated or predicted tokens) would shift.
PROMPT_FAMILIES = ("text_classification",)
PEFT_TASK_TYPES = {"text_classification": "SEQ_CLS", "sequence_tagging": "TOKEN_CLS", "extractive_qa": "QUESTION_ANS",
                   "seq2seq": "SEQ_2_SEQ_LM", "language_modeling": "CAUSAL_LM"}
HEAD_NAMES = ("classifier", "score", "qa_outputs", "lm_head")  # task heads, trained by BitFit and freezing
EMBEDDING_NAMES = ("embeddings", "wte", "wpe", "embed_tokens", "embed_positions", "shared", "layernorm_embedding")
LAYER_LISTS = ("layer", "layers", "h", "block")  # the ModuleList that holds a stack's transformer layers
KNOB_METHODS = {"lora_r": ("lora",), "lora_alpha": ("lora",), "lora_dropout": ("lora",), "lora_targets": ("lora",),
                "virtual_tokens": ("prompt", "prefix")}  # the method(s) each knob belongs to
# LoRA's usual attention projections, by the name the model gives them (for models peft has no default for)
LORA_FALLBACK_TARGETS = (("query", "value"), ("q_proj", "v_proj"), ("c_attn",), ("q", "v"))
FREEZE_TOKEN = re.compile(r"^(e|embeddings|\d+|\d+-\d+)$")


@dataclass(frozen=True)
class Tuning:
    """The trainable part of a run's model: `method` None is full fine-tuning (with `freeze`, FedNLP's freezing)."""

    method: str | None = None
    lora_r: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] | None = None  # None: peft's default for the model type
    virtual_tokens: int = 20
    freeze: str | None = None  # canonical "e,0,1,2": embeddings and layers 0-2 frozen

    @property
    def active(self) -> bool:
        return self.method is not None or self.freeze is not None

    def record(self) -> dict[str, Any]:
        """What the result records of the method's settings (only those the method uses)."""
        out: dict[str, Any] = {"method": self.method or "full", "freeze": self.freeze}
        if self.method == "lora":
            out.update(lora_r=self.lora_r, lora_alpha=self.lora_alpha, lora_dropout=self.lora_dropout,
                       lora_targets=list(self.lora_targets) if self.lora_targets else None)
        if self.method in ("prompt", "prefix"):
            out["virtual_tokens"] = self.virtual_tokens
        return out


# The knobs' defaults (lora_r 8, lora_alpha 16.0, lora_dropout 0.05, virtual_tokens 20): Tuning's own
DEFAULTS = {f.name: f.default for f in fields(Tuning) if f.name in KNOB_METHODS and f.default is not None}


def parse_freeze(text: str) -> tuple[bool, list[int]]:
    """`e,0,1` / `embeddings,0-2` / `0-2` -> (freeze embeddings, sorted layer indices); raises UserError."""
    tokens = [t.strip() for t in str(text).split(",") if t.strip()]
    bad = [t for t in tokens if not FREEZE_TOKEN.match(t)]
    if not tokens or bad:
        raise UserError(f"--freeze '{text}' is not a list of e (embeddings), layer indices and ranges",
                        "write e.g. --freeze e (embeddings), --freeze e,0,1,2 or --freeze e,0-2")
    layers: set[int] = set()
    for t in tokens:
        if "-" in t:
            lo, hi = (int(x) for x in t.split("-"))
            if lo > hi:
                raise UserError(f"--freeze range '{t}' runs backwards", f"write {hi}-{lo}")
            layers.update(range(lo, hi + 1))
        elif t.isdigit():
            layers.add(int(t))
    return any(t in ("e", "embeddings") for t in tokens), sorted(layers)


def canonical_freeze(text: str | None) -> str | None:
    """The canonical form of a --freeze value ("e,0,1,2"), so that equal choices give equal settings keys."""
    if text is None:
        return None
    embeddings, layers = parse_freeze(text)
    return ",".join((["e"] if embeddings else []) + [str(i) for i in layers])


def check_tuning(method: str | None, family: str, freeze: str | None, given: dict[str, Any]) -> None:
    """Refusals that need no model: unknown method, knobs of another method, combinations that cannot work."""
    if method is not None and method not in PEFT_METHODS:
        raise UserError(f"unknown --peft '{method}'", f"choose one of: {', '.join(PEFT_METHODS)}")
    for key, value in given.items():
        methods = KNOB_METHODS[key]
        if value is not None and method not in methods:
            flag = "--" + key.replace("_", "-")
            raise UserError(f"{flag} applies to --peft {' / '.join(methods)} only (got --peft {method or 'none'})",
                            f"leave out {flag}, or pass --peft {methods[0]}")
    for key in ("lora_r", "virtual_tokens"):
        value = given.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise UserError(f"--{key.replace('_', '-')} must be a positive integer (got {value})",
                            f"pass --{key.replace('_', '-')} 1 or more")
    alpha, dropout = given.get("lora_alpha"), given.get("lora_dropout")
    if alpha is not None and not alpha > 0:
        raise UserError(f"--lora-alpha must be > 0 (got {alpha})", "pass e.g. --lora-alpha 16")
    if dropout is not None and not 0 <= dropout < 1:
        raise UserError(f"--lora-dropout must lie in [0, 1) (got {dropout})", "pass e.g. --lora-dropout 0.05")
    if method in ("prompt", "prefix") and family not in PROMPT_FAMILIES:
        raise UserError(f"--peft {method} supports {', '.join(PROMPT_FAMILIES)} tasks, not {family} (its virtual "
                        f"tokens would shift the per-token outputs)", "use --peft lora, ia3 or bitfit for this task")
    if freeze is not None:
        parse_freeze(freeze)
        if method in FROM_PEFT:
            raise UserError(f"--freeze is FedNLP's freezing for full fine-tuning; --peft {method} already trains "
                            f"only its own parameters", "leave out --freeze, or leave out --peft (or use --peft bitfit)")


def head_parameter(name: str) -> bool:
    """Whether a parameter (by its name in the model) belongs to the task head."""
    return any(part in HEAD_NAMES for part in name.split("."))


def layer_index(name: str) -> int | None:
    """The index of the transformer layer a parameter lies in (encoder.layer.3.* -> 3), or None."""
    parts = name.split(".")
    for i in range(len(parts) - 1):
        if parts[i] in LAYER_LISTS and parts[i + 1].isdigit():
            return int(parts[i + 1])
    return None


def embedding_parameter(name: str) -> bool:
    return any(part in EMBEDDING_NAMES for part in name.split("."))


def apply_freeze(model: torch.nn.Module, freeze: str) -> None:
    """FedNLP's freezing: the embeddings (`e`) and the listed layers (in every stack: encoder and decoder) stop
    training; the rest, the task head included, trains."""
    embeddings, layers = parse_freeze(freeze)
    found = {i for i in (layer_index(n) for n, _ in model.named_parameters()) if i is not None}
    missing = [i for i in layers if i not in found]
    if missing:
        raise UserError(f"--freeze names layer {missing[0]}, but the model has layers 0-{max(found) if found else -1}",
                        "pass layer indices the model has")
    for name, p in model.named_parameters():
        if head_parameter(name):
            continue
        if (embeddings and embedding_parameter(name)) or layer_index(name) in layers:
            p.requires_grad_(False)


def apply_bitfit(model: torch.nn.Module) -> None:
    """BitFit (Ben Zaken et al. 2022): only the bias terms and the task head train."""
    for name, p in model.named_parameters():
        p.requires_grad_(head_parameter(name) or name.endswith("bias"))


def lora_targets(model: torch.nn.Module, given: tuple[str, ...] | None) -> list[str] | None:
    """LoRA's target modules: the ones given, peft's default for the model type, else the attention projections
    found by name (e.g. a bert2bert encoder-decoder); None lets peft choose."""
    if given:
        return list(given)
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULT

    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type in DEFAULT:
        return None
    leaves = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    for names in LORA_FALLBACK_TARGETS:
        if all(n in leaves for n in names):
            return list(names)
    raise UserError(f"LoRA has no default target modules for this model (type {model_type})",
                    "name them with --lora-targets, e.g. --lora-targets query value")


def peft_config(tuning: Tuning, family: str, model: torch.nn.Module):
    """The peft config of a method from the peft library."""
    import peft

    task_type = PEFT_TASK_TYPES[family]
    if tuning.method == "lora":
        fan_in_fan_out = getattr(getattr(model, "config", None), "model_type", None) == "gpt2"  # Conv1D weights
        return peft.LoraConfig(task_type=task_type, r=tuning.lora_r, lora_alpha=tuning.lora_alpha,
                               lora_dropout=tuning.lora_dropout, target_modules=lora_targets(model, tuning.lora_targets),
                               fan_in_fan_out=fan_in_fan_out)
    if tuning.method == "ia3":
        return peft.IA3Config(task_type=task_type)
    if tuning.method == "prompt":
        return peft.PromptTuningConfig(task_type=task_type, num_virtual_tokens=tuning.virtual_tokens)
    return peft.PrefixTuningConfig(task_type=task_type, num_virtual_tokens=tuning.virtual_tokens)


@contextlib.contextmanager
def quiet_peft():
    """Hide a deprecation warning peft triggers inside transformers (is_gradient_checkpointing), not ours to fix."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def check_positions(model: torch.nn.Module, virtual_tokens: int, max_length: int | None) -> None:
    """Prompt tuning puts its virtual tokens before the text: together they must fit the model's positions."""
    positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if positions is not None and max_length is not None and virtual_tokens + max_length > positions:
        raise UserError(f"--virtual-tokens {virtual_tokens} and --max-length {max_length} need "
                        f"{virtual_tokens + max_length} positions; the model has {positions}",
                        f"lower --max-length to {positions - virtual_tokens} or fewer, or --virtual-tokens")


def apply_tuning(model: torch.nn.Module, tuning: Tuning, family: str, seed: int,
                 max_length: int | None = None) -> torch.nn.Module:
    """The model with the run's tuning applied (a peft model for the peft methods); seeded, so every rank and every
    resume builds the same new parameters."""
    if tuning.method == "bitfit":
        apply_bitfit(model)
    if tuning.freeze is not None:
        apply_freeze(model, tuning.freeze)
    if tuning.method not in FROM_PEFT:
        return model
    try:
        import peft
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise UserError(f"--peft {tuning.method} needs the peft library", "pip install 'fednlp-bench[peft]'") from exc
    if tuning.method in ("prompt", "prefix"):
        check_positions(model, tuning.virtual_tokens, max_length)
    import torch

    torch.manual_seed(seed + 0x9EF7)
    try:
        with quiet_peft():
            return peft.get_peft_model(model, peft_config(tuning, family, model))
    except (ValueError, TypeError, KeyError) as exc:
        first = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise UserError(f"peft cannot apply --peft {tuning.method} to this model ({first})",
                        "choose another --peft method (lora works on every family)") from None


def parameter_counts(model: torch.nn.Module) -> dict[str, int]:
    """Trainable and total parameters (each tensor once)."""
    params = list(model.parameters())
    return {"trainable_parameters": sum(p.numel() for p in params if p.requires_grad),
            "total_parameters": sum(p.numel() for p in params)}


def frozen_digest(model: torch.nn.Module) -> str:
    """A hash (16 hex digits) of every frozen parameter, names and values: equal on every rank and after a resume."""
    import torch

    h = hashlib.sha256()
    for name, p in model.named_parameters():
        if not p.requires_grad:
            h.update(name.encode())
            h.update(p.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def tuning_from(settings: dict[str, Any]) -> Tuning:
    """A Tuning from RunConfig fields (peft, lora_r, ..., freeze); a knob left at None takes its default."""
    targets = settings.get("lora_targets")
    return Tuning(method=settings.get("peft"), freeze=canonical_freeze(settings.get("freeze")),
                  lora_targets=tuple(targets) if targets else None,
                  **{k: settings[k] for k in DEFAULTS if settings.get(k) is not None})
