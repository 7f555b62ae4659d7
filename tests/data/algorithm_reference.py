"""The stored reference of FedAvg, FedProx and FedOpt, made before they moved onto the Algorithm API.

algorithm_reference.json holds, per environment (torch, numpy and transformers versions, CPU model and flags), the
sha256 of each case's final flat weights (float32 bytes), written by the code before fednlp_bench/algorithms existed
(commit 11c5ad0); tests/test_algorithms_reference.py recomputes the cases with the current code and asserts the
same hashes, bit for bit, where the environment has an entry. The hashes are not portable: the same code and one
BLAS thread gave other bits on another machine (2026-12-03), so each environment needs its own entry, made with
the old code:

    git worktree add /tmp/before 11c5ad0
    (cd /tmp/before && PYTHONPATH=. OMP_NUM_THREADS=1 python tests/data/algorithm_reference.py)
    OMP_NUM_THREADS=1 python tests/data/algorithm_reference.py --add /tmp/before/tests/data/algorithm_reference.json

(`--add` checks that the file was made in this environment's versions and stores it under this environment.)
A case is a small in-process run (tiny model, demo data, 5 clients of unequal sizes, 3 per round, 2 rounds)
through `run_federated`. Since then only FedProx's mu moved (from ClientConfig.mu to FLConfig.algorithm_args,
FedProx's argument); the settings are the same.
"""
from __future__ import annotations

import hashlib
import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
STORED = HERE / "algorithm_reference.json"

# name: (algorithm, client optimizer, client lr, mu, server optimizer, server lr, server momentum, weighting, dp)
CASES = {
    "fedavg-sgd": ("fedavg", "sgd", 0.3, 0.0, "sgd", 1.0, 0.0, "examples", None),
    "fedavg-adamw-batches": ("fedavg", "adamw", 2e-3, 0.0, "sgd", 1.0, 0.0, "batches", None),
    "fedavg-uniform": ("fedavg", "sgd", 0.3, 0.0, "sgd", 1.0, 0.0, "uniform", None),
    "fedprox-sgd": ("fedprox", "sgd", 0.3, 0.5, "sgd", 1.0, 0.0, "examples", None),
    "fedprox-adamw": ("fedprox", "adamw", 2e-3, 10.0, "sgd", 1.0, 0.0, "examples", None),
    "fedopt-sgd-momentum": ("fedopt", "adamw", 2e-3, 0.0, "sgd", 1.0, 0.9, "examples", None),
    "fedopt-adam": ("fedopt", "adamw", 2e-3, 0.0, "adam", 0.01, 0.0, "examples", None),
    "fedopt-yogi": ("fedopt", "adamw", 2e-3, 0.0, "yogi", 0.01, 0.0, "examples", None),
    "fedopt-adagrad": ("fedopt", "adamw", 2e-3, 0.0, "adagrad", 0.01, 0.0, "examples", None),
    "fedavg-dp-client": ("fedavg", "sgd", 0.3, 0.0, "sgd", 1.0, 0.0, "examples", (0.5, 0.3)),
}


def make_task(cache_dir: Path):
    from fednlp_bench.data import demo_dataset
    from fednlp_bench.tasks import TextClassificationTask

    data = demo_dataset(num_train=240, num_test=60, seed=3)
    return TextClassificationTask(data, model="tiny", max_length=32, cache_dir=cache_dir)


def run_case(task, name: str) -> torch.Tensor:
    """The final global weights of one case (one BLAS thread, so that thread scheduling does not change the bits)."""
    from fednlp_bench.fl.client import ClientConfig
    from fednlp_bench.fl.privacy import ClientDP
    from fednlp_bench.fl.simulation import FLConfig, run_federated
    from fednlp_bench.fl.strategies import ServerConfig
    from fednlp_bench.partition import make_partition

    algorithm, opt, lr, mu, s_opt, s_lr, s_mom, weighting, dp = CASES[name]
    parts = make_partition("quantity", task.skew_labels("train"), 5, seed=1, beta=2.0)  # unequal sizes
    cfg = FLConfig(algorithm=algorithm, rounds=2, clients_per_round=3,
                   client=ClientConfig(optimizer=opt, lr=lr, local_epochs=1, batch_size=16),
                   algorithm_args={"mu": mu} if algorithm == "fedprox" else {},
                   server=ServerConfig(optimizer=s_opt, lr=s_lr, momentum=s_mom), weighting=weighting,
                   eval_every=2, seed=11, progress=False, dp=ClientDP(*dp) if dp else None)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_federated(task, parts, cfg, torch.device("cpu")).weights
    finally:
        torch.set_num_threads(threads)


def digest(weights: torch.Tensor) -> str:
    return hashlib.sha256(weights.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def environment() -> dict[str, str]:
    """What the bits of a case depend on besides the code: library versions and the CPU (model and flags)."""
    import transformers

    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    cpu = info.get("model name") or platform.processor() or platform.machine()
    flags = hashlib.sha256(" ".join(sorted(info["flags"].split())).encode()).hexdigest()[:12] if info.get("flags") else ""
    return {"torch": torch.__version__, "numpy": np.__version__, "transformers": transformers.__version__,
            "cpu": cpu, "cpu_flags": flags}


def references() -> list[dict]:
    return json.loads(STORED.read_text())["references"] if STORED.exists() else []


def reference_for(env: dict[str, str]) -> dict | None:
    """The stored entry made in this environment, or None."""
    return next((r for r in references() if r["environment"] == env), None)


def store(cases: dict, env: dict[str, str]) -> None:
    """Add (or replace) this environment's entry."""
    kept = [r for r in references() if r["environment"] != env]
    STORED.write_text(json.dumps({"references": [*kept, {"environment": env, "cases": cases}]}, indent=1) + "\n")


def main() -> None:
    env = environment()
    if "--add" in sys.argv:  # a file written by the pre-refactor script (11c5ad0) in this environment
        made = json.loads(Path(sys.argv[sys.argv.index("--add") + 1]).read_text())
        if (made.get("torch"), made.get("numpy")) != (env["torch"], env["numpy"]):
            raise SystemExit(f"that file was made with torch {made.get('torch')}, numpy {made.get('numpy')}; "
                             f"here: torch {env['torch']}, numpy {env['numpy']}")
        store(made["cases"], env)
        return
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        task = make_task(Path(tmp))
        cases = {}
        for name in CASES:
            w = run_case(task, name)
            cases[name] = {"sha256": digest(w), "numel": int(w.numel())}
            print(name, cases[name]["sha256"][:16], file=sys.stderr)
    store(cases, env)


if __name__ == "__main__":
    main()
