"""Reproduction of the board's tables: profiles in the cards, the run plan, resuming, the scripts, canonical recipes."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from fednlp_bench.cli import build_parser, config_from_args, main
from fednlp_bench.errors import UserError
from fednlp_bench.partition.recipe import load_recipe
from fednlp_bench.reproduce import TRUST_VARIANTS, finished_runs, plan_runs, reproduce, write_recipes
from fednlp_bench.tasks import TASKS, get_spec
from fednlp_bench.tasks.cards import load_card
from fednlp_bench.tasks.profiles import DEFAULT_PARTITIONS, parse_partition, profile_plan, profile_settings

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FEDNLP_SHARED_DATA", ROOT.parent / "shared" / "data"))
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"real data not found at {SHARED} "
                                  "(set FEDNLP_SHARED_DATA to ../shared/data)")
TABLES = ("text_classification", "sequence_tagging", "extractive_qa", "seq2seq", "language_modeling")
OFFLINE_MODELS = ("tiny", "minilm")


# ----------------------------------------------------------------------------------------- profiles in the cards
def test_every_table_has_a_smoke_task_with_an_offline_model_and_local_data():
    for table in TABLES:
        smoke = [s for s in TASKS.values() if s.family == table and "smoke" in s.profiles]
        assert smoke, table
        for spec in smoke:
            settings = profile_settings(spec, "smoke", "fedavg")
            assert settings.get("model", spec.default_model) in OFFLINE_MODELS, spec.name
            assert spec.local_train, f"{spec.name}: a smoke task must read local files (DATA_DIR)"
            for algo in ("centralized", "fedavg", "fedprox", "fedopt"):  # every algorithm has tuned settings
                s = profile_settings(spec, "smoke", algo)
                assert s["client_optimizer"] in ("sgd", "adamw") and s["client_lr"] > 0, (spec.name, algo)
            assert profile_settings(spec, "smoke", "fedprox")["mu"] > 0


def test_full_profile_starts_from_fednlp_settings_and_the_paper_model():
    spec = get_spec("sst2")
    fedavg = profile_settings(spec, "full", "fedavg")
    assert (fedavg["client_optimizer"], fedavg["client_lr"], fedavg["clients"]) == ("sgd", 0.1, 100)
    assert fedavg["model"] == "distilbert-base-uncased"
    assert profile_settings(spec, "full", "fedprox")["mu"] == spec.fednlp["fedprox"]["mu"]
    assert profile_settings(spec, "full", "fedopt")["server_lr"] == spec.fednlp["fedopt"]["server_lr"]
    assert profile_settings(spec, "full", "centralized")["client_optimizer"] == "adamw"
    seeds, parts = profile_plan(spec, "full")
    assert len(seeds) >= 3 and parts == [parse_partition(p) for p in DEFAULT_PARTITIONS["text_classification"]]


def test_seq2seq_plan_uses_feature_skew_and_the_others_label_skew():
    methods = {r.partition.get("partition") for r in plan_runs("seq2seq", "smoke")}
    assert "cluster" in methods and "label" not in methods
    methods = {r.partition.get("partition") for r in plan_runs("text_classification", "smoke")}
    assert {"uniform", "label", "quantity"} <= methods


def test_profile_fills_unset_flags_and_flags_win():
    args = build_parser().parse_args(["run", "--task", "sst2", "--profile", "smoke", "--algorithm", "fedprox",
                                      "--rounds", "7"])
    cfg = config_from_args(args)
    smoke = profile_settings(get_spec("sst2"), "smoke", "fedprox")
    assert cfg.rounds == 7  # given on the command line
    assert (cfg.model, cfg.client_lr, cfg.mu, cfg.max_train) == (smoke["model"], smoke["client_lr"], smoke["mu"],
                                                                 smoke["max_train"])
    assert cfg.data_seed == 42
    args = build_parser().parse_args(["centralized", "--task", "sst2", "--profile", "smoke"])
    assert config_from_args(args).client_lr == profile_settings(get_spec("sst2"), "smoke", "centralized")["client_lr"]


def test_profile_missing_is_one_line(capsys):
    assert main(["run", "--task", "agnews_headline", "--profile", "full"]) == 2
    err = capsys.readouterr().err.strip()
    assert "has no full profile" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("block, key", [
    ({"smoke": {"partitions": ["label alpha=0"]}}, "profiles.smoke.partitions"),
    ({"smoke": {"partitions": ["dirichlet"]}}, "profiles.smoke.partitions"),
    ({"smoke": {"seeds": [1, 1]}}, "profiles.smoke.seeds"),
    ({"smoke": {"rounds": 0}}, "profiles.smoke.rounds"),
    ({"smoke": {"fedavg": {"client_lr": "fast"}}}, "profiles.smoke.fedavg.client_lr"),
    ({"smoke": {"fedavg": {"seeds": [1]}}}, "profiles.smoke.fedavg.seeds"),
    ({"smoke": {"fedavg": {"more_seeds": {"label alpha=0": [4]}}}}, "profiles.smoke.fedavg.more_seeds"),
    ({"smoke": {"fedavg": {"more_seeds": {"uniform": [4, 4]}}}}, "profiles.smoke.fedavg.more_seeds.uniform"),
    ({"smoke": {"partitions": ["uniform"], "fedavg": {"more_seeds": {"label alpha=1": [4]}}}},
     "profiles.smoke.fedavg.more_seeds"),  # not one of fedavg's partitions
    ({"smoke": {"clients": 4, "fedopt": {"clients_per_round": 5}}}, "profiles.smoke.fedopt.clients_per_round"),
    ({"medium": {}}, "profiles.medium"),
])
def test_bad_profile_names_the_key(tmp_path, block, key):
    card = yaml.safe_load((ROOT / "tasks" / "demo.yaml").read_text())
    card["profiles"] = block
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(card))
    with pytest.raises(UserError, match=f"key '{key}"):
        load_card(path)


# ----------------------------------------------------------------------------------------------------- the plan
def test_plan_counts_and_unique_keys():
    runs = plan_runs("text_classification", "smoke", tasks=["sst2"])
    seeds, parts = profile_plan(get_spec("sst2"), "smoke")
    assert len(runs) == len(seeds) * (1 + 3 * len(parts))
    assert len({r.key for r in runs}) == len(runs)
    assert all(r.partition == {} for r in runs if r.algorithm == "centralized")
    assert len({r.board_profile for r in runs}) == 1  # centralized and FL rows of a task share the profile label


def test_more_seeds_add_runs_of_one_algorithm_on_the_partitions_named_only(tmp_path):
    card = _tiny_card(tmp_path)
    raw = yaml.safe_load(card.read_text())
    raw["profiles"]["smoke"]["fedavg"]["more_seeds"] = {"label alpha=1": [2, 3]}
    card.write_text(yaml.safe_dump(raw))
    runs = plan_runs("text_classification", "smoke", tasks=[str(card)])
    base = [r for r in runs if r.seed == 1]
    assert len(base) == 1 + 3 * 2  # seed 1: centralized and the three algorithms on both partitions
    extra = [(r.algorithm, r.partition, r.seed) for r in runs if r.seed != 1]
    assert extra == [("fedavg", {"partition": "label", "alpha": 1.0}, 2), ("fedavg", {"partition": "label", "alpha": 1.0}, 3)]
    assert len({r.key for r in runs}) == len(runs)
    # --seeds picks from the plan; a seed outside it runs the whole table (off the board)
    assert {(r.algorithm, r.seed) for r in plan_runs("text_classification", "smoke", tasks=[str(card)], seeds=[2])} \
        == {("fedavg", 2)}
    assert len(plan_runs("text_classification", "smoke", tasks=[str(card)], seeds=[9])) == 1 + 3 * 2


def test_a_card_block_puts_another_built_in_algorithm_in_the_plan(tmp_path):
    card = _tiny_card(tmp_path)
    raw = yaml.safe_load(card.read_text())
    raw["profiles"]["smoke"]["scaffold"] = {"client_optimizer": "sgd", "client_lr": 0.1, "partitions": ["label alpha=1"]}
    raw["profiles"]["smoke"]["median"] = {"client_optimizer": "adamw", "client_lr": 2.0e-3}
    card.write_text(yaml.safe_dump(raw))
    runs = plan_runs("text_classification", "smoke", tasks=[str(card)])
    algos = [(r.algorithm, r.partition_label) for r in runs]
    assert ("scaffold", "label alpha=1") in algos and ("scaffold", "uniform") not in algos
    assert ("median", "uniform") in algos and ("median", "label alpha=1") in algos
    scaffold = next(r for r in runs if r.algorithm == "scaffold")
    assert scaffold.settings["client_optimizer"] == "sgd" and scaffold.settings["client_lr"] == 0.1
    assert len(runs) == 1 + 3 * 2 + 1 + 2
    # --algorithms still picks exactly what it names
    assert {r.algorithm for r in plan_runs("text_classification", "smoke", tasks=[str(card)],
                                           algorithms=["fedavg"])} == {"fedavg"}


@pytest.mark.parametrize("argv, message", [
    (["reproduce", "tables"], "unknown table 'tables'"),
    (["reproduce", "seq2seq", "--tasks", "sst2"], "not in the seq2seq table"),
    (["reproduce", "classification", "--partitions", "label alpha=-1"], "unknown partition"),
    (["reproduce", "classification", "--algorithms", "fedsgd"], "unknown algorithm 'fedsgd'"),
])
def test_reproduce_bad_input_is_one_line(capsys, argv, message):
    assert main(argv + ["--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


# -------------------------------------------------------------------------------------- resuming gives one board
def _tiny_card(tmp_path: Path, partitions: tuple[str, ...] = ("uniform", "label alpha=1")) -> Path:
    card = yaml.safe_load((ROOT / "tasks" / "demo.yaml").read_text())
    card["name"] = "demo_repro"
    card["profiles"] = {"smoke": {
        "model": "tiny", "max_train": 160, "max_test": 80, "clients": 4, "clients_per_round": 2, "rounds": 2,
        "batch_size": 32, "seeds": [1], "partitions": list(partitions),
        "centralized": {"client_optimizer": "adamw", "client_lr": 2.0e-3},
        "fedavg": {"client_optimizer": "adamw", "client_lr": 2.0e-3},
        "fedprox": {"client_optimizer": "adamw", "client_lr": 2.0e-3, "mu": 0.01},
        "fedopt": {"client_optimizer": "adamw", "client_lr": 2.0e-3, "server_optimizer": "sgd", "server_lr": 1.0}}}
    path = tmp_path / "demo_repro.yaml"
    path.write_text(yaml.safe_dump(card))
    # the canonical recipes of its partitions, beside the tests' leaderboard/ folders (official rows need them)
    (tmp_path / "partition").mkdir(exist_ok=True)
    for table in ("text_classification", "trustworthy"):
        write_recipes(table, "smoke", tmp_path / "partition", tasks=[str(path)])
    return path


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_second_run_skips_finished_runs_and_rebuilds_the_same_board(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDNLP_CACHE", str(tmp_path / "cache"))
    card = _tiny_card(tmp_path)
    board, runs = tmp_path / "leaderboard", tmp_path / "runs"
    first = reproduce("text_classification", "smoke", runs, board, tasks=[str(card)], progress=False)
    assert (first.ran, first.skipped) == (7, 0)  # centralized + 3 algorithms x 2 partitions, one seed
    summary = first.summary()
    assert len(summary) == 7 and set(summary["algorithm"]) == {"centralized", "fedavg", "fedprox", "fedopt"}
    results = _tree(runs)
    board_files = _tree(board)
    assert len(list((board / "submissions").glob("*.json"))) == 7
    table = pd.read_csv(board / "results.csv")
    assert len(table) == 7 and set(table["task"]) == {"demo"}  # one row per algorithm x partition, + centralized

    second = reproduce("text_classification", "smoke", runs, board, tasks=[str(card)], progress=False)
    assert (second.ran, second.skipped) == (0, 7)
    assert _tree(runs) == results  # nothing re-run, nothing rewritten
    assert _tree(board) == board_files  # same submissions, byte-identical board

    # a result lost from the runs folder is still on the board: not run again
    lost = sorted(finished_runs(first.folder).values())[3]
    lost.unlink()
    third = reproduce("text_classification", "smoke", runs, board, tasks=[str(card)], progress=False)
    assert (third.ran, third.skipped, third.superseded) == (0, 7, 0)
    assert _tree(board) == board_files
    # lost from both (an interrupted run never submitted): it is the only run done again
    key = json.loads(sorted(finished_runs(first.folder).values())[3].read_text())["config"]["extra"]["reproduce"]["key"]
    lost = finished_runs(first.folder)[key]
    lost.unlink()
    next(p for p in (board / "submissions").glob("*.json")
         if json.loads(p.read_text())["result"]["config"]["extra"]["reproduce"]["key"] == key).unlink()
    redo = reproduce("text_classification", "smoke", runs, board, tasks=[str(card)], progress=False)
    assert (redo.ran, redo.skipped) == (1, 6)
    assert len(list((board / "submissions").glob("*.json"))) == 7

    # a card changed since: only the runs it touches are done again, and their old submissions leave the board
    raw = yaml.safe_load(card.read_text())
    raw["profiles"]["smoke"]["fedavg"]["client_lr"] = 1.0e-3
    card.write_text(yaml.safe_dump(raw))
    fourth = reproduce("text_classification", "smoke", runs, board, tasks=[str(card)], progress=False)
    assert (fourth.ran, fourth.skipped, fourth.superseded) == (2, 5, 2)  # the fedavg runs, uniform and alpha 1
    stored = [json.loads(p.read_text()) for p in (board / "submissions").glob("*.json")]
    assert len(stored) == 7
    assert sorted(d["result"]["config"]["client_lr"] for d in stored
                  if d["result"]["config"]["algorithm"] == "fedavg") == [1.0e-3, 1.0e-3]


def test_a_fresh_clone_resumes_from_the_committed_board_without_running_anything(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDNLP_CACHE", str(tmp_path / "cache"))
    card = _tiny_card(tmp_path)
    board = tmp_path / "leaderboard"
    reproduce("text_classification", "smoke", tmp_path / "runs", board, tasks=[str(card)], seeds=[1],
              algorithms=["centralized", "fedavg"], progress=False)
    committed = _tree(board)
    # a fresh clone: the board (with its submissions) but no runs folder; any training would be a failure
    clone = tmp_path / "clone" / "leaderboard"
    shutil.copytree(board, clone)
    shutil.copytree(tmp_path / "partition", tmp_path / "clone" / "partition")
    import fednlp_bench.runner as runner

    def no_training(*args, **kwargs):
        raise AssertionError("a run already on the board was run again")

    monkeypatch.setattr(runner, "run_fl", no_training)
    monkeypatch.setattr(runner, "run_central", no_training)
    again = reproduce("text_classification", "smoke", tmp_path / "clone" / "runs", clone, tasks=[str(card)],
                      seeds=[1], algorithms=["centralized", "fedavg"], progress=False)
    assert (again.ran, again.skipped) == (0, 3)
    assert _tree(clone) == committed  # same submissions, same board
    summary = again.summary()  # read from the board's submissions, untrained score included
    assert len(summary) == 3 and summary["untrained"].notna().all()
    # and the dry run counts them as finished
    assert main(["reproduce", "text_classification", "--profile", "smoke", "--tasks", str(card), "--seeds", "1",
                 "--algorithms", "centralized", "fedavg", "--runs", str(tmp_path / "clone" / "runs"),
                 "--root", str(clone), "--dry-run"]) == 0


def test_each_result_is_submitted_as_it_finishes(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDNLP_CACHE", str(tmp_path / "cache"))
    card = _tiny_card(tmp_path)
    board = tmp_path / "leaderboard"
    import fednlp_bench.runner as runner

    real_fl, seen = runner.run_fl, []

    def counting(cfg, task=None):
        seen.append(len(list((board / "submissions").glob("*.json"))))  # submissions before this run starts
        return real_fl(cfg, task)

    monkeypatch.setattr(runner, "run_fl", counting)
    reproduce("text_classification", "smoke", tmp_path / "runs", board, tasks=[str(card)], seeds=[1],
              algorithms=["centralized", "fedavg"], progress=False)
    assert seen == [1, 2]  # the centralized run was on the board before the first FL run began


def test_runs_outside_the_cards_plan_never_reach_the_board(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FEDNLP_CACHE", str(tmp_path / "cache"))
    card = _tiny_card(tmp_path)
    board = tmp_path / "leaderboard"
    with pytest.raises(UserError, match="not in the cards' smoke plan"):
        reproduce("text_classification", "smoke", tmp_path / "runs", board, tasks=[str(card)], seeds=[7],
                  algorithms=["centralized"], progress=False)
    assert not board.exists()
    rep = reproduce("text_classification", "smoke", tmp_path / "runs", None, tasks=[str(card)], seeds=[7],
                    algorithms=["centralized"], progress=False)  # without the board they run
    assert rep.ran == 1


def test_changed_settings_are_not_taken_as_finished(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDNLP_CACHE", str(tmp_path / "cache"))
    card = _tiny_card(tmp_path)
    a = plan_runs("text_classification", "smoke", tasks=[str(card)])
    raw = yaml.safe_load(card.read_text())
    raw["profiles"]["smoke"]["fedavg"]["client_lr"] = 1.0e-3
    card.write_text(yaml.safe_dump(raw))
    b = plan_runs("text_classification", "smoke", tasks=[str(card)])
    changed = {(r.algorithm, r.partition_label) for r in b} - {(r.algorithm, r.partition_label) for r in b
                                                                if r.key in {x.key for x in a}}
    assert changed == {("fedavg", "uniform"), ("fedavg", "label alpha=1")}


# --------------------------------------------------------------------------------------------------- the scripts
def _script_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # fednlp-bench of this interpreter
    return env


@pytest.mark.parametrize("table", TABLES)
def test_each_table_has_a_script_that_plans_its_runs(table):
    script = ROOT / "scripts" / f"reproduce_{table}.sh"
    out = subprocess.run(["bash", str(script), "--profile", "smoke", "--dry-run"], capture_output=True, text=True,
                         env=_script_env(), timeout=120)
    assert out.returncode == 0, out.stderr
    expected = plan_runs(table, "smoke")
    assert f"{len(expected)} runs" in out.stdout
    for spec_name in {r.task for r in expected}:
        assert spec_name in out.stdout


def test_script_rejects_a_missing_data_dir():
    env = {**_script_env(), "DATA_DIR": "/nonexistent/datasets"}
    out = subprocess.run(["bash", str(ROOT / "scripts" / "reproduce_seq2seq.sh"), "--dry-run"], capture_output=True,
                         text=True, env=env, timeout=60)
    assert out.returncode == 2 and "DATA_DIR" in out.stderr and len(out.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------------- canonical partitions
@needs_shared
@pytest.mark.parametrize("table", TABLES)
def test_smoke_partitions_are_canonical_recipes(tmp_path, monkeypatch, table):
    """The committed partition/<task>_smoke_*.yaml recipes are what the smoke plan builds from ../shared/data."""
    monkeypatch.setenv("FEDNLP_DATA_DIR", str(SHARED))
    written = write_recipes(table, "smoke", tmp_path)
    assert written
    for path in written:
        committed = ROOT / "partition" / path.name
        assert committed.is_file(), f"missing canonical recipe {committed.name} (fednlp-bench reproduce {table} " \
                                    "--write-recipes partition)"
        assert load_recipe(path).expected_digest == load_recipe(committed).expected_digest


def test_script_run_twice_skips_and_keeps_the_board(tmp_path):
    card = _tiny_card(tmp_path)
    board, runs = tmp_path / "board", tmp_path / "runs"
    env = {**_script_env(), "FEDNLP_CACHE": str(tmp_path / "cache")}
    cmd = ["bash", str(ROOT / "scripts" / "reproduce_text_classification.sh"), "--profile", "smoke", "--tasks",
           str(card), "--partitions", "uniform", "--algorithms", "centralized", "fedavg", "--runs", str(runs),
           "--root", str(board), "--no-progress"]
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "2 runs done, 0 already finished" in first.stdout
    assert "reproduce text_classification:" in first.stdout  # the script's wall time line
    board_files = _tree(board)
    assert len(list((board / "submissions").glob("*.json"))) == 2
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0, second.stderr
    assert "0 runs done, 2 already finished" in second.stdout
    assert _tree(board) == board_files


# ------------------------------------------------------------------------------------------- the trustworthy table
def test_trust_plan_runs_every_variant_with_an_audit_and_scales_continual_data():
    runs = plan_runs("trustworthy", "smoke", tasks=["agnews_lm"], seeds=[1])
    fl = [r for r in runs if r.algorithm != "centralized"]
    assert [r.variant for r in fl] == list(TRUST_VARIANTS) and len(runs) == 1 + len(TRUST_VARIANTS)
    assert len({r.key for r in runs}) == len(runs)
    assert all(r.settings["mia"] for r in fl) and all(r.partition == {"partition": "quantity", "beta": 5.0} for r in fl)
    s = profile_settings(get_spec("agnews_lm"), "smoke", "fedavg")
    cont = next(r for r in fl if r.variant == "continual").settings
    assert cont["continual_rounds"] == s["rounds"] // 2
    assert cont["storage_cap"] == (2 * s["max_train"]) // (3 * s["clients"])
    assert next(r for r in fl if r.variant == "activity").settings["selection"] == "activity"
    assert next(r for r in fl if r.variant == "uniform").label == "fedavg+uniform"


def test_trust_table_reaches_the_board_beside_the_standard_rows(tmp_path, monkeypatch):
    """Each variant is its own board row (method name from its settings), with epsilon and MIA AUC; a standard
    reproduction's submissions on the same partition and seed stay on the board."""
    monkeypatch.setenv("FEDNLP_CACHE", str(tmp_path / "cache"))
    card = _tiny_card(tmp_path, partitions=("quantity beta=5",))
    board, runs = tmp_path / "leaderboard", tmp_path / "runs"
    reproduce("text_classification", "smoke", runs, board, tasks=[str(card)], algorithms=["centralized", "fedavg"],
              progress=False)
    rep = reproduce("trustworthy", "smoke", runs, board, tasks=[str(card)], progress=False)
    assert rep.superseded == 0
    summary = rep.summary()
    assert set(summary["algorithm"]) == {"centralized"} | {f"fedavg+{v}" for v in TRUST_VARIANTS}
    assert summary["mia_auc"].between(0, 1).sum() == len(TRUST_VARIANTS)
    table = pd.read_csv(board / "results.csv")
    fl = table[table["algorithm"] != "centralized"]
    assert set(fl["method"]) >= {"fedavg", "fedavg+activity", "fedavg+dp-client(z=0.3,S=0.5)"}
    assert len(fl) == len(TRUST_VARIANTS)  # uniform + --mia shares the standard fedavg row (same training)
    dp = fl[fl["dp"] != "none"]
    assert len(dp) == 2 and (dp["epsilon"] > 0).all()
    assert "Trustworthy FL" in (board / "smoke" / "README.md").read_text()  # a smoke card: the smoke page
    stored = [json.loads(p.read_text()) for p in (board / "submissions").glob("*.json")]
    standard = [d for d in stored if "table" not in d["result"]["config"]["extra"]["reproduce"]]
    assert len(standard) == 2  # the standard runs stayed
    # the trustworthy table's centralized run has the same settings (and key) as the standard one: not redone
    assert len(stored) == 2 + len(TRUST_VARIANTS) and rep.skipped == 1


