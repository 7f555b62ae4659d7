"""Client selection: uniform, activity-proportional (systematic PPS) and power-of-choice."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chisquare

from fednlp_bench.config import RunConfig
from fednlp_bench.errors import UserError
from fednlp_bench.fl.sampling import sample_clients
from fednlp_bench.fl.selection import inclusion_probabilities, select_clients

ACTIVITY = np.array([5, 10, 20, 40, 80, 160, 10, 30, 0, 45])


def test_inclusion_probabilities_are_proportional_capped_and_sum_to_k():
    pi = inclusion_probabilities(ACTIVITY, 3)
    assert pi.sum() == pytest.approx(3.0) and pi[8] == 0.0
    assert pi[5] == 1.0  # 3 * 160/400 > 1: always selected
    free = (ACTIVITY > 0) & (pi < 1)
    ratio = pi[free] / ACTIVITY[free]
    assert np.allclose(ratio, ratio[0])  # the rest in proportion to activity


def test_activity_sampling_frequencies_match_the_weights_chi_square():
    rounds, k = 4000, 3
    counts = np.zeros(len(ACTIVITY))
    for r in range(1, rounds + 1):
        chosen = select_clients("activity", ACTIVITY, k, seed=7, round_idx=r)
        assert len(chosen) == k == len(set(chosen.tolist())) and 8 not in chosen  # distinct, never an empty client
        counts[chosen] += 1
    expected = rounds * inclusion_probabilities(ACTIVITY, k)
    used = expected > 0
    stat, p = chisquare(counts[used], expected[used])
    assert p > 1e-3, (counts, expected)
    # the same test rejects uniform selection against these weights, so it can fail
    uniform = np.zeros(len(ACTIVITY))
    for r in range(1, rounds + 1):
        uniform[sample_clients(len(ACTIVITY), k, 7, r)] += 1
    assert chisquare(uniform[used], expected[used] * uniform[used].sum() / expected[used].sum()).pvalue < 1e-6


def test_selection_is_seeded_by_seed_and_round():
    a = [select_clients("activity", ACTIVITY, 3, 1, r).tolist() for r in range(1, 20)]
    assert a == [select_clients("activity", ACTIVITY, 3, 1, r).tolist() for r in range(1, 20)]
    assert a != [select_clients("activity", ACTIVITY, 3, 2, r).tolist() for r in range(1, 20)]
    assert np.array_equal(select_clients("uniform", ACTIVITY, 3, 1, 4), sample_clients(10, 3, 1, 4))


def test_power_of_choice_keeps_the_largest_loss_candidates():
    seen = {}

    def loss(pool):  # a known loss per client: its id
        seen["pool"] = pool
        return pool.astype(float)

    chosen = select_clients("power_of_choice", ACTIVITY, 2, 3, 1, candidates=5, client_loss=loss)
    pool = seen["pool"]
    assert len(pool) == 5 and 8 not in pool
    assert chosen.tolist() == sorted(pool.tolist())[-2:]


def test_selection_errors_name_the_fix():
    with pytest.raises(UserError, match="hold data"):
        select_clients("activity", np.array([3, 0, 0]), 2, 1, 1)
    with pytest.raises(UserError, match="selection-candidates"):
        RunConfig(task="demo", clients_per_round=5, selection_candidates=3).validate()
    with pytest.raises(UserError, match="unknown --selection"):
        RunConfig(task="demo", selection="greedy").validate()


@pytest.mark.parametrize("selection", ["activity", "power_of_choice"])
def test_runs_record_their_selection_and_pick_by_it(tmp_path, selection):
    from fednlp_bench.runner import run_fl

    cfg = RunConfig(task="demo", max_train=400, max_test=80, clients=8, clients_per_round=2, rounds=3,
                    partition="quantity", beta=0.5, selection=selection, output=str(tmp_path), progress=False)
    rec = run_fl(cfg)
    assert rec["config"]["selection"] == selection
    sizes = rec["partition"]["train_sizes"]
    assert all(len(c["clients"]) == 2 for c in rec["curve"])
    assert sizes["max"] > sizes["min"]  # quantity skew: activity differs between clients
    if selection == "activity":  # the run's clients are exactly the activity draw over its partition
        from fednlp_bench.runner import make_partition_for, prepare

        rc, task = prepare(cfg)
        activity = np.array([len(ids) for ids in make_partition_for(rc, task).train])
        assert [c["clients"] for c in rec["curve"]] == [
            select_clients("activity", activity, 2, cfg.seed, r).tolist() for r in (1, 2, 3)]
