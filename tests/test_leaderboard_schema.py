"""Result schema (leaderboard/schema.py): valid records pass, every rejection reason is named."""
from __future__ import annotations

import math

import pytest

from fednlp_bench.errors import UserError
from fednlp_bench.leaderboard.schema import (FAMILY_METRICS, SUPPORTED_VERSIONS, as_submission, check_result,
                                             validate_result)
from leaderboard_factory import make_record, with_change


@pytest.mark.parametrize("family", sorted(FAMILY_METRICS))
@pytest.mark.parametrize("kind", ["federated", "centralized"])
def test_factory_records_are_valid(kind, family):
    assert validate_result(make_record(kind, family=family)) == []


def test_real_example_shapes_are_valid():
    # The factory copies /work/notes/example-{federated,centralized}.json (squad fedavg, wnut17 centralized).
    fed = make_record("federated", task="squad", family="extractive_qa", rounds=5, clients=10, clients_per_round=5)
    cen = make_record("centralized", task="wnut17", family="sequence_tagging", rounds=5)
    assert validate_result(fed) == [] and validate_result(cen) == []
    check_result(fed, "fed.json")  # does not raise


def test_supported_versions():
    assert SUPPORTED_VERSIONS == (1,)


@pytest.mark.parametrize("key", ["schema_version", "config", "task", "curve", "final", "kind", "seed",
                                 "upload_bytes_per_client_per_round", "partition", "clients"])
def test_missing_top_level_key(key):
    problems = validate_result(with_change(make_record(), key, delete=True))
    assert problems and f"missing key '{key}'" in problems[0]


@pytest.mark.parametrize("path", ["task.family", "task.metric_names", "config.clients_per_round", "partition.digest"])
def test_missing_nested_key(path):
    problems = validate_result(with_change(make_record(), path, delete=True))
    assert f"missing key '{path}'" in problems


def test_older_schema_version():
    problems = validate_result(with_change(make_record(), "schema_version", 0))
    assert problems == ["schema_version 0 is older than the oldest this package reads (1); "
                        "re-run with fednlp-bench >= 0.1.0"]


def test_newer_schema_version():
    (problem,) = validate_result(with_change(make_record(), "schema_version", 2))
    assert problem.startswith("schema_version 2 is newer than the newest this package reads (1)")
    assert "upgrade fednlp-bench" in problem


def test_schema_version_wrong_type():
    assert "must be an integer" in validate_result(with_change(make_record(), "schema_version", "1"))[0]
    assert "must be an integer" in validate_result(with_change(make_record(), "schema_version", True))[0]


@pytest.mark.parametrize("path, shown", [("final.accuracy", "final.accuracy"),
                                         ("curve.1.metrics.accuracy", "curve[1].metrics.accuracy"),
                                         ("clients.accuracy.p10", "clients.accuracy.p10")])
@pytest.mark.parametrize("value", [math.nan, None, math.inf])
def test_nan_metric(path, shown, value):
    problems = validate_result(with_change(make_record(), path, value))
    assert len(problems) == 1 and problems[0].startswith(shown), problems
    assert "NaN" in problems[0] or "not finite" in problems[0]


@pytest.mark.parametrize("value", [-0.01, 1.5, 87.0])
def test_metric_out_of_range(value):
    problems = validate_result(with_change(make_record(), "final.macro_f1", value))
    assert problems == [f"final.macro_f1 = {value!r} is outside [0, 1]"]


def test_metric_not_a_number():
    assert "must be a number" in validate_result(with_change(make_record(), "final.accuracy", "0.7"))[0]


def test_metric_names_not_matching_family():
    record = with_change(make_record(), "task.metric_names", ["accuracy", "f1"])
    (problem,) = validate_result(record)
    assert "do not match family text_classification" in problem


def test_unknown_family():
    assert "unknown task family 'vision'" in validate_result(with_change(make_record(), "task.family", "vision"))[0]


def test_final_metrics_not_matching_task():
    record = with_change(make_record(), "final.rouge1", 0.3)
    assert any(p.startswith("'final' has metrics") for p in validate_result(record))


def test_primary_metric_not_in_metric_names():
    record = with_change(make_record(), "task.primary_metric", "f1")
    assert any("primary_metric 'f1'" in p for p in validate_result(record))


@pytest.mark.parametrize("digest", ["abc", "G" * 64, "6BE21AE22470B88CD22DDA7FBF83204B00B0B99994D0FF9D16FA34F0967ED316",
                                    "a" * 65])
def test_bad_digest(digest):
    problems = validate_result(with_change(make_record(), "partition.digest", digest))
    assert len(problems) == 1 and "partition.digest" in problems[0] and "64 lowercase hex" in problems[0]


def test_digest_not_a_string():
    assert validate_result(with_change(make_record(), "partition.digest", 123)) == [
        "'partition.digest' must be string (got int)"]


def test_clients_per_round_more_than_clients():
    problems = validate_result(with_change(make_record(), "config.clients_per_round", 11))
    assert problems == ["config.clients_per_round 11 > config.clients 10"]


