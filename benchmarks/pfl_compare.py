"""fednlp-bench's in-process FedAvg vs Apple's pfl-research (PyPI `pfl`) single-process simulator, same FL job.

Run:  bash benchmarks/pfl_compare.sh [--models tiny minilm] [--rounds 10] [--repeats 3]
(builds a throw-away venv .pfl-venv with torch 2.13.0, this checkout and pfl[pytorch]==0.6.0; pfl is never a
dependency of fednlp-bench). Smoke check without touching RESULTS.md: add `--rounds 2 --repeats 1 --no-write`.

Both sides get the same task built by fednlp-bench's own `prepare` (SST-2 train.tsv as benchmarks/_tasks.py picks
it, else the embedded demo), hence the same tokenized data and the same initial weights `task.new_model(seed)`;
the same uniform partition (make_partition); the same clients in every round (pfl's user sampler replays
fednlp-bench's uniform selection, round by round); the same local epochs, batch size, batch order (each pfl user's
dataset is drawn in the order fednlp-bench's client shuffles its ids that round) and dropout seed; the same client
optimizer (a fresh AdamW or SGD per client, weight decay 0); FedAvg weighted by examples with a central SGD step
of lr 1.0; the same rounds; and the same global evaluation on the test split (after the last round, or every
--eval-every rounds). pfl trains with its own machinery: FederatedDataset, SimulatedBackend, WeightByDatapoints,
FederatedAveraging, PyTorchModel's local loop and central optimizer, a callback for the evaluation.

Differences pfl's API forces, all kept small: pfl's users hold tensors padded to one fixed width (the split's
longest example) and its Dataset slices batches without shuffling, so the wrapper module cuts every batch to
its longest example (the shape fednlp-bench's dynamic padding gives); pfl's FederatedAveraging evaluates every
user's data before and after local training in its first round (and every evaluation_frequency-th), which
fednlp-bench does not do, so that is switched off (do_evaluation=False); pfl's CentralEvaluationCallback also
evaluates the initial model, so a callback evaluates on fednlp-bench's schedule through PyTorchModel.evaluate.
With more than one local epoch pfl repeats the first epoch's order (fednlp-bench reshuffles every epoch).

Clocks: end to end from after the task is built to after the last evaluation (model building included on
both sides); per round, the median interval between consecutive rounds (fednlp-bench: its stop flag, read once per
round; pfl: a callback after every central iteration). The two sides alternate, median of --repeats runs, one
torch thread each unless --threads. Prints a table and writes the section "Against pfl-research" of
benchmarks/RESULTS.md (--no-write: print only; --results PATH: write elsewhere).
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

os.environ.setdefault("PFL_PYTORCH_DEVICE", "cpu")  # fednlp-bench's side runs on the CPU: so does pfl's
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import RESULTS, machine, markdown_table, publish  # noqa: E402
from _tasks import bench_config  # noqa: E402

from fednlp_bench.cli import quiet_model_loading  # noqa: E402
from fednlp_bench.config import DEFAULT_CLIENT_LR  # noqa: E402
from fednlp_bench.fl.client import ClientConfig  # noqa: E402
from fednlp_bench.fl.selection import select_clients  # noqa: E402
from fednlp_bench.fl.simulation import FLConfig, client_seed, run_federated  # noqa: E402
from fednlp_bench.fl.strategies import ServerConfig  # noqa: E402
from fednlp_bench.partition import make_partition  # noqa: E402
from fednlp_bench.runner import prepare  # noqa: E402

try:
    import pfl
    from pfl.aggregate.simulate import SimulatedBackend
    from pfl.aggregate.weighting import WeightByDatapoints
    from pfl.algorithm import FederatedAveraging, NNAlgorithmParams
    from pfl.callback.base import TrainingProcessCallback
    from pfl.data.dataset import Dataset
    from pfl.data.federated_dataset import FederatedDataset
    from pfl.hyperparam import NNEvalHyperParams, NNTrainHyperParams
    from pfl.metrics import Metrics, Weighted
    from pfl.model.pytorch import PyTorchModel
except ImportError as exc:  # the project's own venv has no pfl, by design
    sys.exit(f"pfl_compare needs pfl-research ({exc}); run it as: bash benchmarks/pfl_compare.sh")

CPU = torch.device("cpu")
EVAL_BATCH = 128  # fednlp-bench's Task.predict batch size


@dataclass
class Job:
    rounds: int
    clients: int
    per_round: int
    epochs: int
    batch: int
    optimizer: str
    lr: float
    eval_every: int
    seed: int

    def evaluates_after(self, r: int) -> bool:
        """fednlp-bench's schedule: after every eval_every-th round and after the last."""
        return r % self.eval_every == 0 or r == self.rounds


