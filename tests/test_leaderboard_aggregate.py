"""Aggregation (leaderboard/aggregate.py) on hand-made result sets with known means, ratios and gaps."""
from __future__ import annotations

import json
import math
import random

import numpy as np
import pandas as pd
import pytest

from fednlp_bench.errors import UserError
from fednlp_bench.leaderboard.aggregate import (COLUMNS, aggregate, canonical_digests, load_results, read_table,
                                                write_table)
from leaderboard_factory import DIGEST, make_record, with_change

EXPECTED_COLUMNS = ["task", "family", "model", "profile", "partition", "partition_digest", "canonical", "method",
                    "algorithm", "metric", "n_seeds", "mean", "std", "ci95", "last20", "last20_ci95", "centralized", "reference",
                    "above_reference", "ratio", "gap", "rounds_to_90",
                    "client_p10", "client_std", "upload_bytes_per_round", "submitter", "track",
                    "selection", "data", "dp", "epsilon", "mia_auc", "attack", "attack_fraction"]
OTHER_DIGEST = "c" * 64
PROFILE = "tiny, 3 rounds, max_train all"


def result_set() -> list[dict]:
    fedavg = [make_record(seed=s, final=f, curve=c, client_p10=p, client_std=d, upload=1000, clients_per_round=5)
              for s, f, c, p, d in [(1, 0.6, [0.3, 0.86, 0.6], 0.3, 0.1),
                                    (2, 0.7, [0.9, 0.5, 0.7], 0.4, 0.2),
                                    (3, 0.8, [0.1, 0.2, 0.9], 0.5, 0.3)]]
    central = [make_record("centralized", seed=s, final=f, curve=[f / 2, f, f]) for s, f in [(1, 0.9), (2, 1.0)]]
    fedprox = [make_record(algorithm="fedprox", seed=1, final=0.5, curve=[0.2, 0.5, 0.5])]  # never reaches 0.855
    label = [make_record(partition="label", alpha=0.1, seed=s, final=0.4, digest=d, curve=[0.4, 0.4, 0.4])
             for s, d in [(1, DIGEST), (2, OTHER_DIGEST)]]
    other_model = [make_record(model="minilm", seed=1, final=0.3)]  # no centralized run with this model
    return fedavg + central + fedprox + label + other_model


def row(df: pd.DataFrame, **where) -> pd.Series:
    mask = np.ones(len(df), dtype=bool)
    for k, v in where.items():
        mask &= df[k].to_numpy() == v
    assert mask.sum() == 1, (where, df[list(where)])
    return df[mask].iloc[0]


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return aggregate(result_set(), canonical={DIGEST})


def test_columns_exact(table):
    assert list(table.columns) == EXPECTED_COLUMNS == list(COLUMNS)
    assert len(table) == 5  # fedavg and fedprox (uniform), centralized, fedavg on label skew, minilm fedavg


def test_fedavg_mean_std_ratio_gap(table):
    r = row(table, method="fedavg", partition="uniform", model="tiny")
    assert r["n_seeds"] == 3 and r["metric"] == "accuracy" and r["algorithm"] == "fedavg"
    assert r["mean"] == pytest.approx(0.7)
    assert r["std"] == pytest.approx(0.1)  # sample std (ddof=1) over seeds
    assert r["centralized"] == pytest.approx(0.95)
    assert r["ratio"] == pytest.approx(0.7 / 0.95)
    assert r["gap"] == pytest.approx(0.25)
    assert r["profile"] == PROFILE and r["submitter"] == "fednlp-bench"
    assert r["partition_digest"] == DIGEST and bool(r["canonical"]) is True


def test_rounds_to_90_from_curves(table):
    # target 0.9 * 0.95 = 0.855: seed 1 reaches it at round 2, seed 2 at round 1, seed 3 at round 3.
    assert row(table, method="fedavg", partition="uniform", model="tiny")["rounds_to_90"] == pytest.approx(2.0)
    assert math.isnan(row(table, method="fedprox")["rounds_to_90"])  # never reaches the target


def test_client_distribution_and_upload(table):
    r = row(table, method="fedavg", partition="uniform", model="tiny")
    assert r["client_p10"] == pytest.approx(0.4)
    assert r["client_std"] == pytest.approx(0.2)
    assert r["upload_bytes_per_round"] == 5000  # 1000 bytes per client per round x 5 clients per round


