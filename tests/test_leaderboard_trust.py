"""The trustworthy-FL view of the leaderboard: method names carry selection / continual / DP settings, the
epsilon and MIA AUC columns, the "Trustworthy FL" section of the board, and lower-is-better metrics (perplexity)."""
from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pandas as pd
import pytest
from leaderboard_factory import DIGEST, make_record

from fednlp_bench.leaderboard.aggregate import aggregate, read_table, write_table
from fednlp_bench.leaderboard.render import build_board
from fednlp_bench.leaderboard.schema import default_method, run_settings, validate_result
from fednlp_bench.leaderboard.submit import check_label

REPO = Path(__file__).resolve().parents[1]
CLIENT_DP = {"dp_clip": 0.5, "dp_noise_multiplier": 0.3, "dp_delta": 1e-5}
EXAMPLE_DP = {"dp_sgd_clip": 1.0, "dp_sgd_noise_multiplier": 1.0}


def client_privacy(eps: float) -> dict:
    return {"level": "client", "mechanism": "DP-FedAvg", "clip": 0.5, "noise_multiplier": 0.3, "sample_rate": 0.5,
            "rounds": 3, "delta": 1e-5, "epsilon": eps, "accountant": "opacus.accountants.RDPAccountant"}


def row(df: pd.DataFrame, **where) -> pd.Series:
    mask = pd.Series(True, index=df.index)
    for k, v in where.items():
        mask &= df[k] == v
    assert mask.sum() == 1, (where, df[list(where)])
    return df[mask].iloc[0]


# ------------------------------------------------------------------------------------------ method names

@pytest.mark.parametrize("kwargs, expected", [
    ({}, "fedavg"),
    ({"algorithm": "fedprox"}, "fedprox"),
    ({"settings": {"selection": "uniform", "selection_candidates": None, "continual_rounds": None,
                   "storage_cap": None, "dp_clip": None, "dp_noise_multiplier": 0.0, "mia": False}}, "fedavg"),
    ({"settings": {"selection": "activity"}}, "fedavg+activity"),
    ({"clients_per_round": 4, "settings": {"selection": "power_of_choice"}}, "fedavg+power_of_choice(d=8)"),
    ({"clients_per_round": 4, "settings": {"selection": "power_of_choice", "selection_candidates": 6}},
     "fedavg+power_of_choice(d=6)"),
    ({"clients": 6, "clients_per_round": 4, "settings": {"selection": "power_of_choice"}},
     "fedavg+power_of_choice(d=6)"),  # d = 2 x 4 capped at the 6 clients, as fl/selection.py draws it
    ({"settings": {"continual_rounds": 4, "storage_cap": 40}}, "fedavg+continual(A=4,cap=40)"),
    ({"settings": {"continual_rounds": 4}}, "fedavg+continual(A=4)"),
    ({"settings": CLIENT_DP, "privacy": client_privacy(2.0)}, "fedavg+dp-client(z=0.3,S=0.5)"),
    ({"settings": EXAMPLE_DP, "privacy": {"level": "example", "epsilon": 7.5}}, "fedavg+dp-example(z=1.0,C=1.0)"),
    # an example-level DP run whose config does not name the settings: the privacy block does
    ({"privacy": {"level": "example", "epsilon": 7.5, "noise_multiplier": 1.1, "clip": 2.0}},
     "fedavg+dp-example(z=1.1,C=2.0)"),
    ({"algorithm": "fedopt", "settings": {"selection": "activity", "continual_rounds": 3, "storage_cap": 10,
                                          "dp_sgd_clip": 0.5, "dp_sgd_noise_multiplier": 0.8}},
     "fedopt+activity+continual(A=3,cap=10)+dp-example(z=0.8,C=0.5)"),
    ({"mia_auc": 0.61, "settings": {"mia": True}}, "fedavg"),  # the audit does not change training
])
def test_default_method_names_the_non_default_settings(kwargs, expected):
    record = make_record(**kwargs)
    assert validate_result(record) == []
    assert default_method(record) == expected
    assert check_label(expected, "method") == expected  # a default name is always a valid board label


def test_centralized_method_names():
    assert default_method(make_record("centralized")) == "centralized"
    assert default_method(make_record("centralized", mia_auc=0.7)) == "centralized"
    dp = make_record("centralized", settings=EXAMPLE_DP, privacy={"level": "example", "epsilon": 3.0})
    assert default_method(dp) == "centralized+dp-example(z=1.0,C=1.0)"
    assert run_settings(dp)["selection"] == "" and run_settings(dp)["dp"] == "example"


