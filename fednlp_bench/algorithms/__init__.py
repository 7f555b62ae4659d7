"""FL algorithms on one public API (base.py, version API_VERSION): the built-ins and the loader of your own.

    from fednlp_bench.algorithms import Algorithm, Contribution

A built-in is named by --algorithm NAME (registry.BUILTIN); your class by --algorithm module:Class or, once its
package registers an entry point in the group `fednlp_bench.algorithms`, by its name. See docs/algorithms.md.
The names below are imported from base.py on first use, so that the registry (which config.py and the leaderboard
read) does not import torch.
"""
from __future__ import annotations

from typing import Any

__all__ = ["API_VERSION", "Algorithm", "AlgorithmError", "ClientContext", "ClientUpdates", "Contribution",
           "GatheredAggregator", "RunInfo", "ServerRound"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