# ----------------------------------------------------------------------------------------- the robustness table
def test_robustness_plan_runs_each_aggregator_with_fedavgs_settings_without_and_with_attackers():
    from fednlp_bench.reproduce import ROBUST_VARIANTS

    runs = plan_runs("robustness", "standard")
    seeds, _ = profile_plan(get_spec("agnews"), "standard")
    assert {r.task for r in runs} == {"agnews"}
    assert len(runs) == len(seeds) * (1 + 4 * len(ROBUST_VARIANTS))
    assert {r.partition_label for r in runs if r.algorithm != "centralized"} == {"uniform"}
    by = {(r.algorithm, r.variant, r.seed): r for r in runs}
    fedavg = by[("fedavg", "", 1)].settings
    for algo in ("median", "trimmed_mean", "krum"):
        s = by[(algo, "sign_flip-30", 1)].settings
        assert (s["client_optimizer"], s["client_lr"], s["rounds"]) == (
            fedavg["client_optimizer"], fedavg["client_lr"], fedavg["rounds"])
        assert (s["attack"], s["attack_fraction"], s["attack_scale"]) == ("sign_flip", 0.3, 4.0)
    assert by[("trimmed_mean", "", 1)].settings["algorithm_args"] == {"beta": 0.3}
    assert by[("krum", "", 1)].settings["algorithm_args"] == {"byzantine": 3}
    assert "attack" not in by[("median", "", 1)].settings
    # FedAvg without attackers and the centralized reference are the text-classification table's runs (same keys)
    standard = {r.key for r in plan_runs("text_classification", "standard", tasks=["agnews"])}
    assert by[("fedavg", "", 1)].key in standard and by[("centralized", "", 1)].key in standard
    assert sum(r.key in standard for r in runs) == 2 * len(seeds)