@dataclass
class Measured:
    seconds: float  # end to end
    per_round: float  # median seconds between consecutive rounds (nan with one round)
    accuracy: float  # at the last evaluation
    weights: torch.Tensor  # final global weights, flat, in model.parameters() order


def median_interval(stamps: list[float]) -> float:
    gaps = np.diff(stamps)
    return float(np.median(gaps)) if len(gaps) else float("nan")


# --- fednlp-bench ---------------------------------------------------------------------------------------------

class RoundClock:
    """Given to run_federated as its stop flag: the round loop reads `requested` once a round, right after the
    round's clients trained; every read is timestamped and never asks to stop."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    @property
    def requested(self) -> bool:
        self.stamps.append(time.perf_counter())
        return False


def run_ours(task, parts: list[np.ndarray], job: Job) -> Measured:
    client = ClientConfig(optimizer=job.optimizer, lr=job.lr, local_epochs=job.epochs, batch_size=job.batch)
    cfg = FLConfig(algorithm="fedavg", rounds=job.rounds, clients_per_round=job.per_round, client=client,
                   server=ServerConfig(), weighting="examples", eval_every=job.eval_every, seed=job.seed,
                   progress=False)
    clock = RoundClock()
    start = time.perf_counter()
    out = run_federated(task, parts, cfg, CPU, stop=clock)
    seconds = time.perf_counter() - start
    if len(clock.stamps) != job.rounds:  # the loop read its stop flag other than once a round: no per-round time
        clock.stamps = []
    return Measured(seconds, median_interval(clock.stamps), out.final["accuracy"], out.weights)


# --- pfl-research ---------------------------------------------------------------------------------------------

class PflModule(torch.nn.Module):
    """The task's Hugging Face model with the `loss` and `metrics` methods pfl's PyTorchModel calls.

    pfl hands over slices of fixed-width tensors; each batch is cut to its longest example first, the shape
    fednlp-bench's per-batch padding gives the same examples."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    @staticmethod
    def _cut(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        width = int(attention_mask.sum(1).max())
        return input_ids[:, :width], attention_mask[:, :width]

    def loss(self, input_ids, attention_mask, labels):
        self.train()
        input_ids, attention_mask = self._cut(input_ids, attention_mask)
        return self.model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss

    @torch.no_grad()
    def metrics(self, input_ids, attention_mask, labels, eval=False):  # noqa: A002 - pfl's keyword
        self.eval() if eval else self.train()
        input_ids, attention_mask = self._cut(input_ids, attention_mask)
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
        return {"accuracy": Weighted(int((logits.argmax(-1) == labels).sum()), len(labels))}


class ReplaySampler:
    """A pfl user sampler (`callable() -> user id`) that yields, round after round, the clients fednlp-bench's
    uniform selection trains; `round` is the round of the user drawn last."""

    def __init__(self, parts: list[np.ndarray], job: Job) -> None:
        sizes = np.array([len(p) for p in parts])
        self.draws = [(r, int(c)) for r in range(1, job.rounds + 1)
                      for c in select_clients("uniform", sizes, job.per_round, job.seed, r)]
        self.next, self.round = 0, 0

    def __call__(self) -> int:
        self.round, client = self.draws[self.next % len(self.draws)]
        self.next += 1
        return client


class NoLocalEvaluation(FederatedAveraging):
    """pfl's FedAvg without its per-user evaluation before and after local training (fednlp-bench does none;
    pfl does it whenever iteration % evaluation_frequency == 0, so always in the first iteration)."""

    def get_next_central_contexts(self, *args, **kwargs):
        contexts, model, metrics = super().get_next_central_contexts(*args, **kwargs)
        if contexts is not None:
            contexts = tuple(dataclasses.replace(c, do_evaluation=False) for c in contexts)
        return contexts, model, metrics


class ClockAndEvaluation(TrainingProcessCallback):
    """Timestamps the end of every central iteration, then evaluates the global model on the central test data
    on fednlp-bench's schedule (no evaluation of the initial model, as CentralEvaluationCallback would add)."""

    def __init__(self, data, eval_params, job: Job) -> None:
        self.data, self.eval_params, self.job = data, eval_params, job
        self.stamps: list[float] = []
        self.accuracy = float("nan")

    def after_central_iteration(self, aggregate_metrics, model, *, central_iteration):
        self.stamps.append(time.perf_counter())
        metrics = Metrics()
        if self.job.evaluates_after(central_iteration + 1):
            metrics = model.evaluate(self.data, eval_params=self.eval_params)
            self.accuracy = metrics["accuracy"].overall_value
        return False, metrics


def run_pfl(task, parts: list[np.ndarray], job: Job) -> Measured:
    start = time.perf_counter()
    train = task.batch("train", np.arange(task.num_examples("train")))  # padded to the split's longest example
    train = (train["input_ids"], train["attention_mask"], train["labels"])
    order = task.sorted_eval_order(task.splits["test"].lengths)  # Task.predict's order: little padding per batch
    test = task.batch("test", order)
    central = Dataset((test["input_ids"], test["attention_mask"], test["labels"]), eval_kwargs={"eval": True})

    sampler = ReplaySampler(parts, job)

    def user_dataset(client: int) -> Dataset:
        """Client `client`'s examples in the order fednlp-bench's client shuffles them in this round (its
        batch_order, first epoch), and its dropout seed."""
        seed = client_seed(job.seed, sampler.round, client)
        ids = parts[client][np.random.default_rng(seed).permutation(len(parts[client]))]
        torch.manual_seed(seed)  # pfl trains this user right after drawing it (get_cohort is lazy)
        rows = torch.from_numpy(ids)
        return Dataset(tuple(t[rows] for t in train), user_id=str(client))

    module = PflModule(task.new_model(job.seed))
    optimizer = {"adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[job.optimizer]
    model = PyTorchModel(module, local_optimizer_create=functools.partial(optimizer, weight_decay=0.0),
                         central_optimizer=torch.optim.SGD(module.parameters(), lr=1.0))
    backend = SimulatedBackend(training_data=FederatedDataset(user_dataset, sampler), val_data=None,
                               postprocessors=[WeightByDatapoints()])
    eval_params = NNEvalHyperParams(local_batch_size=EVAL_BATCH)
    clock = ClockAndEvaluation(central, eval_params, job)
    NoLocalEvaluation().run(
        algorithm_params=NNAlgorithmParams(central_num_iterations=job.rounds, evaluation_frequency=job.rounds,
                                           train_cohort_size=job.per_round, val_cohort_size=None),
        backend=backend, model=model,
        model_train_params=NNTrainHyperParams(local_batch_size=job.batch, local_num_epochs=job.epochs,
                                              local_learning_rate=job.lr),
        model_eval_params=eval_params, callbacks=[clock], send_metrics_to_platform=False)
    seconds = time.perf_counter() - start
    weights = torch.cat([p.detach().reshape(-1) for p in module.model.parameters() if p.requires_grad])
    return Measured(seconds, median_interval(clock.stamps), clock.accuracy, weights)


# --- the comparison -------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["tiny", "minilm"])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--per-round", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=1, help="local epochs")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw", help="client optimizer")
    ap.add_argument("--lr", type=float, default=None,
                    help="client lr (default: fednlp-bench's for the optimizer and model, e.g. AdamW 2e-3 tiny, 5e-5 "
                         "pretrained)")
    ap.add_argument("--eval-every", type=int, default=None, help="global evaluation every k rounds (default: "
                    "once, after the last round)")
    ap.add_argument("--max-train", type=int, default=None, help="use this many training examples (default: all)")
    ap.add_argument("--max-test", type=int, default=None, help="use this many test examples (default: all)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup-rounds", type=int, default=1, help="rounds of an untimed warm-up run of each side "
                    "per model (0: none)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--results", type=Path, default=RESULTS, help="the results file to write the section into")
    ap.add_argument("--no-write", "--no-publish", dest="no_write", action="store_true", help="print only")
    args = ap.parse_args()
    if args.rounds < 2:
        ap.error("--rounds must be at least 2 (a per-round time needs two rounds)")
    torch.set_num_threads(args.threads)
    quiet_model_loading()

    rows, notes, source, sizes = [], [], "", ""
    for name in args.models:
        settings = {k: v for k, v in (("max_train", args.max_train), ("max_test", args.max_test)) if v is not None}
        cfg, source = bench_config(name, **settings)
        _, task = prepare(cfg)
        sizes = f"{task.num_examples('train')} train / {task.num_examples('test')} test examples"
        parts = make_partition("uniform", np.zeros(task.num_examples("train"), dtype=int), args.clients,
                               seed=args.seed)
        lr = args.lr if args.lr is not None else DEFAULT_CLIENT_LR[(args.optimizer, task.source.is_tiny)]
        job = Job(rounds=args.rounds, clients=args.clients, per_round=args.per_round, epochs=args.epochs,
                  batch=args.batch_size, optimizer=args.optimizer, lr=lr,
                  eval_every=args.eval_every or args.rounds, seed=args.seed)
        if args.warmup_rounds > 0:  # allocator, lazy imports, caches: untimed, both sides
            warm = dataclasses.replace(job, rounds=args.warmup_rounds, eval_every=args.warmup_rounds)
            run_ours(task, parts, warm), run_pfl(task, parts, warm)
        ours, theirs = [], []
        for _ in range(args.repeats):  # alternate, so drift in machine load hits both sides alike
            ours.append(run_ours(task, parts, job))
            theirs.append(run_pfl(task, parts, job))
        o_s, p_s = statistics.median(m.seconds for m in ours), statistics.median(m.seconds for m in theirs)
        o_r, p_r = statistics.median(m.per_round for m in ours), statistics.median(m.per_round for m in theirs)
        o_acc, p_acc = ours[-1].accuracy, theirs[-1].accuracy
        steps = statistics.mean(job.epochs * math.ceil(len(p) / job.batch) for p in parts)
        rows.append({"model": task.model_name, "rounds": job.rounds, "clients/round": job.per_round,
                     "local steps/client": steps, "ours s": o_s, "pfl s": p_s, "pfl/ours": p_s / o_s,
                     "ours s/round": o_r, "pfl s/round": p_r, "pfl/ours per round": p_r / o_r,
                     "accuracy ours": o_acc, "accuracy pfl": p_acc})
        gap = float((ours[-1].weights - theirs[-1].weights).abs().max())
        notes.append(f"{task.model_name} ({job.optimizer} lr {lr:g}): the final weights of the two sides differ by at "
                     f"most {gap:.2e} " + ("(same clients, batches and dropout seeds; the sums of the aggregation "
                                           "differ in precision and order)" if job.epochs == 1 else
                                           "(same clients; from the second local epoch on pfl repeats the first "
                                           "epoch's batch order, so the local trajectories part)"))
        if abs(o_acc - p_acc) > 0.02:
            notes.append(f"{task.model_name}: the final accuracies differ by {abs(o_acc - p_acc):.3f} "
                         f"(ours {o_acc:.3f}, pfl {p_acc:.3f}) - more than the summation order explains")
    df = pd.DataFrame(rows)
    table = markdown_table(df)
    evaluation = (f"global evaluation every {args.eval_every} rounds and after the last" if args.eval_every
                  else "one global evaluation after the last round")
    header = (f"fednlp-bench's in-process FedAvg vs pfl-research {pfl.__version__}'s single-process simulator "
              f"(SimulatedBackend, FederatedAveraging, PyTorchModel) on {source} ({sizes}), uniform partition, "
              f"{args.clients} clients, {args.per_round} per round, {args.epochs} local epoch(s), batch "
              f"{args.batch_size}, a fresh {args.optimizer} per client (weight decay 0), FedAvg weighted by examples "
              f"with central SGD lr 1.0, {evaluation}; pfl replays fednlp-bench's client selection, batch order "
              f"and dropout seeds, and cuts its fixed-width batches to their longest example; pfl's per-user "
              f"evaluation before and after local training is off. End to end: from the built task to the last "
              f"evaluation; per round: median interval between rounds. Median of {args.repeats} alternating runs "
              f"after a {args.warmup_rounds}-round warm-up. {machine()}.")
    notes_text = "\n".join(f"- {line}" for line in notes)
    publish("Against pfl-research", header, f"{table}\n\n{notes_text}",
            " ".join(["bash benchmarks/pfl_compare.sh", *sys.argv[1:]]),
            not args.no_write, path=args.results)


if __name__ == "__main__":
    main()
