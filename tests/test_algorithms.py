"""Closed-form checks of the built-in algorithms, each on the smallest run that shows it.

Runs use the tiny model on demo data (dropout off, SGD clients unless said) or the quadratic task, whose optimum is
known (tests/quadratic_task.py). Equalities that hold only up to float rounding are checked to 1e-6 of the weights.
"""
from __future__ import annotations

import math

import pytest
import torch

from fednlp_bench.algorithms import ClientContext, ClientUpdates, RunInfo, ServerRound
from fednlp_bench.algorithms.fednova import FedNova
from fednlp_bench.algorithms.krum import Krum, KrumArgs, MultiKrum
from fednlp_bench.algorithms.median import FedMedian
from fednlp_bench.algorithms.qfedavg import QFedAvg, QFedAvgArgs
from fednlp_bench.algorithms.trimmed_mean import TrimmedMean, TrimmedMeanArgs
from fednlp_bench.data import demo_dataset
from fednlp_bench.fl.attacks import Attack
from fednlp_bench.fl.checkpoint import load_checkpoint, load_payload
from fednlp_bench.fl.client import ClientConfig, client_update
from fednlp_bench.fl.client_state import shard_name
from fednlp_bench.fl.params import FlatParams
from fednlp_bench.fl.simulation import Checkpointing, FLConfig, client_seed, make_algorithm, run_federated
from fednlp_bench.fl.strategies import ServerConfig
from fednlp_bench.partition import make_partition
from fednlp_bench.tasks import TextClassificationTask
from quadratic_task import QuadraticTask

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    data = demo_dataset(num_train=240, num_test=60, seed=3)
    return TextClassificationTask(data, model="tiny", max_length=32, cache_dir=tmp_path_factory.mktemp("cache"),
                                  dropout=0.0)


@pytest.fixture(scope="module")
def equal_parts(task):
    parts = make_partition("uniform", task.skew_labels("train"), 4, seed=0)
    assert len({len(p) for p in parts}) == 1  # 60 examples each: equal local steps
    return parts


def config(algorithm="fedavg", args=None, rounds=2, per_round=4, lr=0.3, batch=16, weighting="examples",
           optimizer="sgd", attack=None, seed=7):
    return FLConfig(algorithm=algorithm, algorithm_args=args or {}, rounds=rounds, clients_per_round=per_round,
                    client=ClientConfig(optimizer=optimizer, lr=lr, batch_size=batch), server=ServerConfig(),
                    weighting=weighting, eval_every=rounds, seed=seed, progress=False, attack=attack)


def run(task, parts, cfg, **kw):
    return run_federated(task, parts, cfg, CPU, **kw).weights


def close(a: torch.Tensor, b: torch.Tensor, moved_from: torch.Tensor) -> bool:
    """a == b up to float rounding, and the run really moved the weights (so equality is not trivial)."""
    assert float((b - moved_from).abs().max()) > 1e-3
    return float((a - b).abs().max()) < 1e-6


def initial(task, seed=7) -> torch.Tensor:
    return FlatParams(task.new_model(seed)).get()


def info(per_round=5, clients=10, lr=0.1) -> RunInfo:
    return RunInfo(num_clients=clients, clients_per_round=per_round, rounds=1, seed=0,
                   client=ClientConfig(lr=lr), server=ServerConfig(), weighting="examples")


def server_round(deltas: torch.Tensor, weights=None, global_w=None) -> ServerRound:
    k, p = deltas.shape
    return ServerRound(round=1, global_weights=torch.zeros(p) if global_w is None else global_w, sums={}, scalars={},
                       num_clients=k, updates=ClientUpdates(torch.arange(k), deltas,
                                                            torch.ones(k, dtype=torch.float64) if weights is None
                                                            else torch.tensor(weights, dtype=torch.float64)))


# ---------------------------------------------------------------------------------------------- SCAFFOLD, FedNova

def test_scaffold_with_zero_control_variates_and_one_local_step_is_fedavg(task, equal_parts):
    """One local step (batch = a client's data) and every client in every round: mean_i c_i = c, so the corrections
    cancel in the mean and SCAFFOLD takes FedAvg's steps. Round 1 (all control variates zero) is bit-identical."""
    w0 = initial(task)
    one = dict(batch=60, weighting="uniform")
    assert torch.equal(run(task, equal_parts, config("scaffold", rounds=1, **one)),
                       run(task, equal_parts, config("fedavg", rounds=1, **one)))
    scaffold = run(task, equal_parts, config("scaffold", rounds=3, **one))
    assert close(scaffold, run(task, equal_parts, config("fedavg", rounds=3, **one)), w0)
    # with several local steps the control variates do change the path
    several = run(task, equal_parts, config("scaffold", rounds=3, weighting="uniform"))
    assert float((several - run(task, equal_parts, config("fedavg", rounds=3, weighting="uniform"))).abs().max()) > 1e-4