def test_robustness_table_reaches_the_board_as_official_rows(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDNLP_CACHE", str(tmp_path / "cache"))
    card = _tiny_card(tmp_path, partitions=("uniform",))
    board, runs = tmp_path / "leaderboard", tmp_path / "runs"
    rep = reproduce("robustness", "smoke", runs, board, tasks=[str(card)],
                    algorithms=["centralized", "fedavg", "median"], progress=False)
    assert set(rep.summary()["algorithm"]) == {"centralized", "fedavg", "fedavg+sign_flip-10", "fedavg+sign_flip-30",
                                               "median", "median+sign_flip-10", "median+sign_flip-30"}
    assert main(["leaderboard", "validate", "--root", str(board), "--recipes", str(tmp_path / "partition")]) == 0
    table = pd.read_csv(board / "results.csv")
    methods = set(table["method"])
    assert {"median", "fedavg+attack(sign_flip,f=0.3,s=4.0)", "median+attack(sign_flip,f=0.1,s=4.0)"} <= methods
    attacked = table[table["attack"] != "none"]
    assert set(attacked["attack"]) == {"sign_flip(s=4.0)"} and set(attacked["attack_fraction"]) == {0.1, 0.3}
    # the board's robustness section: one row per aggregator, one column per share of attackers
    md = (board / "smoke" / "README.md").read_text()
    section = md[md.index("## Robustness to attacking clients"):md.index("## Provenance")]
    assert "| aggregator | no attack | sign\\_flip(s=4.0) 10% | sign\\_flip(s=4.0) 30% |" in section
    lines = [ln for ln in section.splitlines() if ln.startswith("| fedavg |") or ln.startswith("| median |")]
    assert len(lines) == 2 and all(ln.count(" ± ") == 3 and ln.count("(1)") == 3 for ln in lines)


def test_robustness_table_resumes_when_its_first_unfinished_run_is_attacked(tmp_path, monkeypatch):
    """The centralized and FedAvg runs are shared with the family table; when they are done, the first run that
    loads the task is an attacked one, and loading it must not trip the centralized-only checks."""
    monkeypatch.setenv("FEDNLP_CACHE", str(tmp_path / "cache"))
    card = _tiny_card(tmp_path, partitions=("uniform",))
    board, runs = tmp_path / "leaderboard", tmp_path / "runs"
    args = dict(tasks=[str(card)], algorithms=["centralized", "fedavg"], seeds=[1], progress=False)
    assert reproduce("robustness", "smoke", runs, board, **args).ran == 4  # centralized, fedavg, 10% and 30% attacked

    def attacked(path: Path) -> bool:
        data = json.loads(path.read_text())
        return bool(data.get("result", data)["config"].get("attack"))

    removed = [p for p in [*runs.rglob("*.json"), *(board / "submissions").glob("*.json")]
               if p.name != "untrained.json" and attacked(p)]
    assert len(removed) == 4  # two results, two submissions
    for path in removed:
        path.unlink()
    again = reproduce("robustness", "smoke", runs, board, **args)
    assert (again.skipped, again.ran) == (2, 2)  # the attacked runs load the task themselves


# ----------------------------------------------------------------------------------------------- the tuning table
def test_tuning_plan_runs_every_method_of_the_card_beside_full_fine_tuning():
    runs = plan_runs("tuning", "standard", tasks=["agnews"])
    seeds, _ = profile_plan(get_spec("agnews"), "standard")
    methods = ("full", "lora", "bitfit", "prompt", "freeze_e02")
    assert len(runs) == len(seeds) * (1 + len(methods) * 2)
    by = {(r.algorithm, r.variant, r.partition_label, r.seed): r for r in runs}
    assert {r.partition_label for r in runs if r.algorithm != "centralized"} == {"uniform", "label alpha=1"}
    assert all(r.settings["model"] == "minilm" and r.settings["max_train"] == 2000 for r in runs)
    lora, full = by[("fedavg", "lora", "uniform", 1)].settings, by[("fedavg", "full", "uniform", 1)].settings
    assert (lora["peft"], lora["lora_r"]) == ("lora", 8) and "peft" not in full and "freeze" not in full
    assert by[("fedavg", "freeze_e02", "uniform", 1)].settings["freeze"] == "e,0-2"
    assert {k: v for k, v in lora.items() if k not in ("peft", "lora_r", "client_lr")} == \
        {k: v for k, v in full.items() if k != "client_lr"}  # only the tuning differs between methods
    central = by[("centralized", "", "-", 1)].settings
    assert "peft" not in central and central["max_epochs"] >= 5 and central["model"] == "minilm"
    # its own board group: the tiny-model agnews rows keep their reference, the MiniLM rows get theirs
    tiny_label = plan_runs("text_classification", "standard", tasks=["agnews"])[0].board_profile
    assert runs[0].board_profile != tiny_label and "minilm" in runs[0].board_profile
    # wnut17: full fine-tuning and its reference are the tagging table's runs (same keys), LoRA is new
    tuning = plan_runs("tuning", "standard", tasks=["wnut17"])
    tagging = {r.key for r in plan_runs("sequence_tagging", "standard")}
    assert all((r.key in tagging) == (r.variant != "lora") for r in tuning)


def _tuning_card(tmp_path: Path) -> Path:
    card = yaml.safe_load(_tiny_card(tmp_path, partitions=("uniform",)).read_text())
    card["profiles"]["smoke"]["tuning"] = {
        "rounds": 1, "centralized": {"max_epochs": 2, "patience": 1},
        "methods": {"full": {}, "lora": {"peft": "lora", "lora_r": 4}, "bitfit": {"peft": "bitfit"}}}
    path = tmp_path / "demo_repro.yaml"
    path.write_text(yaml.safe_dump(card))
    write_recipes("tuning", "smoke", tmp_path / "partition", tasks=[str(path)])
    return path


def test_tuning_table_reaches_the_board_as_official_rows_and_resumes(tmp_path, monkeypatch):
    pytest.importorskip("peft")
    monkeypatch.setenv("FEDNLP_CACHE", str(tmp_path / "cache"))
    card = _tuning_card(tmp_path)
    board, runs = tmp_path / "leaderboard", tmp_path / "runs"
    rep = reproduce("tuning", "smoke", runs, board, tasks=[str(card)], progress=False)
    assert rep.ran == 4 and set(rep.summary()["algorithm"]) == {"centralized", "fedavg+full", "fedavg+lora",
                                                                 "fedavg+bitfit"}
    assert main(["leaderboard", "validate", "--root", str(board), "--recipes", str(tmp_path / "partition")]) == 0
    table = pd.read_csv(board / "results.csv")
    methods = set(table["method"])
    assert "fedavg" in methods and "fedavg+bitfit" in methods and any(m.startswith("fedavg+lora") for m in methods)
    upload = table.set_index("method")["upload_bytes_per_round"]
    lora = next(m for m in methods if m.startswith("fedavg+lora"))
    assert upload[lora] < upload["fedavg+bitfit"] * 10 and upload[lora] * 5 < upload["fedavg"]
    assert (board / "smoke" / "plots").is_dir() and list((board / "smoke" / "plots").glob("communication-*.png"))
    again = reproduce("tuning", "smoke", runs, board, tasks=[str(card)], progress=False)
    assert (again.ran, again.skipped) == (0, 4)


@pytest.mark.parametrize("tuning, where", [
    ({"partitions": ["uniform"]}, "tuning.methods"),
    ({"methods": {"Lo-RA": {}}}, "tuning.methods"),
    ({"methods": {"lora": {"peft": "lora", "partitions": ["uniform"]}}}, "tuning.methods.lora"),
    ({"methods": {"full": {}}, "centralized": {"peft": "lora"}}, "tuning.centralized"),
    ({"methods": {"full": {"rounds": "many"}}}, "tuning.methods.full.rounds"),
    ({"methods": {"full": {}}, "seeds": [1]}, "tuning.seeds"),
])
def test_a_bad_tuning_block_is_one_line_naming_its_key(tmp_path, tuning, where):
    card = yaml.safe_load((ROOT / "tasks" / "demo.yaml").read_text())
    card["profiles"] = {"smoke": {"tuning": tuning}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(card))
    with pytest.raises(UserError, match=where.replace(".", r"\.")):
        load_card(path)