def test_centralized_row(table):
    r = row(table, method="centralized")
    assert r["partition"] == "all" and r["partition_digest"] == "" and bool(r["canonical"]) is True
    assert r["n_seeds"] == 2 and r["mean"] == pytest.approx(0.95) and r["std"] == pytest.approx(np.std([0.9, 1.0], ddof=1))
    assert r["centralized"] == pytest.approx(0.95) and r["ratio"] == 1.0 and r["gap"] == 0.0
    assert math.isnan(r["client_p10"]) and math.isnan(r["client_std"]) and r["upload_bytes_per_round"] == 0
    assert math.isnan(r["rounds_to_90"])  # a centralized curve counts epochs (validation ones when converged)


def test_single_seed_std_zero(table):
    r = row(table, method="fedprox")
    assert r["n_seeds"] == 1 and r["std"] == 0.0 and r["mean"] == pytest.approx(0.5)
    assert r["ratio"] == pytest.approx(0.5 / 0.95) and r["gap"] == pytest.approx(0.45)


def test_non_canonical_digest_and_mixed_digests(table):
    r = row(table, partition="niid_label_clients=10_alpha=0.1")
    assert r["partition_digest"] == f"{DIGEST},{OTHER_DIGEST}"
    assert bool(r["canonical"]) is False  # one of the seeds' partitions is not canonical


def test_no_centralized_gives_nan(table):
    r = row(table, model="minilm")
    assert r["profile"] == "minilm, 3 rounds, max_train all"
    assert all(math.isnan(r[c]) for c in ("centralized", "ratio", "gap", "rounds_to_90"))
    assert r["mean"] == pytest.approx(0.3)


def test_centralized_matches_profile_and_fingerprint():
    fed = make_record(final=0.5, max_train=100)
    other_profile = make_record("centralized", final=1.0)  # max_train all: another profile
    other_data = make_record("centralized", final=1.0, max_train=100, fingerprint="d" * 64)
    df = aggregate([fed, other_profile, other_data], canonical=set())
    assert math.isnan(row(df, method="fedavg")["centralized"])
    same = make_record("centralized", final=0.8, max_train=100)
    df = aggregate([fed, other_profile, other_data, same], canonical=set())
    assert row(df, method="fedavg")["centralized"] == pytest.approx(0.8)


def test_duplicate_seeds_are_averaged_first():
    runs = [make_record(seed=1, final=0.4), make_record(seed=1, final=0.6), make_record(seed=2, final=0.8)]
    r = row(aggregate(runs, canonical=set()), method="fedavg")
    assert r["n_seeds"] == 2 and r["mean"] == pytest.approx(0.65) and r["std"] == pytest.approx(np.std([0.5, 0.8], ddof=1))


def test_submission_metadata():
    subs = [{"submission": {"submitter": s, "method": "fedavg-tuned", "profile": "paper"}, "result": make_record(seed=i)}
            for i, s in [(1, "lab-b"), (2, "lab-a")]]
    cen = {"submission": {"submitter": "lab-a", "method": "centralized", "profile": "paper"},
           "result": make_record("centralized", final=0.875)}
    df = aggregate(subs + [cen], canonical={DIGEST})
    r = row(df, method="fedavg-tuned")
    assert r["submitter"] == "lab-a, lab-b" and r["algorithm"] == "fedavg" and r["profile"] == "paper"
    assert r["centralized"] == pytest.approx(0.875) and r["ratio"] == pytest.approx(0.7 / 0.875)


def test_order_independent_and_sorted():
    records = result_set()
    expected = aggregate(records, canonical={DIGEST})
    random.Random(0).shuffle(records)
    pd.testing.assert_frame_equal(aggregate(records, canonical={DIGEST}), expected)
    keys = list(zip(*(expected[c] for c in ["family", "task", "model", "profile", "partition", "method"])))
    assert keys == sorted(keys)


def test_families_use_primary_metric():
    runs = [make_record(task="wnut17", family="sequence_tagging", final=0.3),
            make_record(task="samsum", family="seq2seq", final=0.2),
            make_record(task="squad", family="extractive_qa", final=0.1)]
    df = aggregate(runs, canonical=set())
    assert dict(zip(df["task"], df["metric"])) == {"wnut17": "f1", "samsum": "rougeL", "squad": "f1"}
    assert list(df["family"]) == ["extractive_qa", "seq2seq", "sequence_tagging"]


def test_empty_input():
    df = aggregate([], canonical=set())
    assert list(df.columns) == EXPECTED_COLUMNS and len(df) == 0


def test_invalid_record_raises():
    with pytest.raises(UserError, match="record 1: invalid result"):
        aggregate([make_record(), with_change(make_record(), "final.accuracy", math.nan)], canonical=set())


