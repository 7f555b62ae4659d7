"""Client-level DP-FedAvg: clipping, noise scale, and epsilon from opacus's RDP accountant."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fednlp_bench.config import RunConfig
from fednlp_bench.errors import UserError
from fednlp_bench.fl.privacy import ClientDP, client_level_epsilon, clip_delta, server_noise


def test_clipping_scales_a_known_delta_to_the_clip_norm():
    clipped, norm = clip_delta(torch.tensor([3.0, 4.0]), clip=1.0)
    assert norm == pytest.approx(5.0)
    assert torch.allclose(clipped, torch.tensor([0.6, 0.8]))
    small = torch.tensor([0.3, 0.4])
    same, norm = clip_delta(small, clip=1.0)
    assert norm == pytest.approx(0.5) and torch.equal(same, small)  # under the clip: untouched


def test_server_noise_has_std_multiplier_times_clip_and_is_seeded():
    dp = ClientDP(clip=0.5, noise_multiplier=1.3)
    noise = server_noise(400_000, dp, seed=1, round_idx=3, device=torch.device("cpu"))
    assert float(noise.mean()) == pytest.approx(0.0, abs=0.01)
    assert float(noise.std()) == pytest.approx(1.3 * 0.5, rel=0.01)
    assert torch.equal(noise, server_noise(400_000, dp, 1, 3, torch.device("cpu")))
    assert not torch.equal(noise, server_noise(400_000, dp, 1, 4, torch.device("cpu")))


def test_epsilon_is_opacus_rdp_accountants_value():
    from opacus.accountants import RDPAccountant
    from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent

    eps = client_level_epsilon(1.1, 0.05, 200, 1e-5)
    acc = RDPAccountant()
    for _ in range(200):
        acc.step(noise_multiplier=1.1, sample_rate=0.05)
    assert eps == pytest.approx(acc.get_epsilon(delta=1e-5), rel=1e-9)
    orders = RDPAccountant.DEFAULT_ALPHAS
    direct, _ = get_privacy_spent(orders=orders, rdp=compute_rdp(q=0.05, noise_multiplier=1.1, steps=200, orders=orders),
                                  delta=1e-5)
    assert eps == pytest.approx(direct, rel=1e-9)
    assert client_level_epsilon(2.0, 0.05, 200, 1e-5) < eps  # more noise, less privacy spent
    assert math.isinf(client_level_epsilon(0.0, 0.05, 200, 1e-5))


def test_dp_round_is_the_noised_mean_of_clipped_deltas(tmp_path):
    """One round, one local step: the global update equals (sum of clipped deltas + the round's noise) / K."""
    from fednlp_bench.data import demo_dataset
    from fednlp_bench.fl.client import ClientConfig, client_update
    from fednlp_bench.fl.params import FlatParams
    from fednlp_bench.fl.simulation import FLConfig, client_seed, run_federated
    from fednlp_bench.fl.strategies import ServerConfig
    from fednlp_bench.tasks import TextClassificationTask

    task = TextClassificationTask(demo_dataset(num_train=60, num_test=20, seed=2), model="tiny", max_length=16,
                                  cache_dir=tmp_path, dropout=0.0)
    parts = [np.arange(i, 60, 3) for i in range(3)]
    dp = ClientDP(clip=0.05, noise_multiplier=0.7)
    client = ClientConfig(optimizer="sgd", lr=0.5, batch_size=32)
    cfg = FLConfig(algorithm="fedavg", rounds=1, clients_per_round=3, client=client, server=ServerConfig(), seed=4,
                   progress=False, dp=dp)
    out = run_federated(task, parts, cfg, torch.device("cpu"))
    model = task.new_model(4)
    flat = FlatParams(model)
    w0 = flat.get()
    total = torch.zeros_like(w0, dtype=torch.float64)
    for c in range(3):
        res = client_update(task, model, flat, w0, parts[c], client, torch.device("cpu"), client_seed(4, 1, c))
        clipped, norm = clip_delta(res.delta, dp.clip)
        assert norm > dp.clip  # the test really clips
        total += clipped
    total += server_noise(w0.numel(), dp, 4, 1, torch.device("cpu"))
    expected = w0 - (total / 3).float()
    assert torch.allclose(out.weights, expected, atol=1e-6)


def test_dp_run_reports_epsilon_and_bad_settings_are_refused(tmp_path):
    from fednlp_bench.runner import run_fl

    rec = run_fl(RunConfig(task="demo", max_train=200, max_test=40, clients=10, clients_per_round=5, rounds=2,
                           dp_clip=1.0, dp_noise_multiplier=1.0, output=str(tmp_path), progress=False))
    priv = rec["privacy"]
    assert priv["sample_rate"] == 0.5 and priv["rounds"] == 2 and priv["level"] == "client"
    assert priv["epsilon"] == pytest.approx(client_level_epsilon(1.0, 0.5, 2, 1e-5))
    with pytest.raises(UserError, match="uniform client sampling"):
        RunConfig(task="demo", dp_clip=1.0, selection="activity").validate()
    with pytest.raises(UserError, match="dp-clip"):
        RunConfig(task="demo", dp_clip=0.0).validate()


# ------------------------------------------------------------------------------------------ membership inference
@pytest.fixture(scope="module")
def mia_task(tmp_path_factory):
    from fednlp_bench.data import demo_dataset
    from fednlp_bench.tasks import TextClassificationTask

    return TextClassificationTask(demo_dataset(num_train=400, num_test=400, seed=5), model="tiny", max_length=32,
                                  cache_dir=tmp_path_factory.mktemp("cache"), dropout=0.0)


def test_attack_auc_is_about_half_on_a_model_that_never_saw_the_data(mia_task):
    from fednlp_bench.membership import membership_audit

    model = mia_task.new_model(0)
    res = membership_audit(mia_task, model, np.arange(400), torch.device("cpu"), max_examples=300)
    assert res["members"] == 300 and abs(res["auc"] - 0.5) < 0.07


def test_attack_auc_is_clearly_above_half_on_an_overfit_model(mia_task):
    from fednlp_bench.fl.client import ClientConfig, batch_order, train_steps
    from fednlp_bench.fl.params import FlatParams
    from fednlp_bench.membership import example_losses, loss_threshold_auc, membership_audit

    members = np.arange(48)
    model = mia_task.new_model(0)
    flat = FlatParams(model)
    batches = batch_order(members, 16, 60, np.random.default_rng(0))  # 60 epochs on 48 examples: memorised
    train_steps(mia_task, model, flat, batches, ClientConfig(optimizer="adamw", lr=3e-3, batch_size=16),
                torch.device("cpu"))
    res = membership_audit(mia_task, model, members, torch.device("cpu"))
    assert res["members"] == 48 and res["auc"] > 0.75, res
    assert res["member_loss_mean"] < res["non_member_loss_mean"]
    # the per-example losses are the task's loss: their mean over one batch equals the batch loss
    losses = example_losses(mia_task, model, "train", members[:16], torch.device("cpu"))
    batch = mia_task.batch("train", members[:16])
    with torch.no_grad():
        assert losses.mean() == pytest.approx(float(mia_task.loss(model.eval(), batch)), rel=1e-5)
    assert loss_threshold_auc(np.array([0.1, 0.2]), np.array([0.3, 0.4])) == 1.0


def test_runs_carry_the_attack_when_asked(tmp_path):
    from fednlp_bench.runner import run_fl

    rec = run_fl(RunConfig(task="demo", max_train=200, max_test=60, clients=4, clients_per_round=2, rounds=2,
                           mia=True, output=str(tmp_path), progress=False))
    mia = rec["membership_inference"]
    assert 0.0 <= mia["auc"] <= 1.0 and mia["members"] == 60
    assert run_fl(RunConfig(task="demo", max_train=200, max_test=60, clients=4, clients_per_round=2, rounds=1,
                            output=str(tmp_path / "b"), progress=False))["membership_inference"] is None
