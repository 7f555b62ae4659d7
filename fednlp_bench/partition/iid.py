"""Uniform (IID) partition: shuffle the ids and cut them into equal chunks."""

from __future__ import annotations

import numpy as np

from ._checks import check_clients, check_seed


def uniform_partition(num_examples: int, num_clients: int, seed: int) -> list[np.ndarray]:
    """Shuffle ids 0..N-1 and cut them into chunks of ceil(N/C), as FedNLP does.

    FedNLP's ceil-sized chunks leave trailing clients empty when C does not divide
    N nicely (e.g. N=10, C=6 gives 2,2,2,2,2,0). We never return an empty client:
    in that case we fall back to a balanced cut (sizes differ by at most one, the
    larger clients first, like np.array_split). Whenever the ceil cut fills every
    client it is used unchanged, so results match FedNLP's chunk sizes.
    Each client's ids are returned sorted, as int64.
    """
    num_clients = check_clients(int(num_examples), num_clients)
    rng = np.random.default_rng(check_seed(seed))
    perm = rng.permutation(int(num_examples)).astype(np.int64)
    chunk = -(-int(num_examples) // num_clients)  # ceil(N / C)
    if (num_clients - 1) * chunk < num_examples:  # the ceil cut leaves no client empty
        cuts = np.arange(1, num_clients) * chunk
    else:
        base, extra = divmod(int(num_examples), num_clients)
        sizes = np.full(num_clients, base, dtype=np.int64)
        sizes[:extra] += 1
        cuts = np.cumsum(sizes)[:-1]
    return [np.sort(part) for part in np.split(perm, cuts)]