def test_canonical_digests(tmp_path):
    (tmp_path / "partition").mkdir()
    (tmp_path / "partition" / "a.yaml").write_text(f"task: demo\nmethod: uniform\nexpected_digest: {DIGEST}\n")
    (tmp_path / "partition" / "b.yaml").write_text("task: demo\nmethod: uniform\n")
    assert canonical_digests(tmp_path) == {DIGEST}
    assert canonical_digests(tmp_path / "partition") == {DIGEST}  # the folder itself works too
    assert canonical_digests(tmp_path / "nowhere") == frozenset()
    # the repository's own canonical recipes
    assert "9481a55a599b386964614c0b83adb07d3195a10e572351cc5a6fc0049efdac0d" in canonical_digests()


def test_load_results_files_and_folders(tmp_path):
    runs = tmp_path / "runs"
    (runs / "nested").mkdir(parents=True)
    (runs / "a.json").write_text(json.dumps(make_record(seed=1)))
    (runs / "nested" / "b.json").write_text(json.dumps(
        {"submission": {"submitter": "me", "method": "m", "profile": "p"}, "result": make_record(seed=2)}))
    (runs / ".a.json.tmp123").write_text("partial")
    (runs / ".hidden.json").write_text("{")
    (runs / "a.png").write_bytes(b"\x89PNG")
    single = tmp_path / "c.json"
    single.write_text(json.dumps(make_record("centralized")))
    subs = load_results([runs, single])
    assert [s["result"]["seed"] for s in subs] == [1, 2, 42]
    assert [s["submission"]["submitter"] for s in subs] == ["fednlp-bench", "me", "fednlp-bench"]
    assert len(aggregate(subs, canonical=set())) == 3


def test_load_results_names_the_bad_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match=f"^{bad}: not valid JSON"):
        load_results([tmp_path])
    bad.write_text(json.dumps(with_change(make_record(), "config.clients_per_round", 99)))
    with pytest.raises(UserError, match=f"^{bad}: invalid result: config.clients_per_round 99"):
        load_results([bad])
    with pytest.raises(UserError, match="result path not found"):
        load_results([tmp_path / "missing"])


def test_write_table_round_trips(tmp_path, table):
    csv_path, parquet_path = write_table(table, tmp_path / "board")
    assert (csv_path.name, parquet_path.name) == ("results.csv", "results.parquet")
    for path in (csv_path, parquet_path):
        back = read_table(path)
        pd.testing.assert_frame_equal(back, table, check_dtype=False, check_exact=True)
        assert [str(back[c].dtype) for c in ("canonical", "n_seeds", "mean", "upload_bytes_per_round")] == [
            "bool", "int64", "float64", "int64"]
    # plain pandas readers give the same frame too (parquet keeps dtypes exactly)
    pd.testing.assert_frame_equal(pd.read_parquet(parquet_path), table)
    text = csv_path.read_text()
    assert text.splitlines()[0] == ",".join(EXPECTED_COLUMNS)
    # shortest repr, NaN empty; ci95 = t(0.975, 1) * std / sqrt(2)
    assert ",accuracy,2,0.95,0.07071067811865474,0.635310" in text
    assert ",0.95,converged,False,1.0,0.0,,,,0," in text  # no rounds to 90% for a centralized row


def test_write_table_is_byte_identical(tmp_path, table):
    a = write_table(table, tmp_path / "a")
    b = write_table(aggregate(result_set(), canonical={DIGEST}), tmp_path / "b")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["results.csv", "results.parquet"]  # no temp files


def test_stored_canonical_flag_is_used_without_a_digest_set():
    def sub(seed: int, flag: bool) -> dict:
        return {"submission": {"submitter": "s", "method": "fedavg", "profile": "p", "canonical": flag,
                               "content_hash": "0" * 64}, "result": make_record(seed=seed, digest=OTHER_DIGEST)}
    assert bool(aggregate([sub(1, True), sub(2, True)])["canonical"].iloc[0]) is True
    assert bool(aggregate([sub(1, True), sub(2, False)])["canonical"].iloc[0]) is False
    # an explicit digest set wins over the stored flag
    assert bool(aggregate([sub(1, True)], canonical={DIGEST})["canonical"].iloc[0]) is False
    # bare runs without a set: the repository's partition/ recipes decide (the factory digest is not one of them)
    assert bool(aggregate([make_record()])["canonical"].iloc[0]) is False


def test_default_profile_reexported():
    from fednlp_bench.leaderboard.aggregate import default_profile

    assert default_profile(make_record(model="minilm", rounds=50, max_train=2000)) == "minilm, 50 rounds, max_train 2000"


