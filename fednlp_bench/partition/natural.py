"""Natural partition: one client per value of an id column (user, author, domain; FedNLP's MRQA)."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from fednlp_bench.errors import UserError

from ._checks import check_seed

MERGED = "__merged__"


def _check_count(name: str, value: object, minimum: int, example: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise UserError(f"{name} must be an integer >= {minimum} (got {value!r})", f"pass e.g. {name}={example}")
    return int(value)


def _id_names(ids: np.ndarray | list) -> np.ndarray:
    """The ids as a 1-D array of str; missing values (None, NaN, empty strings) are an error."""
    arr = np.asarray(ids, dtype=object)
    if arr.ndim != 1:
        raise UserError(f"client ids must be a 1-D list (got shape {arr.shape})", "pass one id per example")
    if arr.size == 0:
        raise UserError("no examples to partition by id", "pass a non-empty id column")
    names = arr.astype(str)
    missing = pd.isna(arr) | (np.char.str_len(np.char.strip(names)) == 0)
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        raise UserError(
            f"{int(missing.sum())} of {arr.size} examples have no client id (first at row {first})",
            "fill in the id column or drop those rows",
        )
    return names


def natural_partition(
    ids: np.ndarray | list,
    max_clients: int | None = None,
    min_size: int = 1,
    merge_small: bool = False,
    seed: int = 0,
) -> tuple[list[np.ndarray], list[str]]:
    """One client per distinct id value; returns (parts, client_names).

    Clients are ordered by size (descending), ties by name; each part holds the
    sorted int64 row numbers of that id, and names are the ids as strings.
    An id is *small* if it has fewer than `min_size` examples or is not among the
    `max_clients` largest. Small ids are dropped (their examples are left out of
    every client), unless `merge_small=True`: then they are pooled into one last
    client named "__merged__", and `max_clients` counts that client (at most
    `max_clients` clients are returned either way). The result does not depend
    on `seed` (kept for the common partitioner signature). Raises UserError on
    empty input, missing ids, or when no client is left.
    """
    names = _id_names(ids)
    min_size = _check_count("min_size", min_size, 1, "1")
    if max_clients is not None:
        max_clients = _check_count("max_clients", max_clients, 1, "100")
    check_seed(seed)

    uniq, inverse, counts = np.unique(names, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    if merge_small and MERGED in uniq:
        raise UserError(f"the id {MERGED!r} is reserved for merged small clients", "rename that id")
    order = np.lexsort((uniq, -counts))  # size descending, then name
    eligible = order[counts[order] >= min_size]
    limit = len(eligible) if max_clients is None else max_clients
    has_small = len(eligible) < len(uniq) or len(eligible) > limit
    keep = eligible[:limit]
    if merge_small and has_small and max_clients is not None and len(keep) >= max_clients:
        keep = keep[: max_clients - 1]  # leave room for the merged client

    # Row lists per id in one pass: stable sort rows by id index, split at id boundaries.
    rows_by_id = np.argsort(inverse, kind="stable").astype(np.int64)
    per_id = np.split(rows_by_id, np.cumsum(counts)[:-1])
    parts = [per_id[i] for i in keep]
    client_names = [str(uniq[i]) for i in keep]
    if merge_small and has_small:
        small = np.ones(len(uniq), dtype=bool)
        small[keep] = False
        parts.append(np.flatnonzero(small[inverse]).astype(np.int64))
        client_names.append(MERGED)
    if not parts:
        raise UserError(
            f"no id has at least min_size={min_size} examples (largest has {int(counts.max())})",
            "lower min_size or pass merge_small=True",
        )
    return parts, client_names