def test_old_records_keep_their_names_and_settings_default():
    old = make_record()
    assert not {"selection", "continual_rounds", "dp_clip", "mia"} & set(old["config"])
    assert "privacy" not in old and "membership_inference" not in old
    assert default_method(old) == "fedavg"
    s = run_settings(old)
    assert (s["selection"], s["data"], s["dp"], s["tags"]) == ("uniform", "static", "none", [])
    assert math.isnan(s["epsilon"]) and math.isnan(s["mia_auc"])
    # privacy: null and membership_inference: null, as run_fl writes them without DP or --mia
    nulls = {**old, "privacy": None, "membership_inference": None}
    assert validate_result(nulls) == [] and default_method(nulls) == "fedavg"


def test_a_config_with_every_current_default_is_plain_fedavg():
    from fednlp_bench.config import RunConfig

    record = make_record()
    defaults = {k: v for k, v in RunConfig().to_dict().items() if k not in record["config"]}
    assert "selection" in defaults and "dp_clip" in defaults  # the keys a current run writes
    new = make_record(settings=defaults)
    new["privacy"], new["membership_inference"] = None, None  # what run_fl writes without DP or --mia
    assert validate_result(new) == [] and default_method(new) == "fedavg"


def test_shipped_submissions_keep_their_method_names():
    files = sorted((REPO / "leaderboard" / "submissions").glob("*.json"))
    if not files:
        pytest.skip("no leaderboard/submissions in this checkout")
    for path in files:
        doc = json.loads(path.read_text())
        assert default_method(doc["result"]) == doc["submission"]["method"], path.name


def test_malformed_privacy_and_mia_blocks_are_rejected():
    assert any("privacy.level" in p for p in validate_result(make_record(privacy={"level": "server", "epsilon": 1.0})))
    assert any("privacy.epsilon" in p for p in validate_result(make_record(privacy={"level": "client", "epsilon": -1})))
    assert any("membership_inference.auc" in p for p in validate_result(make_record(mia_auc=1.5)))
    assert validate_result(make_record(privacy=client_privacy(math.inf))) == []  # z = 0: no formal guarantee


def test_epsilon_written_as_null_is_infinite():
    # results.write_result stores a non-finite epsilon (noise multiplier 0) as null
    zero_noise = make_record(settings={"dp_clip": 1.0, "dp_noise_multiplier": 0.0},
                             privacy={"level": "client", "noise_multiplier": 0.0, "clip": 1.0, "epsilon": None})
    assert validate_result(zero_noise) == []
    assert math.isinf(run_settings(zero_noise)["epsilon"])
    no_block = make_record(settings={"dp_clip": 1.0, "dp_noise_multiplier": 0.5})  # DP config, no privacy block
    assert run_settings(no_block)["dp"] == "client" and math.isnan(run_settings(no_block)["epsilon"])
    assert math.isnan(run_settings(make_record(privacy=None))["epsilon"])


# --------------------------------------------------------------------------------------------- columns

def trust_records() -> list[dict]:
    """demo: default FedAvg, activity selection, continual data, client-level DP (epsilon 2 and 4), MIA on the
    default run of seed 1 only; a centralized baseline; wnut17: default runs only."""
    recs = []
    for seed, final in ((1, 0.6), (2, 0.8)):
        recs.append(make_record(seed=seed, final=final, client_p10=0.3, client_std=0.1,
                                mia_auc=0.62 if seed == 1 else None))
        recs.append(make_record(seed=seed, final=final - 0.2, client_p10=0.2, client_std=0.15,
                                settings={**CLIENT_DP, "mia": True}, privacy=client_privacy(2.0 * seed),
                                mia_auc=0.5 + 0.05 * seed))
        recs.append(make_record(seed=seed, final=final - 0.1, client_p10=0.25, client_std=0.12,
                                settings={"selection": "activity"}))
        recs.append(make_record(seed=seed, final=final - 0.05, client_p10=0.28, client_std=0.11,
                                settings={"continual_rounds": 4, "storage_cap": 40}))
        recs.append(make_record("centralized", seed=seed, final=0.9))
        recs.append(make_record(task="wnut17", family="sequence_tagging", seed=seed, final=0.3))
    return recs


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return aggregate(trust_records(), canonical={DIGEST})


