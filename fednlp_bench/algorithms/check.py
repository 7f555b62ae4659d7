"""`fednlp-bench check-algorithm SPEC`: is an algorithm correct to run in a sweep?

Runs the algorithm for CHECK_ROUNDS rounds on a small demo task three ways, each in fresh processes with one BLAS
thread: uninterrupted in-process; on 2 gloo ranks (torchrun); and stopped after round 1 (checkpointed) then resumed
in a new process. It compares the final global weights, the server state (state_dict) and every client's state:
  - 2 ranks vs in-process must agree to DIST_TOLERANCE (float64 sums over another split of the clients can differ
    in the last bit; a rank that computes something else differs by far more);
  - resumed vs uninterrupted must be identical, bit for bit.
The workers are this module run as a script (`python -m fednlp_bench.algorithms.check worker ...`).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

CHECK_ROUNDS = 2
CHECK_CLIENTS = 6
CHECK_PER_ROUND = 5  # enough for Krum with one attacker (K > 2f + 2); two rounds share clients, so state matters
DIST_TOLERANCE = 1e-5
MODES = ("full", "interrupt", "resume")


@dataclass
class Job:
    """One algorithm to check: its spec, arguments and an optional attack (fl/attacks.py settings)."""

    spec: str
    args: dict[str, Any]
    attack: dict[str, Any] | None = None


@dataclass
class Verdict:
    job: Job
    qualname: str
    dist_diff: float  # largest absolute difference, 2 ranks vs in-process (weights, server and client state)
    resume_identical: bool
    resume_diff: float
    problem: str = ""  # what could not be compared (a run failed), else ""

    @property
    def ok(self) -> bool:
        return not self.problem and self.dist_diff <= DIST_TOLERANCE and self.resume_identical


def _fl_config(job: Job):
    from ..fl.attacks import Attack
    from ..fl.client import ClientConfig
    from ..fl.simulation import FLConfig
    from ..fl.strategies import ServerConfig

    attack = Attack(job.attack["kind"], job.attack["fraction"], job.attack.get("scale"), seed=3) if job.attack else None
    return FLConfig(algorithm=job.spec, algorithm_args=dict(job.args), rounds=CHECK_ROUNDS,
                    clients_per_round=CHECK_PER_ROUND, client=ClientConfig(optimizer="adamw", lr=2e-3, batch_size=16),
                    server=ServerConfig(momentum=0.9), eval_every=CHECK_ROUNDS, seed=3, progress=False, attack=attack)


def _task(cache: Path):
    from ..data import demo_dataset
    from ..partition import make_partition
    from ..tasks import TextClassificationTask

    task = TextClassificationTask(demo_dataset(num_train=180, num_test=30, seed=3), model="tiny", max_length=32,
                                  cache_dir=cache)
    return task, make_partition("quantity", task.skew_labels("train"), CHECK_CLIENTS, seed=3, beta=2.0)


def validate(job: Job) -> str:
    """The class's qualified name; a bad spec, argument or setting raises the UserError the run would."""
    from ..fl.simulation import make_algorithm

    loaded, _ = make_algorithm(_fl_config(job), CHECK_CLIENTS, torch.device("cpu"))
    return loaded.qualname