def test_fednova_with_equal_local_steps_is_fedavg(task, equal_parts):
    w0 = initial(task)
    assert close(run(task, equal_parts, config("fednova")), run(task, equal_parts, config("fedavg")), w0)


def test_fednova_normalises_by_local_steps():
    """w <- w - tau_eff * sum_i p_i delta_i / a_i, tau_eff = sum_i p_i a_i (p from the weights, a = local steps)."""
    nova = FedNova(None, info())
    deltas = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    steps, weights = [2, 8], [10.0, 30.0]
    sums, scalars = torch.zeros(2, dtype=torch.float64), {"weight": 0.0, "tau": 0.0}
    for d, a, w in zip(deltas, steps, weights):
        ctx = ClientContext(0, 1, 0, torch.zeros(2), 0.1, 10, a, {}, weight=w)
        up = nova.client_end(ctx, d)
        sums += up.vectors["delta"].double() * up.weights["delta"]
        for k, v in up.scalars.items():
            scalars[k] += v
    new = nova.aggregate(ServerRound(1, torch.zeros(2), {"delta": sums}, scalars, 2))
    p = torch.tensor(weights, dtype=torch.float64) / sum(weights)
    a = torch.tensor(steps, dtype=torch.float64)
    expected = -(p @ a) * (p[:, None] * deltas.double() / a[:, None]).sum(0)
    assert torch.allclose(new.double(), expected, atol=1e-6)
    assert not torch.allclose(new.double(), -(p[:, None] * deltas.double()).sum(0), atol=1e-3)  # not FedAvg


# ---------------------------------------------------------------------------------------------- FedDyn, q-FedAvg

def test_feddyn_server_and_client_state_after_one_round_is_the_hand_computation(task, equal_parts, tmp_path):
    alpha, chosen_k = 0.5, 3
    cfg = config("feddyn", args={"alpha": alpha}, rounds=1, per_round=chosen_k)
    out = run_federated(task, equal_parts, cfg, CPU, checkpointing=Checkpointing(tmp_path, "k", every=1))
    ckpt = load_checkpoint(tmp_path, "k")
    chosen = out.curve[0]["clients"]
    # each chosen client's delta, trained again by hand with FedDyn's hooks (its gradient memory starts at zero)
    _, algo = make_algorithm(cfg, len(equal_parts), CPU)
    model = task.new_model(cfg.seed)
    flat = FlatParams(model)
    w0 = flat.get()
    algo.start(w0)
    deltas = {}
    for c in chosen:
        ctx = ClientContext(c, 1, client_seed(cfg.seed, 1, c), w0, cfg.client.lr, len(equal_parts[c]), 0, {})
        deltas[c] = client_update(task, model, flat, w0, equal_parts[c], cfg.client, CPU, ctx.seed, algo, ctx).delta
    total = sum(d.double() for d in deltas.values())
    h = alpha / len(equal_parts) * total  # h = h0 - alpha/N sum (w_k - w0), h0 = 0
    assert torch.allclose(ckpt.server_state["h"].double(), h, atol=1e-7) and float(h.abs().max()) > 1e-4
    assert torch.allclose(out.weights.double(), w0.double() - total / chosen_k - h / alpha, atol=1e-6)
    # client state: g_k = alpha * (w0 - w_k), saved in the round's shard
    states = load_payload(tmp_path / shard_name(1, 0))["states"]
    assert sorted(states) == sorted(chosen)
    for c in chosen:
        assert torch.allclose(states[c]["grad"], alpha * deltas[c], atol=1e-7)


def test_qfedavg_with_q_zero_is_fedavg_counting_clients_equally(task):
    parts = make_partition("quantity", task.skew_labels("train"), 4, seed=1, beta=2.0)
    assert len({len(p) for p in parts}) > 1  # unequal clients: example weighting would differ
    w0 = initial(task)
    q0 = run(task, parts, config("qfedavg", args={"q": 0.0}))
    assert close(q0, run(task, parts, config("fedavg", weighting="uniform")), w0)
    assert not torch.allclose(q0, run(task, parts, config("fedavg")), atol=1e-4)
    assert not torch.allclose(q0, run(task, parts, config("qfedavg", args={"q": 2.0})), atol=1e-4)


