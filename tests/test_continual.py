"""Continual data: seeded per-client streams, a storage cap that deletes the oldest, runs that follow them."""
from __future__ import annotations

import numpy as np
import pytest

from fednlp_bench.config import RunConfig
from fednlp_bench.errors import UserError
from fednlp_bench.fl.continual import ContinualStreams

PARTS = [np.arange(0, 40), np.arange(40, 55), np.arange(55, 130)]


@pytest.mark.parametrize("cap", [None, 7])
def test_streams_respect_the_cap_and_keep_every_example_until_its_deletion_point(cap):
    s = ContinualStreams.build(PARTS, arrival_rounds=6, cap=cap, seed=3)
    for c, ids in enumerate(PARTS):
        assert sorted(s.orders[c].tolist()) == ids.tolist()  # a permutation of the client's data
        assert np.all(np.diff(s.arrivals[c]) >= 0) and s.arrivals[c].min() >= 1 and s.arrivals[c].max() <= 6
        for r in range(0, 9):
            held = s.held(c, r).tolist()
            if cap:
                assert len(held) <= cap
            # brute force: arrived by round r, and fewer than `cap` examples arrived after it (in stream order)
            arrived = [j for j in range(len(ids)) if s.arrivals[c][j] <= r]
            kept = [s.orders[c][j] for j in arrived if cap is None or len(arrived) - 1 - j < cap]
            assert held == kept
        assert s.held(c, 6).tolist() == (s.orders[c][-cap:] if cap else s.orders[c]).tolist()
        assert s.held(c, 0).size == 0  # nothing before the first round


def test_streams_are_seeded():
    a = ContinualStreams.build(PARTS, 5, 10, seed=1)
    b = ContinualStreams.build(PARTS, 5, 10, seed=1)
    c = ContinualStreams.build(PARTS, 5, 10, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a.orders, b.orders))
    assert not all(np.array_equal(x, y) for x, y in zip(a.orders, c.orders))
    assert a.activity(5).tolist() == [len(a.held(i, 5)) for i in range(3)]


def test_continual_run_trains_on_held_data_and_differs_from_static(tmp_path):
    from fednlp_bench.runner import run_fl

    base = dict(task="demo", max_train=300, max_test=60, clients=5, clients_per_round=2, rounds=3, seed=2,
                progress=False)
    static = run_fl(RunConfig(**base, output=str(tmp_path / "s")))
    cont = run_fl(RunConfig(**base, continual_rounds=3, storage_cap=20, selection="activity",
                            output=str(tmp_path / "c")))
    assert cont["config"]["continual_rounds"] == 3 and cont["config"]["storage_cap"] == 20
    # every round's clients are the activity draw over what the streams hold in that round
    from fednlp_bench.fl.simulation import choose_clients
    from fednlp_bench.runner import fl_config, make_partition_for, prepare

    rc, task = prepare(RunConfig(**base, continual_rounds=3, storage_cap=20, selection="activity",
                                 output=str(tmp_path / "x")))
    parts = make_partition_for(rc, task).train
    fl = fl_config(rc, parts)
    for point in cont["curve"]:
        r = point["round"]
        activity = fl.streams.activity(r)
        assert activity.max() <= 20
        assert point["clients"] == choose_clients(fl, activity, r, None).tolist()
        assert all(activity[c] > 0 for c in point["clients"])
    assert cont["final"] != static["final"]  # less data early on: a different model than the static run
    with pytest.raises(UserError, match="continual-rounds"):
        RunConfig(task="demo", storage_cap=5).validate()