def worker(argv: list[str]) -> None:
    """Run every job of --jobs in --mode; the checkpoints (final or after round 1) land in --work/<mode>-<i>."""
    from ..fl.checkpoint import Interrupted, StopFlag
    from ..fl.distributed import RankInfo, init_distributed, launched_by_torchrun, shutdown
    from ..fl.simulation import Checkpointing, run_federated

    p = argparse.ArgumentParser()
    p.add_argument("--jobs", required=True)
    p.add_argument("--mode", choices=MODES, required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--tag", required=True)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    jobs = [Job(**j) for j in json.loads(Path(a.jobs).read_text())]
    work = Path(a.work)
    ranks = init_distributed("cpu") if launched_by_torchrun() else RankInfo(device=torch.device("cpu"))
    task, parts = _task(work / "cache")
    try:
        for i, job in enumerate(jobs):
            folder = work / f"{'interrupt' if a.mode == 'resume' else a.tag}-{i}"
            checkpointing = Checkpointing(folder=folder, key=f"check-{i}", every=0 if a.mode == "interrupt" else
                                          CHECK_ROUNDS, resume=a.mode == "resume")
            try:
                run_federated(task, parts, _fl_config(job), torch.device("cpu"), ranks, checkpointing,
                              StopFlag(requested=a.mode == "interrupt"))
            except Interrupted:
                pass
    finally:
        shutdown(ranks)


def _launch(jobs_file: Path, mode: str, work: Path, tag: str, world: int) -> str:
    """Run a worker (under torchrun when world > 1); returns its stderr's tail when it fails, else ""."""
    cmd = [sys.executable, "-m", "fednlp_bench.algorithms.check", "worker", "--jobs", str(jobs_file), "--mode", mode,
           "--work", str(work), "--tag", tag]
    if world > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc-per-node",
               str(world), *cmd[1:]]
    paths = [p for p in sys.path if p] + [os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        return lines[-1] if lines else f"exit code {proc.returncode}"
    return ""


def final_state(folder: Path) -> dict[str, Any]:
    """{"weights", "server", "clients"} of the checkpoint in `folder` (every rank's client-state shard merged)."""
    from ..fl.checkpoint import load_payload
    from ..fl.client_state import shard_name

    ckpt = load_payload(folder / "checkpoint.pt")
    clients: dict[int, Any] = {}
    shards = ckpt.get("client_shards")
    if shards:
        for r in range(int(shards["world"])):
            clients.update(load_payload(folder / shard_name(int(shards["round"]), r))["states"])
    return {"round": ckpt["round"], "weights": ckpt["global_weights"], "server": ckpt["server_state"],
            "clients": clients}


def difference(a: Any, b: Any) -> float:
    """Largest absolute difference between two nested states (inf when their structure or types differ)."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape or a.dtype != b.dtype:
            return float("inf")
        if a.is_floating_point():
            return float((a.double() - b.double()).abs().max()) if a.numel() else 0.0
        return 0.0 if torch.equal(a, b) else float("inf")
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return float("inf")
        return max([difference(a[k], b[k]) for k in a], default=0.0)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return float("inf")
        return max([difference(x, y) for x, y in zip(a, b)], default=0.0)
    return 0.0 if a == b else float("inf")


def identical(a: Any, b: Any) -> bool:
    """Bit-for-bit equality of two nested states."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.dtype == b.dtype and a.shape == b.shape and bool(torch.equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(identical(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def check_jobs(jobs: list[Job], work: Path | None = None) -> list[Verdict]:
    """Check every job (see the module docstring); three worker launches in all, whatever the number of jobs."""
    names = [validate(job) for job in jobs]
    with tempfile.TemporaryDirectory(prefix="fednlp-check-") as tmp:
        work = Path(work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        jobs_file = work / "jobs.json"
        jobs_file.write_text(json.dumps([job.__dict__ for job in jobs]))
        failed = {"in-process run": _launch(jobs_file, "full", work, "full", 1),
                  "interrupted run": _launch(jobs_file, "interrupt", work, "interrupt", 1)}
        failed["resumed run"] = _launch(jobs_file, "resume", work, "interrupt", 1) if not failed["interrupted run"] \
            else "its interrupted run failed"
        failed["2-rank run"] = _launch(jobs_file, "full", work, "dist", 2)
        verdicts = []
        for i, (job, qualname) in enumerate(zip(jobs, names)):
            problem = "; ".join(f"the {what} failed: {why}" for what, why in failed.items() if why)
            if problem:
                verdicts.append(Verdict(job, qualname, float("inf"), False, float("inf"), problem))
                continue
            full, dist, resumed = (final_state(work / f"{tag}-{i}") for tag in ("full", "dist", "interrupt"))
            rounds = {full["round"], dist["round"], resumed["round"]}
            if rounds != {CHECK_ROUNDS}:
                verdicts.append(Verdict(job, qualname, float("inf"), False, float("inf"),
                                        f"a run ended after round {min(rounds)}, not {CHECK_ROUNDS}"))
                continue
            dist_diff = difference(full, dist)
            verdicts.append(Verdict(job, qualname, dist_diff, identical(full, resumed), difference(full, resumed)))
        return verdicts


def report(v: Verdict) -> list[str]:
    """The lines check-algorithm prints for one verdict."""
    args = ", ".join(f"{k}={val}" for k, val in v.job.args.items())
    head = (f"{v.job.spec}{f' ({args})' if args else ''} = {v.qualname}: {CHECK_ROUNDS} rounds, {CHECK_CLIENTS} "
            f"clients, {CHECK_PER_ROUND} per round")
    if v.problem:
        return [head, f"  could not compare: {v.problem}", "  result: FAILED"]
    dist = ("identical" if v.dist_diff == 0 else f"agree to {v.dist_diff:.3g}" if v.dist_diff <= DIST_TOLERANCE
            else f"DIFFER by up to {v.dist_diff:.3g} (tolerance {DIST_TOLERANCE:g})")
    resume = "identical" if v.resume_identical else f"DIFFER by up to {v.resume_diff:.3g} (must be identical)"
    return [head, f"  in-process vs 2 gloo ranks (weights, server and client state): {dist}",
            f"  interrupted after round 1 and resumed vs uninterrupted: {resume}",
            f"  result: {'OK' if v.ok else 'FAILED'}"]


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        worker(sys.argv[2:])
