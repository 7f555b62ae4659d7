"""Every built-in and the example plug-in give the same result in-process and on 2 gloo ranks, and a run stopped
after round 1 and resumed in a new process equals the uninterrupted one, bit for bit, server and per-client state
included (fednlp_bench/algorithms/check.py, what `fednlp-bench check-algorithm` runs). Plug-ins that break either
property are caught. One set of worker launches checks them all."""
from __future__ import annotations

from pathlib import Path

import torch

from fednlp_bench.algorithms.check import CHECK_ROUNDS, Job, check_jobs, final_state, report
from fednlp_bench.algorithms.registry import BUILTIN

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "clipped_fedavgm"
BAD = '''
import torch

from fednlp_bench.algorithms import Algorithm


class RankNoise(Algorithm):
    """Server noise from the global RNG: each rank draws its own."""

    def aggregate(self, rnd):
        w = super().aggregate(rnd)
        return w + 1e-3 * torch.rand(w.shape, dtype=w.dtype)


class Forgetful(Algorithm):
    """A server counter that is not checkpointed."""

    def start(self, initial):
        self.t = 0

    def aggregate(self, rnd):
        self.t += 1
        return super().aggregate(rnd) * (1.0 + 0.01 * self.t)
'''


def test_every_builtin_agrees_across_ranks_and_resumes_exactly_and_broken_plugins_are_caught(tmp_path, monkeypatch):
    (tmp_path / "bad_plugins_mod.py").write_text(BAD)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(EXAMPLE))
    attack = {"kind": "scale", "fraction": 0.2, "scale": 100.0}
    jobs = [Job(name, {}) for name in BUILTIN]
    jobs += [Job(name, {}, attack) for name in ("fedavg", "median", "trimmed_mean", "krum")]
    jobs += [Job("clipped_fedavgm:ClippedFedAvgM", {"max_norm": "0.5"}),
             Job("bad_plugins_mod:RankNoise", {}), Job("bad_plugins_mod:Forgetful", {})]
    work = tmp_path / "work"
    verdicts = check_jobs(jobs, work)
    *good, rank_noise, forgetful = verdicts
    for v in good:
        assert v.ok, "\n".join(report(v))
    assert not rank_noise.ok and rank_noise.dist_diff > 1e-4
    assert not forgetful.ok and forgetful.dist_diff <= 1e-5 and not forgetful.resume_identical
    assert "DIFFER" in "\n".join(report(forgetful)) and "result: FAILED" in report(forgetful)[-1]
    # the states compared are real: per-client and server state exist where the algorithm keeps them
    index = {name: i for i, name in enumerate(BUILTIN)}
    for name, server_key in (("scaffold", "c"), ("feddyn", "h")):
        state = final_state(work / f"full-{index[name]}")
        assert state["round"] == CHECK_ROUNDS and len(state["clients"]) >= 5
        assert float(state["server"][server_key].abs().max()) > 0
    assert final_state(work / f"full-{index['fedopt']}")["server"]["state"]  # the server optimizer's moments
    fedavg = final_state(work / f"full-{index['fedavg']}")["weights"]
    attacked = final_state(work / f"full-{len(BUILTIN)}")["weights"]
    median_attacked = final_state(work / f"full-{len(BUILTIN) + 1}")["weights"]
    assert float((attacked - fedavg).abs().max()) > 10 * float((median_attacked - fedavg).abs().max()) > 0
    assert not torch.equal(fedavg, final_state(work / f"full-{index['median']}")["weights"])