def test_qfedavg_step_is_the_papers_formula():
    """Delta_k = F^q L delta_k, h_k = q F^(q-1) L^2 |delta_k|^2 + L F^q, w <- w - sum Delta / sum h."""
    q, lip = 1.5, 4.0
    algo = QFedAvg(QFedAvgArgs(q=q, lipschitz=lip), info())
    deltas, losses = [torch.tensor([0.5, -1.0]), torch.tensor([2.0, 1.0])], [0.7, 2.5]
    sums, hs = torch.zeros(2, dtype=torch.float64), 0.0
    for d, f in zip(deltas, losses):
        ctx = ClientContext(0, 1, 0, torch.zeros(2), 0.1, 10, 3, {}, _loss=lambda f=f: f)
        algo.client_begin(ctx)
        up = algo.client_end(ctx, d)
        sums += up.vectors["delta"].double() * up.weights["delta"]
        hs += up.scalars["h"]
    new = algo.aggregate(ServerRound(1, torch.zeros(2), {"delta": sums}, {"h": hs}, 2))
    num = sum(f**q * lip * d.double() for d, f in zip(deltas, losses))
    den = sum(q * f ** (q - 1) * lip**2 * float(d.double().pow(2).sum()) + lip * f**q for d, f in zip(deltas, losses))
    assert torch.allclose(new.double(), -num / den, atol=1e-7)


# ---------------------------------------------------------------------------------------------- robust aggregators

def planted_outlier(k=5, p=6, seed=0) -> tuple[torch.Tensor, int]:
    gen = torch.Generator().manual_seed(seed)
    honest = 1.0 + 0.1 * torch.randn(k, p, generator=gen)
    honest[2] = 1e6  # client 2 sends a huge update
    return honest, 2


def test_trimmed_mean_trimming_nothing_is_the_mean():
    deltas = torch.randn(5, 7, generator=torch.Generator().manual_seed(1))
    new = TrimmedMean(TrimmedMeanArgs(beta=0.0), info()).aggregate(server_round(deltas))
    assert torch.allclose(new, -deltas.double().mean(0).float(), atol=1e-7)


def test_trimmed_mean_with_nothing_trimmed_trains_like_fedavg_counting_clients_equally(task):
    parts = make_partition("quantity", task.skew_labels("train"), 4, seed=1, beta=2.0)
    w0 = initial(task)
    assert close(run(task, parts, config("trimmed_mean", args={"beta": 0.0})),
                 run(task, parts, config("fedavg", weighting="uniform")), w0)


@pytest.mark.parametrize("algorithm", [FedMedian(None, info()), TrimmedMean(TrimmedMeanArgs(beta=0.2), info()),
                                       Krum(KrumArgs(byzantine=1), info()),
                                       MultiKrum(KrumArgs(byzantine=1), info())], ids=lambda a: a.name)
def test_robust_aggregators_ignore_a_planted_outlier(algorithm):
    deltas, bad = planted_outlier()
    new = algorithm.aggregate(server_round(deltas))
    honest = torch.cat([deltas[:bad], deltas[bad + 1:]])
    assert float(new.abs().max()) < float(honest.abs().max()) + 1e-6  # nowhere near the outlier's 1e6
    assert torch.all(-new >= honest.min(0).values - 1e-6) and torch.all(-new <= honest.max(0).values + 1e-6)
    assert float(deltas.mean(0).abs().min()) > 1e5  # the mean (FedAvg's step) follows the outlier everywhere


def test_median_is_the_middle_value_and_averages_the_two_middle_ones():
    deltas = torch.tensor([[1.0, 10.0], [3.0, -2.0], [2.0, 4.0]])
    assert torch.equal(FedMedian(None, info()).aggregate(server_round(deltas)), -torch.tensor([2.0, 4.0]))
    even = torch.cat([deltas, torch.tensor([[4.0, 0.0]])])
    assert torch.equal(FedMedian(None, info()).aggregate(server_round(even)), -torch.tensor([2.5, 2.0]))


def test_krum_picks_the_update_closest_to_its_neighbours_and_multikrum_keeping_all_is_the_weighted_mean():
    deltas = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.4, 0.4], [9.0, 9.0]])
    # client 3 is nearest the others (K - f - 2 = 2 neighbours with f = 1)
    assert torch.equal(Krum(KrumArgs(byzantine=1), info()).aggregate(server_round(deltas)), -deltas[3])
    weights = [1.0, 2.0, 3.0, 4.0, 5.0]
    all_kept = MultiKrum(KrumArgs(byzantine=0, keep=5), info()).aggregate(server_round(deltas, weights))
    w = torch.tensor(weights, dtype=torch.float64)
    assert torch.allclose(all_kept.double(), -(w[:, None] * deltas.double()).sum(0) / w.sum(), atol=1e-7)