def test_runs_with_other_settings_are_separate_rows(table):
    demo = table[table.task == "demo"]
    assert sorted(demo["method"]) == ["centralized", "fedavg", "fedavg+activity", "fedavg+continual(A=4,cap=40)",
                                      "fedavg+dp-client(z=0.3,S=0.5)"]
    assert set(demo["n_seeds"]) == {2}
    assert row(table, method="fedavg", task="demo")["mean"] == pytest.approx(0.7)
    assert row(table, method="fedavg+dp-client(z=0.3,S=0.5)")["mean"] == pytest.approx(0.5)


def test_selection_data_dp_columns(table):
    got = {m: (row(table, method=m, task="demo")[["selection", "data", "dp"]].tolist())
           for m in ("fedavg", "fedavg+activity", "fedavg+continual(A=4,cap=40)", "fedavg+dp-client(z=0.3,S=0.5)",
                     "centralized")}
    assert got == {"fedavg": ["uniform", "static", "none"], "fedavg+activity": ["activity", "static", "none"],
                   "fedavg+continual(A=4,cap=40)": ["uniform", "continual", "none"],
                   "fedavg+dp-client(z=0.3,S=0.5)": ["uniform", "static", "client"],
                   "centralized": ["", "static", "none"]}


def test_epsilon_and_mia_auc_columns(table):
    dp = row(table, method="fedavg+dp-client(z=0.3,S=0.5)")
    assert dp["epsilon"] == pytest.approx(3.0)  # mean of 2.0 and 4.0 over the two seeds
    assert dp["mia_auc"] == pytest.approx(0.575)  # mean of 0.55 and 0.60
    assert dp["client_p10"] == pytest.approx(0.2) and dp["client_std"] == pytest.approx(0.15)
    default = row(table, method="fedavg", task="demo")
    assert math.isnan(default["epsilon"])
    assert default["mia_auc"] == pytest.approx(0.62)  # only seed 1 ran the audit
    for method in ("fedavg+activity", "fedavg+continual(A=4,cap=40)", "centralized"):
        r = row(table, method=method, task="demo")
        assert math.isnan(r["epsilon"]) and math.isnan(r["mia_auc"]), method
    assert table[table.task == "wnut17"][["epsilon", "mia_auc"]].isna().all().all()


def test_a_shared_custom_method_name_does_not_merge_different_settings():
    subs = [{"submission": {"submitter": "lab", "method": "ours", "profile": "p"}, "result": r}
            for r in (make_record(seed=1, final=0.6), make_record(seed=1, final=0.4, settings={"selection": "activity"}))]
    df = aggregate(subs, canonical={DIGEST})
    assert len(df) == 2 and list(df["method"]) == ["ours", "ours"]
    assert sorted(zip(df["selection"], df["mean"])) == [("activity", pytest.approx(0.4)), ("uniform", pytest.approx(0.6))]


def test_a_private_centralized_run_is_not_the_baseline():
    recs = [make_record(final=0.6), make_record("centralized", final=0.8),
            make_record("centralized", final=0.4, settings=EXAMPLE_DP, privacy={"level": "example", "epsilon": 5.0})]
    df = aggregate(recs, canonical={DIGEST})
    assert row(df, method="fedavg")["centralized"] == pytest.approx(0.8)
    dp = row(df, method="centralized+dp-example(z=1.0,C=1.0)")
    assert dp["centralized"] == pytest.approx(0.8) and dp["ratio"] == pytest.approx(0.5) and dp["epsilon"] == 5.0
    assert row(df, method="centralized")["ratio"] == 1.0


def test_csv_and_parquet_round_trip_with_the_new_columns(tmp_path, table):
    inf = aggregate([make_record(settings={"dp_clip": 1.0, "dp_noise_multiplier": 0.0},
                                 privacy={"level": "client", "epsilon": None})], canonical={DIGEST})
    df = pd.concat([table, inf], ignore_index=True)
    csv_path, parquet_path = write_table(df, tmp_path)
    header = csv_path.read_text().splitlines()[0].split(",")
    assert header[-7:] == ["selection", "data", "dp", "epsilon", "mia_auc", "attack", "attack_fraction"]
    for path in (csv_path, parquet_path):
        back = read_table(path)
        pd.testing.assert_frame_equal(back, df, check_dtype=False, check_exact=True)
        assert [str(back[c].dtype) for c in ("epsilon", "mia_auc")] == ["float64", "float64"]
        assert back.loc[back["method"] == "centralized", "selection"].tolist() == [""]  # not NaN
        assert math.isinf(back.loc[back["method"] == "fedavg+dp-client(z=0.0,S=1.0)", "epsilon"].iloc[0])


