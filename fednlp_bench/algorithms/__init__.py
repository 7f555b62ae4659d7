"""FL algorithms on one public API (base.py, version API_VERSION): the built-ins and the loader of your own.

    from fednlp_bench.algorithms import Algorithm, Contribution

A built-in is named by --algorithm NAME (registry.BUILTIN); your class by --algorithm module:Class or, once its
package registers an entry point in the group `fednlp_bench.algorithms`, by its name. See docs/algorithms.md.
"""
from .base import (API_VERSION, Algorithm, AlgorithmError, ClientContext, ClientUpdates, Contribution, RunInfo,
                   ServerRound)

__all__ = ["API_VERSION", "Algorithm", "AlgorithmError", "ClientContext", "ClientUpdates", "Contribution", "RunInfo",
           "ServerRound"]