def test_attacked_runs_robust_aggregators_stay_near_the_clean_model_and_fedavg_does_not(task, equal_parts):
    """One client of 5 (20%) sends its update scaled by 1000: FedAvg follows it, median / trimmed mean / Krum not."""
    parts = make_partition("uniform", task.skew_labels("train"), 5, seed=0)
    attack = Attack("scale", 0.2, 1000.0, seed=7)
    assert len(attack.choose(5).attackers) == 1
    w0 = initial(task)
    step = float(torch.linalg.vector_norm(run(task, parts, config("fedavg", rounds=1, per_round=5)) - w0))
    for name, args in [("fedavg", {}), ("median", {}), ("trimmed_mean", {"beta": 0.2}), ("krum", {"byzantine": 1})]:
        attacked = run(task, parts, config(name, args, rounds=1, per_round=5, attack=Attack("scale", 0.2, 1000.0, 7)))
        moved = float(torch.linalg.vector_norm(attacked - w0)) / step  # in units of the clean FedAvg step
        if name == "fedavg":
            assert moved > 100, moved  # the attacker's 1000x update, divided among 5 clients
        else:
            assert 0.3 < moved < 3, (name, moved)  # a step like an honest client's


def test_attacks_are_seeded_and_do_what_they_say():
    a = Attack("sign_flip", 0.3, None, seed=4).choose(10)
    assert a.attackers == Attack("sign_flip", 0.3, None, seed=4).choose(10).attackers and len(a.attackers) == 3
    assert a.attackers != Attack("sign_flip", 0.3, None, seed=5).choose(10).attackers
    bad, good = sorted(a.attackers)[0], min(set(range(10)) - a.attackers)
    d = torch.tensor([1.0, -2.0, 3.0])
    assert torch.equal(a.apply(d, bad, 1), -d) and a.apply(d, good, 1) is d
    assert torch.equal(Attack("scale", 0.3, 4.0, 4).choose(10).apply(d, bad, 1), 4 * d)
    noise = Attack("noise", 0.3, 2.0, 4).choose(10)
    n1, n2 = noise.apply(torch.zeros(20000), bad, 1), noise.apply(torch.zeros(20000), bad, 2)
    assert torch.equal(n1, noise.apply(torch.zeros(20000), bad, 1)) and not torch.equal(n1, n2)
    assert abs(float(n1.std()) - 2.0) < 0.05


# ---------------------------------------------------------------------------------------------- convergence

def quadratic_run(task, algorithm, args=None, lr=0.05, rounds=60) -> torch.Tensor:
    cfg = FLConfig(algorithm=algorithm, algorithm_args=args or {}, rounds=rounds, clients_per_round=4,
                   client=ClientConfig(optimizer="sgd", lr=lr, batch_size=4), server=ServerConfig(),
                   eval_every=rounds, seed=1, progress=False)
    return run_federated(task, task.parts(), cfg, CPU).weights


def test_scaffold_and_feddyn_reach_the_optimum_where_fedavg_drifts():
    """Clients with different curvatures and 10 local steps: FedAvg stops far from the optimum of (1/N) sum f_i,
    SCAFFOLD and FedDyn (whose clients count equally) reach it."""
    quad = QuadraticTask([40, 40, 40, 40], dim=3, seed=2)
    target = quad.client_optimum  # equal sizes: also the examples-weighted optimum
    dist = {name: float(torch.linalg.vector_norm(quadratic_run(quad, name, args) - target))
            for name, args in [("fedavg", None), ("scaffold", None), ("feddyn", {"alpha": 1.0})]}
    assert dist["fedavg"] > 0.1, dist
    assert dist["scaffold"] < 1e-3 and dist["feddyn"] < 1e-3, dist


def test_fednova_removes_the_bias_of_unequal_local_steps():
    """Clients with 2 and 10 local steps: FedAvg's fixed point over-weights the busy clients; FedNova's is closer to
    the examples-weighted optimum."""
    quad = QuadraticTask([8, 40, 8, 40], dim=3, seed=2)
    fedavg, fednova = (float(torch.linalg.vector_norm(quadratic_run(quad, name, lr=0.02) - quad.optimum))
                       for name in ("fedavg", "fednova"))
    assert fednova < 0.25 * fedavg, (fednova, fedavg)


def test_every_builtin_runs_and_reports_one_upload_per_model_vector(task, equal_parts):
    from fednlp_bench.algorithms.registry import BUILTIN

    uploads = {}
    for name in BUILTIN:
        out = run_federated(task, equal_parts, config(name, rounds=1, per_round=4, args={"byzantine": 0}
                                                      if "krum" in name else None), CPU)
        assert math.isfinite(out.final["accuracy"])
        uploads[name] = out.upload_bytes // out.num_parameters // 4
    assert uploads == {**{n: 1 for n in BUILTIN}, "scaffold": 2}