def test_record_order_does_not_matter():
    recs = trust_records()
    expected = aggregate(recs, canonical={DIGEST})
    random.Random(1).shuffle(recs)
    pd.testing.assert_frame_equal(aggregate(recs, canonical={DIGEST}), expected)


# --------------------------------------------------------------------------------------- the board section

def _lines_with(md: str, text: str) -> list[str]:
    return [ln for ln in md.splitlines() if text in ln]


def test_trustworthy_section_lists_fairness_and_privacy(tmp_path, table):
    out = tmp_path / "board"
    paths = build_board(table, trust_records(), out)
    md = (out / "README.md").read_text(encoding="utf-8")
    assert md.count("## Trustworthy FL\n") == 1
    section = md[md.index("## Trustworthy FL"):md.index("## Provenance")]
    assert "### demo: fairness and privacy" in section and "wnut17" not in section  # wnut17: defaults only
    header = _lines_with(section, "| partition | method |")[0]
    for h in ("selection", "data", "DP", "accuracy (mean ± std)", "client p10", "client std", "ε", "MIA AUC"):
        assert f"| {h} |" in header, h
    dp = _lines_with(section, "| fedavg+dp-client(z=0.3,S=0.5) |")[0]
    assert dp == ("| uniform | fedavg+dp-client(z=0.3,S=0.5) | uniform | static | client | 0.5000 ± 0.1414 (n=2) "
                  "| 0.2000 | 0.1500 | 3.00 | 0.575 | tiny, 3 rounds, max\\_train all |")
    default = _lines_with(section, "| uniform | fedavg | uniform |")[0]
    assert "| 0.3000 | 0.1000 | — | 0.620 |" in default
    assert "| continual |" in _lines_with(section, "fedavg+continual(A=4,cap=40)")[0]
    # rows best first within the partition; the centralized row (partition "all", no MIA or DP) is left out
    methods = [ln.split(" | ")[1] for ln in section.splitlines() if ln.startswith("| ") and "---" not in ln][1:]
    assert methods == ["fedavg", "fedavg+continual(A=4,cap=40)", "fedavg+activity", "fedavg+dp-client(z=0.3,S=0.5)"]
    assert "](plots/trustworthy.png)" in section
    png = out / "plots" / "trustworthy.png"
    assert png in [Path(p) for p in paths] and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "index.html").read_text(encoding="utf-8")
    assert '<h2 id="trustworthy-fl">Trustworthy FL</h2>' in page and "plots/trustworthy.png" in page
    assert page.count('<table class="board">') == 4  # demo, wnut17, the demo section table, provenance
    assert '<td class="num" data-sort="3.0">3.00</td>' in page


def test_section_only_with_trustworthy_runs(tmp_path):
    defaults = [r for r in trust_records() if "selection" not in r["config"] and "dp_clip" not in r["config"]
                and "continual_rounds" not in r["config"] and "membership_inference" not in r]
    df = aggregate(defaults, canonical={DIGEST})
    assert set(df["method"]) == {"fedavg", "centralized"}
    out = tmp_path / "board"
    build_board(table_with_trust := aggregate(trust_records(), canonical={DIGEST}), trust_records(), out)
    assert (out / "plots" / "trustworthy.png").is_file()
    build_board(df, defaults, out)  # rebuilt without them: the section and its plot are gone
    assert "Trustworthy" not in (out / "README.md").read_text() and "Trustworthy" not in (out / "index.html").read_text()
    assert not (out / "plots" / "trustworthy.png").exists()
    # one run with the membership-inference audit is enough to show it
    mia_only = defaults + [make_record(seed=3, final=0.7, mia_auc=0.58)]
    build_board(aggregate(mia_only, canonical={DIGEST}), mia_only, out)
    md = (out / "README.md").read_text()
    assert "## Trustworthy FL" in md and "| 0.580 |" in md
    assert len(table_with_trust) > len(df)


def test_an_infinite_epsilon_shows_as_infinity(tmp_path):
    recs = [make_record(final=0.7), make_record(final=0.5, settings={"dp_clip": 1.0, "dp_noise_multiplier": 0.0},
                                                  privacy={"level": "client", "epsilon": None})]
    build_board(aggregate(recs, canonical={DIGEST}), recs, tmp_path)
    line = _lines_with((tmp_path / "README.md").read_text(), "| uniform | fedavg+dp-client(z=0.0,S=1.0) |")[0]
    assert "| ∞ | — |" in line
    assert 'data-sort="1e308">∞</td>' in (tmp_path / "index.html").read_text()


