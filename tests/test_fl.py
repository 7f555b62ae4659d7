"""Exact-equivalence and behaviour tests of the FL core on a tiny model (dropout off)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fednlp_bench.data import demo_dataset
from fednlp_bench.fl.centralized import run_centralized
from fednlp_bench.fl.client import ClientConfig, client_update, train_steps
from fednlp_bench.fl.params import FlatParams
from fednlp_bench.fl.sampling import sample_clients
from fednlp_bench.fl.simulation import FLConfig, run_federated
from fednlp_bench.fl.strategies import FedAvg, FedOpt, ServerConfig
from fednlp_bench.partition import make_partition
from fednlp_bench.tasks import TextClassificationTask

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    data = demo_dataset(num_train=240, num_test=120, seed=3)
    return TextClassificationTask(data, model="tiny", max_length=32, cache_dir=tmp_path_factory.mktemp("cache"),
                                  dropout=0.0)


def fl_config(algorithm="fedavg", rounds=2, per_round=2, mu=0.0, server=None, optimizer="sgd", lr=0.3, epochs=1,
              batch=16):
    return FLConfig(algorithm=algorithm, rounds=rounds, clients_per_round=per_round,
                    client=ClientConfig(optimizer=optimizer, lr=lr, local_epochs=epochs, batch_size=batch),
                    server=server or ServerConfig(), eval_every=1, seed=7, progress=False,
                    algorithm_args={"mu": mu} if algorithm == "fedprox" else {})


def test_flat_params_share_storage_with_the_model(task):
    model = task.new_model(0)
    flat = FlatParams(model)
    first = next(p for p in model.parameters() if p.requires_grad)
    flat.set_(torch.zeros(flat.numel))
    assert float(first.detach().abs().sum()) == 0.0
    assert flat.numel == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_fedavg_one_client_one_step_equals_one_centralized_sgd_step(task):
    n = task.num_examples("train")
    cfg = ClientConfig(optimizer="sgd", lr=0.5, local_epochs=1, batch_size=n)
    # federated: one client holding every example, one local step, FedAvg aggregation
    model = task.new_model(11)
    flat = FlatParams(model)
    w0 = flat.get()
    res = client_update(task, model, flat, w0, np.arange(n), cfg, CPU, seed=1)
    assert res.num_batches == 1
    fed = FedAvg().step(w0, res.delta)
    # centralized: one SGD step on the same examples from the same initial weights
    model2 = task.new_model(11)
    flat2 = FlatParams(model2)
    assert torch.equal(flat2.get(), w0)
    train_steps(task, model2, flat2, [np.arange(n)], cfg, CPU)
    central = flat2.get()
    assert not torch.allclose(central, w0)  # the step really moved the weights
    assert torch.max(torch.abs(fed - central)) < 1e-6


def test_fedopt_server_sgd_lr1_no_momentum_equals_fedavg(task):
    parts = make_partition("uniform", task.skew_labels("train"), 4, seed=0)
    avg = run_federated(task, parts, fl_config("fedavg"), CPU)
    opt = run_federated(task, parts, fl_config("fedopt", server=ServerConfig("sgd", lr=1.0, momentum=0.0)), CPU)
    assert torch.max(torch.abs(avg.weights - opt.weights)) < 1e-6
    assert avg.curve[-1]["metrics"] == opt.curve[-1]["metrics"]


def test_fedprox_mu0_equals_fedavg_and_mu_positive_pulls_towards_global(task):
    parts = make_partition("uniform", task.skew_labels("train"), 4, seed=0)
    avg = run_federated(task, parts, fl_config("fedavg", rounds=1), CPU)
    prox0 = run_federated(task, parts, fl_config("fedprox", rounds=1, mu=0.0), CPU)
    prox = run_federated(task, parts, fl_config("fedprox", rounds=1, mu=1.0, epochs=3), CPU)
    plain = run_federated(task, parts, fl_config("fedavg", rounds=1, epochs=3), CPU)
    assert torch.equal(avg.weights, prox0.weights)
    w0 = FlatParams(task.new_model(7)).get()
    # the proximal term keeps the aggregated model closer to where the round started
    assert torch.norm(prox.weights - w0) < torch.norm(plain.weights - w0)


def test_fedprox_with_adamw_and_a_small_mu_stays_close_to_fedavg(task):
    """The proximal pull is lr*mu*(w - w_global), not rescaled by Adam: with mu 0.001 FedProx barely differs from
    FedAvg. (Added to the gradient, Adam normalised it to lr-sized steps back to w_global wherever the loss gradient
    was small, and the demo model stayed at chance.)"""
    parts = make_partition("uniform", task.skew_labels("train"), 4, seed=0)
    kw = dict(rounds=2, optimizer="adamw", lr=2e-3, epochs=2)
    avg = run_federated(task, parts, fl_config("fedavg", **kw), CPU)
    prox = run_federated(task, parts, fl_config("fedprox", mu=0.001, **kw), CPU)
    w0 = FlatParams(task.new_model(7)).get()
    assert torch.norm(prox.weights - avg.weights) < 0.05 * torch.norm(avg.weights - w0)


def test_fedprox_proximal_gradient_is_mu_times_distance(task):
    """With lr*mu = 1 and a zero-loss-gradient step, w moves exactly onto the anchor: check via one step."""
    from fednlp_bench.algorithms import ClientContext
    from fednlp_bench.algorithms.fedprox import FedProx, FedProxArgs

    n = 16
    cfg = ClientConfig(optimizer="sgd", lr=0.1, batch_size=n)
    model = task.new_model(5)
    flat = FlatParams(model)
    w0 = flat.get()
    anchor = w0 + 0.01  # global weights differ from the current ones by 0.01 everywhere
    train_steps(task, model, flat, [np.arange(n)], cfg, CPU)
    plain = flat.get()
    flat.set_(w0)
    prox = FedProx(FedProxArgs(mu=2.0), None)
    ctx = ClientContext(client=0, round=1, seed=0, global_weights=anchor, lr=cfg.lr, num_examples=n, num_batches=1,
                        state={})
    train_steps(task, model, flat, [np.arange(n)], cfg, CPU, correction=lambda w: prox.step_correction(ctx, w))
    prox = flat.get()
    # extra step = -lr * mu * (w0 - anchor) = 0.1 * 2 * 0.01 = 0.002 on every coordinate
    assert torch.allclose(prox - plain, torch.full_like(w0, 0.002), atol=1e-6)


def test_client_sampling_differs_across_rounds_and_repeats_for_a_seed():
    rounds = [tuple(sample_clients(100, 10, seed=42, round_idx=r)) for r in range(1, 21)]
    assert len(set(rounds)) == 20
    assert all(len(set(r)) == 10 for r in rounds)
    again = [tuple(sample_clients(100, 10, seed=42, round_idx=r)) for r in range(1, 21)]
    assert rounds == again
    other = [tuple(sample_clients(100, 10, seed=43, round_idx=r)) for r in range(1, 21)]
    assert other != rounds
    assert list(sample_clients(5, 5, seed=1, round_idx=3)) == [0, 1, 2, 3, 4]


def test_federated_run_records_the_sampled_clients(task):
    parts = make_partition("uniform", task.skew_labels("train"), 6, seed=0)
    out = run_federated(task, parts, fl_config(rounds=3, per_round=3), CPU)
    chosen = [tuple(p["clients"]) for p in out.curve]
    assert chosen == [tuple(sample_clients(6, 3, 7, r)) for r in (1, 2, 3)]


@pytest.mark.parametrize("name", ["sgd", "adam", "yogi", "adagrad"])
def test_server_optimizers_take_a_step_against_the_pseudo_gradient(name):
    w = torch.zeros(5)
    g = torch.tensor([1.0, -1.0, 0.5, 0.0, 2.0])
    new = FedOpt(w, ServerConfig(name, lr=0.1, momentum=0.0)).step(w, g)
    moved = new - w
    assert torch.all(torch.sign(moved[g != 0]) == -torch.sign(g[g != 0]))
    assert moved[3] == 0


def test_server_momentum_accumulates():
    strat = FedOpt(torch.zeros(1), ServerConfig("sgd", lr=1.0, momentum=0.9))
    w = torch.zeros(1)
    w = strat.step(w, torch.ones(1))
    w = strat.step(w, torch.ones(1))
    assert torch.allclose(w, torch.tensor([-(1 + 1.9)]))


def test_centralized_makes_the_requested_number_of_steps(task):
    cfg = ClientConfig(optimizer="adamw", lr=1e-3, batch_size=32)
    out = run_centralized(task, passes=1.5, client=cfg, device=CPU, seed=0, progress=False)
    assert [round(p["passes"], 4) for p in out.curve] == [1.0, 1.5]


def test_training_is_deterministic_for_a_seed(task):
    parts = make_partition("label", task.skew_labels("train"), 4, seed=1, alpha=0.5)
    a = run_federated(task, parts, fl_config(optimizer="adamw", lr=1e-3), CPU)
    b = run_federated(task, parts, fl_config(optimizer="adamw", lr=1e-3), CPU)
    assert torch.equal(a.weights, b.weights)
    assert a.curve[-1]["metrics"] == b.curve[-1]["metrics"]
