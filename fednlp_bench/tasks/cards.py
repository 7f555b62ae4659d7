"""Task cards: one YAML file per task (top-level tasks/), loaded and strictly validated into a TaskSpec.

A card (see tasks/README.md for the full field list):

    name: sst2
    family: text_classification
    description: GLUE SST-2 sentiment, 2 classes
    data:
      hub: {name: glue, config: sst2, splits: [train, validation], text_columns: null}
      local: {folder: sst2, train: train.tsv, test: dev.tsv, layout: files}
    text_columns: [sentence]
    label_column: label
    default_model: tiny
    metric: accuracy
    max_length: 64
    fednlp: {fedavg: {...}, fedprox: {...}, fedopt: {...}}   # FedNLP's published settings (the full profile)
    profiles: {smoke: {...}, full: {...}}                      # run profiles (tasks/profiles.py)
    notes: free text

Where the built-in cards are: in a source checkout, the repository's top-level tasks/ folder; in an installed
wheel, fednlp_bench/task_cards/ (setup.py copies tasks/*.yaml there at build time).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ..config import CLIENT_OPTIMIZERS, SERVER_OPTIMIZERS
from ..errors import UserError
from .profiles import parse_profiles
from .spec import FAMILIES, FAMILY_METRIC, TaskSpec

CARD_SUFFIXES = (".yaml", ".yml")
LAYOUTS = ("files", "domains")
EMBEDDED = ("demo",)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

TOP_KEYS = {"name", "family", "description", "data", "text_columns", "label_column", "default_model", "metric",
            "max_length", "fednlp", "profiles", "notes"}
REQUIRED_TOP = ("name", "family", "description", "text_columns", "label_column", "metric")
DATA_KEYS = {"hub", "local", "embedded"}
HUB_KEYS = {"name", "config", "splits", "text_columns"}
LOCAL_KEYS = {"folder", "train", "test", "layout"}
FEDAVG_KEYS = ("client_optimizer", "client_lr", "rounds", "clients", "clients_per_round", "local_epochs",
               "batch_size")
ALGO_KEYS = {"fedavg": FEDAVG_KEYS, "fedprox": FEDAVG_KEYS + ("mu",),
             "fedopt": FEDAVG_KEYS + ("server_optimizer", "server_lr")}
INT_KEYS = {"rounds", "clients", "clients_per_round", "local_epochs", "batch_size"}
FLOAT_KEYS = {"client_lr", "mu", "server_lr"}


def builtin_cards_dir() -> Path:
    """The folder of the built-in cards: packaged copy (installed wheel) or the checkout's top-level tasks/."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "task_cards"
    if packaged.is_dir():
        return packaged
    return package.parent / "tasks"


def is_card_path(value: str) -> bool:
    return str(value).lower().endswith(CARD_SUFFIXES)