def test_section_is_deterministic(tmp_path):
    recs = trust_records()
    a, b = tmp_path / "a", tmp_path / "b"
    build_board(aggregate(recs, canonical={DIGEST}), recs, a)
    shuffled = recs[::-1]
    df = aggregate(shuffled, canonical={DIGEST}).sample(frac=1.0, random_state=2).reset_index(drop=True)
    build_board(df, shuffled, b)
    for name in ("README.md", "index.html", "plots/trustworthy.png"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


# -------------------------------------------------------------------------------- lower-is-better metrics

def lm(kind="federated", **kw) -> dict:
    return make_record(kind, task="wikitext", family="language_modeling", **kw)


def test_language_modeling_records_are_valid():
    assert validate_result(lm(final=87.0, curve=[300.0, 120.0, 87.0])) == []  # perplexity is not a fraction
    assert validate_result(lm("centralized", final=20.0)) == []
    assert any("is negative" in p for p in validate_result(lm(final=-1.0)))
    bad = lm()
    bad["task"]["metric_names"] = ["loss"]
    assert any("do not match family language_modeling" in p for p in validate_result(bad))


def perplexity_records() -> list[dict]:
    # centralized 18 and 22 -> 20; the target of rounds_to_90 is 20 / 0.9 = 22.2
    return [lm("centralized", seed=1, final=18.0, curve=[40.0, 18.0], rounds=4),
            lm("centralized", seed=2, final=22.0, curve=[40.0, 22.0], rounds=4),
            lm(seed=1, final=24.0, curve=[60.0, 30.0, 22.0, 24.0], rounds=4),   # reaches 22.2 at round 3
            lm(seed=2, final=26.0, curve=[60.0, 22.2, 21.0, 26.0], rounds=4),   # at round 2
            lm(algorithm="fedprox", seed=1, final=30.0, curve=[60.0, 40.0, 30.0, 30.0], rounds=4, client_p10=0.2)]  # never


def test_lower_is_better_ratio_gap_rounds_to_90():
    df = aggregate(perplexity_records(), canonical={DIGEST})
    fed = row(df, method="fedavg")
    assert fed["metric"] == "perplexity" and fed["mean"] == pytest.approx(25.0)
    assert fed["centralized"] == pytest.approx(20.0)
    assert fed["ratio"] == pytest.approx(20.0 / 25.0)  # centralized / federated: < 1 is worse
    assert fed["gap"] == pytest.approx(5.0)  # federated - centralized: positive is worse
    assert fed["rounds_to_90"] == pytest.approx(2.5)  # mean of rounds 3 and 2
    prox = row(df, method="fedprox")
    assert prox["ratio"] == pytest.approx(20.0 / 30.0) and prox["gap"] == pytest.approx(10.0)
    assert math.isnan(prox["rounds_to_90"])  # its best perplexity 30 never gets to 22.2
    cen = row(df, method="centralized")
    assert cen["ratio"] == 1.0 and cen["gap"] == 0.0 and math.isnan(cen["rounds_to_90"])  # federated rows only


def test_render_puts_the_lowest_perplexity_first(tmp_path):
    recs = perplexity_records()
    df = aggregate(recs, canonical={DIGEST})
    out = tmp_path / "board"
    build_board(df, recs, out)
    md = (out / "README.md").read_text(encoding="utf-8")
    assert "## Language modelling" in md and "perplexity is lower-is-better" in md.lower()
    section = md[md.index("### wikitext"):md.index("## Provenance")]
    table = [ln for ln in section.splitlines() if ln.startswith("| ")][1:]
    assert [ln.split(" | ")[0].lstrip("| ") for ln in table] == ["centralized", "fedavg", "fedprox"]
    # mean ± the 95% interval of 2 seeds (std 1.4142: t(0.975, 1) * 1.4142 / sqrt(2) = 12.7062), n, ratio, gap
    assert "| 25.0000 ± 12.7062 | 2 |" in table[1] and "| 0.800 |" in table[1] and "| 5.0000 |" in table[1]
    # higher-is-better tasks keep the highest first
    acc = [make_record(final=0.5), make_record(algorithm="fedprox", final=0.7)]
    build_board(aggregate(acc, canonical={DIGEST}), acc, tmp_path / "acc")
    acc_md = (tmp_path / "acc" / "README.md").read_text()
    assert acc_md.index("| fedprox |") < acc_md.index("| fedavg |") and "lower-is-better" not in acc_md
