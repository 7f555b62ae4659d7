"""A stable fingerprint of a partition, to check that two runs used the same split."""

from __future__ import annotations

import hashlib

import numpy as np


def partition_digest(parts: list[np.ndarray]) -> str:
    """Return the sha256 hex digest of a partition.

    Encoding (all little-endian int64): the client count, then for each client in
    order its length followed by its ids sorted ascending. So the order of ids
    inside a client does not matter, but the order of the clients does.
    """
    h = hashlib.sha256()
    h.update(np.array([len(parts)], dtype="<i8").tobytes())
    for part in parts:
        ids = np.sort(np.asarray(part).reshape(-1)).astype("<i8")
        h.update(np.array([ids.size], dtype="<i8").tobytes())
        h.update(ids.tobytes())
    return h.hexdigest()
