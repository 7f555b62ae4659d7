"""Read and write FedNLP's HDF5 files: ``partition_index.h5`` and ``data.h5``.

Key layout (the same as the original FedNLP):

* ``partition_index.h5``: ``/<method>/n_clients`` (scalar), ``/<method>/alpha`` or
  ``/<method>/beta`` (scalar, when the method has one) and
  ``/<method>/partition_data/<client_id>/train`` and ``.../test`` (int64 global ids).
* ``data.h5``: attribute ``attributes`` = JSON string with ``index_list``,
  ``train_index_list``, ``test_index_list``, ``num_labels``, ``task_type`` and (classification
  and tagging) ``label_vocab``; groups ``X/<i>`` and ``Y/<i>``: one utf-8 string each
  (text_classification, seq2seq) or word and tag arrays (sequence_tagging); span_extraction
  has ``context_X/<i>``, ``question_X/<i>``, ``question_ids/<i>`` and ``Y/<i>`` = (start, end)
  character offsets of the first answer.

Global ids: FedNLP numbers train and test in one index space, train first. Train
example ``j`` has global id ``j`` and test example ``j`` has global id
``num_train + j``. A :class:`~fednlp_bench.partition.model.Partition` stores split-local
ids (both splits start at 0), so writing adds ``num_train`` to every test id and
reading subtracts it again. We also store ``num_train`` as an attribute of the method
group (an extra the original format ignores) so our own files read back exactly.

Method names may be spelled differently by different FedNLP versions
(``alpha=1`` vs ``alpha=1.0``, ``clients=100`` vs ``clients=100.0``);
:func:`same_method` compares names with numbers parsed as floats.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import UserError

PARTITION_FILE = "partition_index.h5"
DATA_FILE = "data.h5"
_READ_ERRORS = (OSError, RuntimeError, ValueError, TypeError, KeyError)


# ---------------------------------------------------------------- method names


def method_key(name: str) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """Canonical form of a FedNLP method name: (prefix, ((key, value), ...)).

    ``niid_label_clients=100_alpha=1`` -> ("niid_label", (("alpha", 1.0), ("clients", 100.0))).
    Values that parse as numbers become floats; underscores inside a value
    (``by=id_column``) are kept.
    """
    prefix: list[str] = []
    pairs: list[list[str]] = []
    for token in str(name).strip().split("_"):
        if "=" in token:
            key, value = token.split("=", 1)
            pairs.append([key.strip().lower(), value.strip()])
        elif pairs:
            pairs[-1][1] += "_" + token
        else:
            prefix.append(token.strip().lower())
    normal: list[tuple[str, Any]] = []
    for key, value in pairs:
        try:
            normal.append((key, float(value)))
        except ValueError:
            normal.append((key, value))
    return "_".join(prefix), tuple(sorted(normal, key=lambda kv: kv[0]))


def same_method(a: str, b: str) -> bool:
    """True when two FedNLP method names denote the same partition (numbers compared as floats)."""
    return a == b or method_key(a) == method_key(b)


def method_params(name: str) -> tuple[str, dict[str, Any]]:
    """Recover (Partition.method, params) from a FedNLP method name.

    niid_label -> label (alpha), niid_quantity -> quantity (beta), niid_cluster ->
    cluster (alpha), uniform -> uniform, natural -> natural (id_column).
    """
    prefix, pairs = method_key(name)
    values = dict(pairs)
    if prefix == "uniform":
        return "uniform", {}
    table = {"niid_label": ("label", "alpha"), "niid_quantity": ("quantity", "beta"),
             "niid_cluster": ("cluster", "alpha")}
    if prefix in table:
        method, param = table[prefix]
        params: dict[str, Any] = {}
        if isinstance(values.get(param), float):
            params[param] = values[param]
        return method, params
    if prefix == "natural":
        params = {}
        if "by" in values:
            params["id_column"] = str(values["by"])
        return "natural", params
    raise UserError(
        f"unknown FedNLP partition method {name!r}",
        "use a name like uniform, niid_label_clients=100_alpha=1.0 or niid_quantity_clients=100_beta=5.0",
    )


# ---------------------------------------------------------------- partition_index.h5


def _open(path: Path, mode: str = "r"):
    import h5py

    try:
        return h5py.File(path, mode)
    except _READ_ERRORS as exc:
        raise UserError(f"cannot read {path} as HDF5 ({exc})", "re-download or re-export the file") from exc


def write_partition_index(
    path: Path,
    name: str,
    train: Sequence[np.ndarray],
    test: Sequence[np.ndarray],
    num_train: int,
    params: dict[str, Any] | None = None,
) -> None:
    """Write one method group of partition_index.h5 (test ids shifted by num_train)."""
    import h5py

    params = params or {}
    with h5py.File(path, "w") as f:
        group = f.create_group(name)
        group.create_dataset("n_clients", data=np.int64(len(train)))
        for key in ("alpha", "beta"):
            if params.get(key) is not None:
                group.create_dataset(key, data=np.float64(params[key]))
        group.attrs["num_train"] = np.int64(num_train)
        data = group.create_group("partition_data")
        for c, (tr, te) in enumerate(zip(train, test)):
            client = data.create_group(str(c))
            client.create_dataset("train", data=np.asarray(tr, dtype=np.int64).reshape(-1))
            client.create_dataset("test", data=np.asarray(te, dtype=np.int64).reshape(-1) + int(num_train))


def list_methods(path: Path) -> list[str]:
    """Names of the method groups in a partition_index.h5."""
    with _open(path) as f:
        try:
            return sorted(f.keys())
        except _READ_ERRORS as exc:
            raise UserError(f"cannot read {path} as HDF5 ({exc})", "re-download or re-export the file") from exc


def _child(group: Any, key: str, path: Path) -> Any:
    if key not in group:
        raise UserError(
            f"{path} has no key {group.name.rstrip('/')}/{key}",
            "the file is not a complete FedNLP partition_index.h5; re-download or re-export it",
        )
    return group[key]


def read_partition_index(
    path: Path, method: str | None = None, num_train: int | None = None
) -> dict[str, Any]:
    """Read one method group of a partition_index.h5.

    Returns {"name", "train", "test", "n_clients", "alpha"/"beta" (when present),
    "num_train"} with split-local ids (test ids shifted back by num_train). num_train
    comes from the argument, the group's ``num_train`` attribute, a sibling data.h5,
    or, failing all, max(train id) + 1.
    """
    path = Path(path)
    with _open(path) as f:
        try:
            return _read_group(f, path, method, num_train)
        except UserError:
            raise
        except _READ_ERRORS as exc:
            raise UserError(f"cannot read {path} as HDF5 ({exc})", "re-download or re-export the file") from exc


def _select(names: list[str], method: str | None, path: Path) -> str:
    shown = ", ".join(names) if names else "(none)"
    if method is None:
        if len(names) == 1:
            return names[0]
        raise UserError(
            f"{path} holds {len(names)} partition methods: {shown}",
            "choose one with --method",
        )
    matches = [n for n in names if n == method] or [n for n in names if same_method(n, method)]
    if not matches:
        raise UserError(
            f"{path} has no partition method {method!r}; available: {shown}",
            "pass one of the available method names",
        )
    return matches[0]


def _read_group(f: Any, path: Path, method: str | None, num_train: int | None) -> dict[str, Any]:
    name = _select(sorted(f.keys()), method, path)
    group = f[name]
    n_clients = int(np.asarray(_child(group, "n_clients", path)[()]).reshape(-1)[0])
    parts = _child(group, "partition_data", path)
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for c in range(n_clients):
        client = _child(parts, str(c), path)
        train.append(np.asarray(_child(client, "train", path)[()], dtype=np.int64).reshape(-1))
        test.append(np.asarray(_child(client, "test", path)[()], dtype=np.int64).reshape(-1))
    out: dict[str, Any] = {"name": name, "n_clients": n_clients}
    for key in ("alpha", "beta"):
        if key in group:
            out[key] = float(np.asarray(group[key][()]).reshape(-1)[0])
    if num_train is None and "num_train" in group.attrs:
        num_train = int(group.attrs["num_train"])
    if num_train is None and (path.parent / DATA_FILE).is_file():
        num_train = len(read_data_h5(path.parent / DATA_FILE, texts=False)["train_index_list"])
    if num_train is None:
        num_train = int(max((int(t.max()) for t in train if t.size), default=-1)) + 1
    num_train = int(num_train)
    low = min((int(t.min()) for t in test if t.size), default=num_train)
    if low < num_train:
        raise UserError(
            f"{path}: test id {low} lies below the number of train examples ({num_train}); "
            "FedNLP test ids are offset by the train size",
            "pass the right num_train (the train split's size)",
        )
    out["train"] = train
    out["test"] = [t - num_train for t in test]
    out["num_train"] = num_train
    return out


# ---------------------------------------------------------------- data.h5


def write_data_h5(path: Path, data: Any) -> None:
    """Write a dataset as FedNLP's data.h5 (train then test, one index space), in its task type's layout.

    text_classification and seq2seq: X/<i>, Y/<i> strings; sequence_tagging: X/<i>, Y/<i> arrays of words and tags;
    span_extraction: context_X/<i>, question_X/<i>, Y/<i> = (char start, char end) of the first answer, question_ids/<i>.
    """
    import h5py

    task_type = getattr(data, "FEDNLP_TASK_TYPE", "text_classification")
    num_train, num_test = len(data.train_texts), len(data.test_texts)
    names = list(getattr(data, "tag_names", None) or data.label_names)
    attributes = {
        "index_list": list(range(num_train + num_test)),
        "train_index_list": list(range(num_train)),
        "test_index_list": list(range(num_train, num_train + num_test)),
        "num_labels": len(names),
        "task_type": task_type,
    }
    if task_type in ("text_classification", "sequence_tagging"):
        attributes["label_vocab"] = {n: i for i, n in enumerate(names)}
    dt = h5py.string_dtype(encoding="utf-8")

    def rows(field: str) -> list:
        return data.export_fields("train", range(num_train))[field] + data.export_fields("test", range(num_test))[field]

    with h5py.File(path, "w") as f:
        f.attrs["attributes"] = json.dumps(attributes)
        if task_type == "span_extraction":
            groups = {g: f.create_group(g) for g in ("context_X", "question_X", "Y", "question_ids")}
            for i, (ctx, q, qid, answers) in enumerate(zip(rows("context"), rows("question"), rows("id"),
                                                           rows("answers"))):
                first = answers[0]
                groups["context_X"].create_dataset(str(i), data=ctx, dtype=dt)
                groups["question_X"].create_dataset(str(i), data=q, dtype=dt)
                groups["question_ids"].create_dataset(str(i), data=qid, dtype=dt)
                groups["Y"].create_dataset(str(i), data=np.array(
                    [first["answer_start"], first["answer_start"] + len(first["text"])], dtype=np.int64))
            return
        x, y = f.create_group("X"), f.create_group("Y")
        if task_type == "sequence_tagging":
            pairs = zip(rows("tokens"), rows("tags"))
        elif task_type == "seq2seq":
            pairs = zip(rows("source"), rows("target"))
        else:
            labels = np.concatenate([np.asarray(data.train_labels), np.asarray(data.test_labels)]).astype(np.int64)
            pairs = zip(list(data.train_texts) + list(data.test_texts), (names[int(v)] for v in labels))
        for i, (xi, yi) in enumerate(pairs):
            x.create_dataset(str(i), data=xi, dtype=dt)
            y.create_dataset(str(i), data=yi, dtype=dt)


def _as_str(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return " ".join(_as_str(v) for v in value.reshape(-1))
    return str(value)


def _as_list(value: Any) -> list[str]:
    return [_as_str(v) for v in np.asarray(value).reshape(-1)]


def read_data_h5(path: Path, texts: bool = True) -> dict[str, Any]:
    """Read a data.h5: its attributes plus its groups as lists ordered by index_list (X and Y; for
    span_extraction context_X, question_X, question_ids and Y as (start, end) pairs; tagging X/Y as word lists)."""
    path = Path(path)
    with _open(path) as f:
        try:
            if "attributes" not in f.attrs:
                raise UserError(f"{path} has no attribute 'attributes'", "re-download or re-export the file")
            raw = f.attrs["attributes"]
            out: dict[str, Any] = dict(json.loads(_as_str(raw)))
            for key in ("index_list", "train_index_list", "test_index_list"):
                if key not in out:
                    raise UserError(f"{path} attributes have no key {key!r}", "re-download or re-export the file")
            if texts and out.get("task_type") == "span_extraction":
                for group in ("context_X", "question_X", "question_ids"):
                    g = _child(f, group, path)
                    out[group] = [_as_str(_child(g, str(i), path)[()]) for i in out["index_list"]]
                y = _child(f, "Y", path)
                out["Y"] = [tuple(int(v) for v in _child(y, str(i), path)[()]) for i in out["index_list"]]
            elif texts:
                x, y = _child(f, "X", path), _child(f, "Y", path)
                read = _as_list if out.get("task_type") == "sequence_tagging" else _as_str
                out["X"] = [read(_child(x, str(i), path)[()]) for i in out["index_list"]]
                out["Y"] = [read(_child(y, str(i), path)[()]) for i in out["index_list"]]
            return out
        except UserError:
            raise
        except (*_READ_ERRORS, json.JSONDecodeError) as exc:
            raise UserError(f"cannot read {path} as HDF5 ({exc})", "re-download or re-export the file") from exc