def test_config_task_not_task_name():
    assert validate_result(with_change(make_record(), "config.task", "agnews")) == [
        "config.task 'agnews' != task.name 'demo'"]


def test_algorithm_must_match_kind():
    fed = with_change(make_record(), "config.algorithm", "centralized")
    assert any("not a federated algorithm" in p for p in validate_result(fed))
    cen = with_change(make_record("centralized"), "config.algorithm", "fedavg")
    assert any("does not match kind centralized" in p for p in validate_result(cen))


def test_partition_method_must_match_config():
    problems = validate_result(with_change(make_record(), "partition.method", "label"))
    assert problems == ["partition.method 'label' != config.partition 'uniform'"]


def test_partition_clients_and_seed_must_match():
    assert validate_result(with_change(make_record(), "partition.clients", 20)) == [
        "partition.clients 20 != config.clients 10"]
    assert any("config.seed" in p for p in validate_result(with_change(make_record(), "config.seed", 7)))


def test_unknown_kind():
    assert validate_result(with_change(make_record(), "kind", "split")) == [
        "unknown kind 'split' (expected one of federated, centralized)"]


def test_curve_rounds_must_increase():
    record = with_change(make_record(), "curve.2.round", 2)
    assert "curve rounds are not increasing (round 2 after round 2)" in validate_result(record)
    assert "'curve' is empty" in validate_result(with_change(make_record(), "curve", []))[0]


def test_wrong_types():
    assert validate_result(with_change(make_record(), "seed", "42")) == ["'seed' must be integer (got str)"]
    assert validate_result(with_change(make_record(), "config.clients", 10.0))[0].startswith("'config.clients' must be")
    assert validate_result([1, 2]) == ["a result must be a JSON object (got list)"]


def test_check_result_raises_first_problem_with_file_name():
    with pytest.raises(UserError, match=r"^runs/x\.json: invalid result: config\.task 'agnews'"):
        check_result(with_change(make_record(), "config.task", "agnews"), "runs/x.json")
    with pytest.raises(UserError, match="older than the oldest"):
        check_result(with_change(make_record(), "schema_version", 0), "old.json")


def test_as_submission_fills_defaults_for_bare_runs():
    fed = as_submission(make_record(algorithm="fedprox", rounds=4, max_train=500), "f.json")
    assert fed["submission"] == {"submitter": "fednlp-bench", "method": "fedprox",
                                 "profile": "tiny, 4 rounds, max_train 500", "notes": ""}
    cen = as_submission(make_record("centralized"), "c.json")
    assert cen["submission"]["method"] == "centralized"
    assert cen["submission"]["profile"] == "tiny, 3 rounds, max_train all"


def test_as_submission_keeps_wrapper_metadata_and_validates_result():
    run = make_record()
    sub = as_submission({"submission": {"submitter": "lab", "method": "fedavg+x", "profile": "p"}, "result": run}, "s")
    assert sub["submission"] == {"submitter": "lab", "method": "fedavg+x", "profile": "p", "notes": ""}
    assert sub["result"] is run
    kept = as_submission({"submission": {"method": "m", "canonical": False, "content_hash": "ab"}, "result": run}, "s")
    assert kept["submission"]["canonical"] is False and kept["submission"]["content_hash"] == "ab"
    with pytest.raises(UserError, match="^s: invalid result"):
        as_submission({"submission": {}, "result": with_change(run, "final.accuracy", 2.0)}, "s")
    with pytest.raises(UserError, match="submission.method must be a string"):
        as_submission({"submission": {"method": 3}, "result": run}, "s")
    with pytest.raises(UserError, match="needs a 'result'"):
        as_submission({"submission": {}}, "s")


def _literal(module: str, name: str):
    """The literal value assigned to `name` in a fednlp_bench/tasks module (read with ast: importing tasks is slow)."""
    import ast
    from pathlib import Path

    import fednlp_bench

    tree = ast.parse((Path(fednlp_bench.__file__).parent / "tasks" / f"{module}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not found in tasks/{module}.py")


def test_family_metrics_match_the_task_adapters():
    assert FAMILY_METRICS == {
        _literal("classification", "family"): _literal("classification", "metric_names"),
        "sequence_tagging": _literal("tagging_metrics", "METRIC_NAMES"),
        "extractive_qa": _literal("qa", "metric_names"),
        _literal("seq2seq", "family"): _literal("seq2seq_metrics", "ROUGE_TYPES"),
        _literal("language_modeling", "family"): _literal("language_modeling", "metric_names"),
    }


def test_a_run_from_a_users_own_card_file_names_the_card_path_in_its_config():
    from leaderboard_factory import make_record

    from fednlp_bench.leaderboard.schema import validate_result

    rec = make_record(task="my_reviews")
    rec["config"]["task"] = "cards/my_reviews.yaml"
    assert validate_result(rec) == []
    rec["config"]["task"] = "other_task"
    assert any("config.task" in p for p in validate_result(rec))
