"""Settings an algorithm cannot be combined with: each refusal is one line naming the reason and the fix.

These guard guarantees the harness reports, not an algorithm's own preferences (those are Algorithm.check):
  - client-level DP (DP-FedAvg) bounds each client's influence by clipping its delta and noising the *sum* with a
    fixed denominator; an algorithm that uploads anything else (control variates, loss-weighted deltas) or
    aggregates anything but that sum (median, Krum) voids the (epsilon, delta) the result would report;
  - example-level DP-SGD accounts for the steps of local training only; an algorithm that reads a client's data
    outside them (q-FedAvg's loss of the global model) is not covered;
  - an algorithm that counts clients equally (uses_weighting = False) runs as --weighting uniform says; the default
    (examples) is taken to mean "the algorithm's own", and --weighting batches is refused rather than ignored.
"""
from __future__ import annotations

from ..errors import UserError


def refuse_incompatible(cls: type, spec: str, *, client_dp: bool, example_dp: bool, weighting: str) -> None:
    """Raise one UserError when `cls` (an Algorithm class) cannot run with these settings."""
    if client_dp and not cls.supports_client_dp:
        why = ("aggregates every client's update instead of their sum, so no clip norm bounds one client's "
               "influence" if cls.gather_updates else
               "uploads more than a clipped delta summed with a fixed denominator, which the accounting assumes")
        raise UserError(f"client-level DP (--dp-clip) cannot be combined with --algorithm {spec}: it {why}",
                        "leave out --dp-clip, or use an algorithm that supports it (fedavg, fedprox, fedopt)")
    if example_dp and cls.needs_global_loss:
        raise UserError(f"example-level DP-SGD (--dp-sgd-clip) cannot account for --algorithm {spec}: it reads each "
                        "client's data outside local training (the global model's loss)",
                        "leave out --dp-sgd-clip, or use another algorithm")
    if weighting not in ("examples", "uniform") and not cls.uses_weighting:
        raise UserError(f"--algorithm {spec} counts clients equally, so --weighting {weighting} would be ignored",
                        "leave out --weighting")
