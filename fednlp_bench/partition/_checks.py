"""Input checks shared by the partitioners; every failure is a UserError naming the fix."""

from __future__ import annotations

import math
import numbers

from fednlp_bench.errors import UserError


def check_clients(num_examples: int, num_clients: object) -> int:
    """Return num_clients as an int, or raise if it is not a usable client count for N examples."""
    if isinstance(num_clients, bool) or not isinstance(num_clients, numbers.Integral):
        if isinstance(num_clients, numbers.Real) and float(num_clients).is_integer():
            num_clients = int(num_clients)
        else:
            raise UserError(
                f"num_clients must be a whole number (got {num_clients!r})",
                "pass --num-clients with an integer such as 100",
            )
    num_clients = int(num_clients)
    if num_clients < 1:
        raise UserError(
            f"num_clients must be >= 1 (got {num_clients})",
            "pass --num-clients with a positive integer such as 100",
        )
    if num_clients > num_examples:
        raise UserError(
            f"{num_examples} examples cannot fill {num_clients} clients",
            f"use at most {num_examples} clients",
        )
    return num_clients


def check_seed(seed: object) -> int:
    """Return the seed as an int, or raise if it is not a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or int(seed) < 0:
        raise UserError(
            f"seed must be a non-negative integer (got {seed!r})",
            "pass --seed with an integer such as 42",
        )
    return int(seed)


def check_positive(name: str, value: object, example: str) -> float:
    """Return value as a float, or raise if it is missing, not a number, not finite or <= 0."""
    if value is None:
        raise UserError(f"{name} is required for this partition method", f"pass --{name} {example}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise UserError(f"{name} must be a number (got {value!r})", f"pass --{name} {example}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise UserError(
            f"{name} must be > 0 (got {value!r})", f"pass --{name} with a positive value such as {example}"
        )
    return value