class _Card:
    """Typed reads of one card's keys; every failure is a UserError naming the file and the key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str, fix: str) -> UserError:
        where = f"task card {self.path}" + (f", key '{key}'" if key else "")
        return UserError(f"{where}: {problem}", fix)

    def mapping(self, value: Any, key: str, allowed: set[str] | tuple[str, ...]) -> dict:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping, got {_kind(value)}",
                            f"write {key or 'the card'} as 'key: value' lines ({', '.join(sorted(allowed))})")
        for k in value:
            if not isinstance(k, str) or k not in allowed:
                full = f"{key}.{k}" if key else str(k)
                raise self.fail(full, "unknown key", f"use only: {', '.join(sorted(allowed))}")
        return value

    def string(self, value: Any, key: str, optional: bool = False) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"expected a non-empty string, got {_kind(value)}", f"write {key}: some_text")
        return value

    def columns(self, value: Any, key: str, optional: bool = False) -> tuple[str, ...] | None:
        if value is None and optional:
            return None
        if (not isinstance(value, list) or not value
                or not all(isinstance(c, str) and c.strip() for c in value)):
            raise self.fail(key, f"expected a non-empty list of column names, got {_kind(value)}",
                            f"write {key}: [column] (a YAML list, even for one column)")
        return tuple(value)

    def choice(self, value: Any, key: str, allowed: tuple[str, ...]) -> str:
        if value not in allowed:
            raise self.fail(key, f"unknown value {value!r}", f"choose one of: {', '.join(allowed)}")
        return value

    def positive_int(self, value: Any, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.fail(key, f"expected a positive integer, got {value!r}", f"write {key}: 32 (a whole number > 0)")
        return value

    def number(self, value: Any, key: str, allow_zero: bool = False) -> float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (value >= 0 if allow_zero else value > 0)
        if not ok:
            bound = ">= 0" if allow_zero else "> 0"
            raise self.fail(key, f"expected a number {bound}, got {value!r}",
                            f"write {key}: 0.1 (YAML reads 5e-5 as text: write 5.0e-5)")
        return float(value)


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false", type(None): "nothing"}.get(
        type(value), type(value).__name__)


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"task card not found: {path}", "check the path, or pass a built-in task name "
                        "(see `fednlp-bench tasks`)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read task card {path}: {exc}", "pass a readable UTF-8 YAML file") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"task card {path} is not valid YAML{at}", "fix the YAML syntax (indentation, colons, quotes)") from None


def _fednlp(card: _Card, value: Any) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    blocks = card.mapping(value, "fednlp", set(ALGO_KEYS))
    out: dict[str, dict[str, Any]] = {}
    for algo, block in blocks.items():
        key = f"fednlp.{algo}"
        if block is None:
            continue
        expected = ALGO_KEYS[algo]
        card.mapping(block, key, expected)
        missing = [k for k in expected if k not in block]
        if missing:
            raise card.fail(f"{key}.{missing[0]}", "missing", f"give every one of: {', '.join(expected)}")
        vals: dict[str, Any] = {}
        for k in expected:
            v, full = block[k], f"{key}.{k}"
            if k in INT_KEYS:
                vals[k] = card.positive_int(v, full)
            elif k in FLOAT_KEYS:
                vals[k] = card.number(v, full, allow_zero=(k == "mu"))
            elif k == "client_optimizer":
                vals[k] = card.choice(v, full, CLIENT_OPTIMIZERS)
            else:
                vals[k] = card.choice(v, full, SERVER_OPTIMIZERS)
        if vals["clients_per_round"] > vals["clients"]:
            raise card.fail(f"{key}.clients_per_round", f"{vals['clients_per_round']} is more than clients "
                            f"({vals['clients']})", "sample at most as many clients per round as there are clients")
        out[algo] = vals
    return out


def card_to_spec(raw: Any, path: Path) -> TaskSpec:
    """Validate a parsed card (strictly) and build its TaskSpec."""
    card = _Card(path)
    top = card.mapping(raw, "", TOP_KEYS)
    for key in REQUIRED_TOP:
        if key not in top:
            raise card.fail(key, "missing", f"add '{key}:' to the card (see tasks/README.md)")
    name = card.string(top["name"], "name")
    if not NAME_RE.match(name):
        raise card.fail("name", f"{name!r} is not a task name", "use letters, digits, '_', '-' or '.', no spaces")
    family = card.choice(top["family"], "family", FAMILIES)
    metric = card.string(top["metric"], "metric")
    if metric != FAMILY_METRIC[family]:
        raise card.fail("metric", f"'{metric}' is not the primary metric of {family}",
                        f"write metric: {FAMILY_METRIC[family]}")
    description = card.string(top["description"], "description")
    text_columns = card.columns(top["text_columns"], "text_columns")
    # language modelling needs no label (a label column there only feeds label skew): `label_column: null`
    label_column = card.string(top.get("label_column"), "label_column", optional=family == "language_modeling")
    default_model = card.string(top.get("default_model", "tiny"), "default_model")
    max_length = card.positive_int(top.get("max_length", 128), "max_length")
    notes = card.string(top.get("notes"), "notes", optional=True) or ""

    data = top.get("data")
    data = {} if data is None else card.mapping(data, "data", DATA_KEYS)
    embedded = data.get("embedded")
    if embedded is not None:
        card.choice(embedded, "data.embedded", EMBEDDED)
    hub_name = hub_config = hub_text = None
    hub_splits: tuple[str, str] = ("train", "test")
    if data.get("hub") is not None:
        hub = card.mapping(data["hub"], "data.hub", HUB_KEYS)
        if "name" not in hub:
            raise card.fail("data.hub.name", "missing", "give the hub dataset name, e.g. name: ag_news")
        hub_name = card.string(hub["name"], "data.hub.name")
        hub_config = card.string(hub.get("config"), "data.hub.config", optional=True)
        splits = card.columns(hub.get("splits", ["train", "test"]), "data.hub.splits")
        if len(splits) != 2:
            raise card.fail("data.hub.splits", f"expected two splits, got {len(splits)}", "write splits: [train, test]")
        hub_splits = (splits[0], splits[1])
        hub_text = card.columns(hub.get("text_columns"), "data.hub.text_columns", optional=True)
    local_train = local_test = folder = None
    layout = "files"
    if data.get("local") is not None:
        local = card.mapping(data["local"], "data.local", LOCAL_KEYS)
        if "train" not in local:
            raise card.fail("data.local.train", "missing", "name the training file under the data folder")
        local_train = card.string(local["train"], "data.local.train")
        local_test = card.string(local.get("test"), "data.local.test", optional=True)
        folder = card.string(local.get("folder"), "data.local.folder", optional=True)
        layout = card.choice(local.get("layout", "files"), "data.local.layout", LAYOUTS)
    if family == "extractive_qa" and len(text_columns) != 2:
        raise card.fail("text_columns", f"extractive_qa needs 2 columns, got {len(text_columns)}",
                        "write text_columns: [question, context]")
    if family in ("sequence_tagging", "seq2seq") and len(text_columns) != 1:
        raise card.fail("text_columns", f"{family} needs 1 column, got {len(text_columns)}",
                        "write text_columns: [tokens] (tagging) or [source] (seq2seq)")
    return TaskSpec(
        name=name, family=family, description=description, text_columns=text_columns, label_column=label_column,
        hub_name=hub_name, hub_config=hub_config, hub_text_columns=hub_text, hub_splits=hub_splits,
        local_train=local_train, local_test=local_test, layout=layout, folder=folder,
        default_model=default_model, max_length=max_length, metric=metric, embedded=embedded,
        fednlp=_fednlp(card, top.get("fednlp")), profiles=parse_profiles(card, top.get("profiles"), family), notes=notes,
        card=str(path))


def load_card(path: str | Path) -> TaskSpec:
    """Read and validate one task card; any problem is a one-line UserError naming the file and the key."""
    path = Path(path)
    return card_to_spec(read_yaml(path), path)


def load_builtin_cards(folder: Path | None = None) -> dict[str, TaskSpec]:
    """Every card of the cards folder, by name (the file is named after the task: tasks/<name>.yaml)."""
    folder = folder or builtin_cards_dir()
    paths = sorted(p for p in folder.glob("*") if p.suffix in CARD_SUFFIXES)
    if not paths:
        raise UserError(f"no task cards found in {folder}", "reinstall fednlp-bench (the cards ship with the package)")
    specs: dict[str, TaskSpec] = {}
    for path in paths:
        spec = load_card(path)
        if spec.name != path.stem:
            raise UserError(f"task card {path}, key 'name': '{spec.name}' differs from the file name",
                            f"write name: {path.stem} (or rename the file to {spec.name}{path.suffix})")
        specs[spec.name] = spec
    return specs