# --------------------------------------------------------------------- intervals, references, the above flag
def test_ci95_is_the_t_interval_of_the_seed_mean(table):
    r = row(table, method="fedavg", partition="uniform", model="tiny")
    # seeds 0.6, 0.7, 0.8: std 0.1, t(0.975, 2) = 4.302653 -> 4.302653 * 0.1 / sqrt(3)
    assert r["ci95"] == pytest.approx(4.302653 * 0.1 / math.sqrt(3), rel=1e-6)
    assert math.isnan(row(table, method="fedprox")["ci95"])  # one seed: no interval
    central = row(table, method="centralized")
    assert central["ci95"] == pytest.approx(12.706205 * np.std([0.9, 1.0], ddof=1) / math.sqrt(2), rel=1e-6)


def test_last20_averages_the_last_fifth_of_rounds_per_seed_then_over_seeds():
    from fednlp_bench.leaderboard.aggregate import last_window_mean

    # 10 rounds: the window is rounds 9 and 10 (> 0.8 x 10); an oscillating tail is averaged, the head ignored
    curves = {1: [0.1] * 8 + [0.9, 0.5], 2: [0.2] * 8 + [0.6, 0.8], 3: [0.3] * 8 + [0.7, 0.7]}
    recs = [make_record(seed=s, final=c[-1], curve=c, rounds=10) for s, c in curves.items()]
    recs += [make_record("centralized", seed=s, final=0.8, rounds=10) for s in (1, 2)]
    df = aggregate(recs, canonical={DIGEST})
    fed = row(df, method="fedavg")
    assert fed["mean"] == pytest.approx((0.5 + 0.8 + 0.7) / 3)  # the final evaluations
    assert fed["last20"] == pytest.approx(0.7)  # per seed 0.7, 0.7, 0.7
    assert fed["last20_ci95"] == pytest.approx(0.0, abs=1e-12)
    assert fed["ratio"] == pytest.approx(fed["mean"] / 0.8)  # ratio and gap stay on the final metric
    central = row(df, method="centralized")
    assert math.isnan(central["last20"]) and math.isnan(central["last20_ci95"])  # the best epoch, not a window
    # a curve evaluated every 5 rounds of 100: rounds 85..100 are the window, round 80 is not
    curve = [{"round": r, "metrics": {"accuracy": 0.5 if r <= 80 else r / 100}} for r in range(5, 101, 5)]
    assert last_window_mean(curve, "accuracy") == pytest.approx(np.mean([0.85, 0.9, 0.95, 1.0]))
    assert last_window_mean(curve[:1], "accuracy") == pytest.approx(0.5)  # one point: itself
    assert math.isnan(last_window_mean([], "accuracy"))


def _flag_set(fed_finals, central_finals, central_kind=True):
    recs = [make_record("centralized", seed=s, final=f, converged=central_kind) for s, f in central_finals]
    recs += [make_record(seed=s, final=f, curve=[f, f, f]) for s, f in fed_finals]
    return aggregate(recs, canonical={DIGEST})


def test_a_federated_row_above_its_reference_by_more_than_its_interval_is_flagged():
    df = _flag_set([(1, 0.90), (2, 0.91), (3, 0.92)], [(1, 0.80), (2, 0.81), (3, 0.82)])
    fed = row(df, method="fedavg")
    assert fed["reference"] == "converged" and fed["mean"] - fed["centralized"] > fed["ci95"]
    assert bool(fed["above_reference"]) is True and fed["ratio"] > 1
    # above, but within its own interval: not flagged
    df = _flag_set([(1, 0.70), (2, 0.95), (3, 0.88)], [(1, 0.84), (2, 0.84), (3, 0.84)])
    fed = row(df, method="fedavg")
    assert fed["mean"] > fed["centralized"] and bool(fed["above_reference"]) is False
    # below: never flagged; the reference row itself is never flagged
    df = _flag_set([(1, 0.70), (2, 0.71), (3, 0.72)], [(1, 0.84), (2, 0.85), (3, 0.86)])
    assert not df["above_reference"].any()


def test_the_converged_reference_wins_over_a_same_budget_run():
    recs = [make_record("centralized", seed=1, final=0.9), make_record("centralized", seed=1, final=0.6,
                                                                       converged=False),
            make_record(seed=1, final=0.7)]
    df = aggregate(recs, canonical={DIGEST})
    fed = row(df, method="fedavg")
    assert fed["centralized"] == pytest.approx(0.9) and fed["reference"] == "converged"
    budget = row(df, method="centralized (same budget)")
    # the same-budget row is a second, named reference, itself compared with the converged one
    assert budget["reference"] == "converged" and budget["ratio"] == pytest.approx(0.6 / 0.9)
    # without a converged run, the same-budget one is the reference, and the row says so
    df = aggregate(recs[1:], canonical={DIGEST})
    fed = row(df, method="fedavg")
    assert fed["centralized"] == pytest.approx(0.6) and fed["reference"] == "same budget"
