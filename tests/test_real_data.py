"""Integration on real AG News (../shared/data): centralized and FedAvg-IID learn; label skew hurts FedAvg."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from fednlp_bench.config import RunConfig
from fednlp_bench.runner import prepare, run_central, run_fl

SHARED = Path(os.environ.get("FEDNLP_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
AGNEWS = SHARED / "agnews"

pytestmark = pytest.mark.skipif(not (AGNEWS / "test.csv").exists(),
                                reason=f"real data not found at {AGNEWS} (set FEDNLP_SHARED_DATA to ../shared/data)")


@pytest.fixture(scope="module")
def agnews_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("agnews")
    base = RunConfig(task="agnews", data_dir=str(AGNEWS), max_train=2400, max_test=800, max_length=48, clients=10,
                     clients_per_round=5, rounds=10, output=str(out), cache_dir=str(out / "cache"), progress=False)
    _, task = prepare(base)
    majority = np.bincount(task.skew_labels("test")).max() / task.num_examples("test")
    central = run_central(RunConfig(**{**base.to_dict(), "algorithm": "centralized"}), task)
    iid = run_fl(RunConfig(**{**base.to_dict(), "partition": "uniform"}), task)
    skew = run_fl(RunConfig(**{**base.to_dict(), "partition": "label", "alpha": 0.1}), task)
    return majority, central, iid, skew


def test_centralized_and_fedavg_iid_beat_the_majority_class(agnews_runs):
    majority, central, iid, _ = agnews_runs
    assert majority < 0.3  # AG News is balanced over 4 topics
    assert central["final"]["accuracy"] > majority + 0.3
    assert iid["final"]["accuracy"] > majority + 0.2


def test_label_skew_alpha_0_1_is_below_iid(agnews_runs):
    _, central, iid, skew = agnews_runs
    assert skew["final"]["accuracy"] < iid["final"]["accuracy"] - 0.05
    assert skew["partition"]["mean_pairwise_jsd"] > 10 * iid["partition"]["mean_pairwise_jsd"]
    assert iid["final"]["accuracy"] <= central["final"]["accuracy"] + 0.02


def test_real_runs_record_real_provenance(agnews_runs):
    _, central, iid, skew = agnews_runs
    assert iid["task"]["num_train"] == 2400 and iid["task"]["num_test"] == 800
    assert iid["task"]["data_fingerprint"] == central["task"]["data_fingerprint"]
    assert iid["partition"]["digest"] != skew["partition"]["digest"]
    assert central["config"]["epochs"] == pytest.approx(10 * 5 / 10)
