"""Built-in tasks (from the task cards), a task by name or card file, and loading a task's data through its family's
loaders (demo, your files, a local copy or the hub) with seeded subsets."""
from __future__ import annotations

import dataclasses
import os
from functools import lru_cache
from typing import Any, Callable
from pathlib import Path

import numpy as np

from ..data import demo_dataset, load_domains, load_hub, load_local
from ..errors import UserError
from .cards import builtin_cards_dir, is_card_path, load_builtin_cards, load_card
from .spec import COLUMN_ROLES, FAMILIES, FAMILY_METRIC, TaskSpec  # noqa: F401 (re-exported)

# The built-in tasks: one YAML card per task in the top-level tasks/ folder (packaged as fednlp_bench/task_cards/
# in a wheel), listed family by family.
TASKS: dict[str, TaskSpec] = dict(
    sorted(load_builtin_cards().items(), key=lambda kv: FAMILIES.index(kv[1].family)))


def shared_data_dir() -> Path | None:
    """FEDNLP_DATA_DIR, the root that holds one folder per task (sst2/, agnews/, ...)."""
    root = os.environ.get("FEDNLP_DATA_DIR")
    return Path(root) if root else None


def get_spec(name: str) -> TaskSpec:
    """A built-in task by name, or a user's own task card by path (a name ending in .yaml or .yml)."""
    if is_card_path(name):
        path = Path(name).expanduser()
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            stamp = None  # load_card reports the missing file
        return _cached_card(str(path.resolve()) if stamp is not None else str(path), stamp)
    if name not in TASKS:
        raise UserError(f"unknown task '{name}'", f"choose one of: {', '.join(TASKS)} (see `fednlp-bench tasks`), "
                        "or pass your own task card file (my_task.yaml)")
    return TASKS[name]


@lru_cache(maxsize=32)
def _cached_card(path: str, stamp: int | None) -> TaskSpec:
    return load_card(path)


def subsample(data, max_train: int | None, max_test: int | None, seed: int):
    """Seeded subsets of each split (for quick runs); the fingerprint follows the subset."""
    if not max_train and not max_test:
        return data
    rng = np.random.default_rng([seed, 0xDA7A])

    def pick(n: int, cap: int | None) -> np.ndarray:
        return np.sort(rng.permutation(n)[:cap]) if cap and cap < n else np.arange(n)

    return data.subset(pick(len(data.train_texts), max_train), pick(len(data.test_texts), max_test))


def family_loaders(family: str) -> tuple[Callable, Callable]:
    """(local-files loader, hub loader) of a task family, with one signature for all families."""
    if family == "text_classification":
        def local(train, test, cols, label, *, test_fraction, seed, name, **_):
            return load_local(train, test, cols, label, test_fraction=test_fraction, seed=seed, name=name)

        def hub(hub_name, config, cols, label, *, train_split, test_split, name, **_):
            return load_hub(hub_name, cols, label, train_split=train_split, test_split=test_split, config_name=config)

        return local, hub
    if family == "sequence_tagging":
        from ..data import tagging as mod
    elif family == "extractive_qa":
        from ..data import qa as mod
    elif family == "seq2seq":
        from ..data import seq2seq as mod
    elif family == "language_modeling":
        from ..data import lm as mod
    else:
        raise UserError(f"unknown task family '{family}'", f"choose one of: {', '.join(FAMILIES)}")
    return mod.LOCAL_LOADER, mod.HUB_LOADER


def load_task_data(
    name: str,
    data_dir: str | None = None,
    train_file: str | None = None,
    test_file: str | None = None,
    text_columns: list[str] | None = None,
    label_column: str | None = None,
    seed: int = 42,
    test_fraction: float = 0.2,
    demo_size: tuple[int, int] = (4000, 1000),
    local_train: str | None = None,
    local_test: str | None = None,
    **options: Any,
):
    """Load a task's data: the embedded demo, your files, a local copy (--data-dir / FEDNLP_DATA_DIR) or the hub.

    The result is the family's data class (TextClassificationData for classification); `options` are the
    family's loading options (e.g. tag_scheme for tagging). `local_train` / `local_test` name other files of the
    local folder than the card's (a profile's split files); they need the local copy.
    """
    spec = get_spec(name)
    if (local_train or local_test) and not train_file:
        if spec.layout != "files" or spec.local_train is None:
            raise UserError(f"task '{spec.name}' has no local file layout to take {local_train or local_test} from",
                            "leave out local_train / local_test, or pass --train-file")
        root = shared_data_dir()
        if not data_dir and root is None:
            raise UserError(f"task '{spec.name}' reads {local_train or local_test} from its local data folder, and "
                            "none is set", "pass --data-dir with a local copy (or set FEDNLP_DATA_DIR)")
        spec = dataclasses.replace(spec, local_train=local_train or spec.local_train,
                                   local_test=local_test if local_test else (None if local_train else spec.local_test))
    cols = list(text_columns) if text_columns else list(spec.text_columns)
    label = label_column or spec.label_column
    if spec.embedded == "demo" and not train_file:
        return demo_dataset(num_train=demo_size[0], num_test=demo_size[1], seed=0)
    local, hub = family_loaders(spec.family)
    kw = dict(test_fraction=test_fraction, seed=seed, name=spec.name, **options)
    if train_file:
        return local(train_file, test_file, cols, label, **kw)
    if spec.local_train is None and spec.hub_name is None:
        raise UserError(f"task '{spec.name}' needs data files", "pass --train-file (and --test-file) with your data")
    root = shared_data_dir()
    folder = Path(data_dir) if data_dir else (root / (spec.folder or spec.name) if root and spec.local_train else None)
    if folder is not None and spec.layout == "domains":
        return load_domains(str(folder), cols, label, spec.local_train, spec.local_test, name=spec.name)
    if folder is not None:
        if spec.local_train is None:
            raise UserError(f"task '{spec.name}' has no local file layout", "pass --train-file (and --test-file) instead of --data-dir")
        if not folder.is_dir():
            raise UserError(f"data folder not found: {folder}", f"point --data-dir at the folder holding {spec.local_train}")
        test = str(folder / spec.local_test) if spec.local_test else None
        return local(str(folder / spec.local_train), test, cols, label, **kw)
    if spec.hub_name is None:
        raise UserError(f"task '{spec.name}' has no hub source", "pass --data-dir with a local copy (or set FEDNLP_DATA_DIR)")
    hub_cols = list(text_columns) if text_columns else list(spec.hub_text_columns or spec.text_columns)
    return hub(spec.hub_name, spec.hub_config, hub_cols, label, train_split=spec.hub_splits[0],
               test_split=spec.hub_splits[1], name=spec.name, **options)
