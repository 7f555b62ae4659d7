"""The tagging, QA and seq2seq families through the CLI on real data: same commands, same result format, own metrics."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fednlp_bench.cli import main

SHARED = Path(os.environ.get("FEDNLP_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

# task -> (data folder, family, metric names); the folders are the ones named in each PROVENANCE.md
FAMILY_TASKS = {
    "wnut17": (SHARED / "wnut17", "sequence_tagging", {"precision", "recall", "f1"}),
    "squad": (SHARED / "squad", "extractive_qa", {"exact_match", "f1"}),
    "agnews_headline": (SHARED / "agnews", "seq2seq", {"rouge1", "rouge2", "rougeL"}),
}
SMALL = ["--max-train", "96", "--max-test", "32", "--rounds", "1", "--clients", "3", "--clients-per-round", "2",
         "--max-length", "64", "--batch-size", "16", "--no-progress"]


def call(capsys, argv: list[str]) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def needs(folder: Path):
    return pytest.mark.skipif(not folder.is_dir(), reason=f"real data not found at {folder} (set FEDNLP_SHARED_DATA)")


def test_tasks_lists_every_family(capsys):
    rc, out, _ = call(capsys, ["tasks"])
    assert rc == 0
    for family in ("text_classification", "sequence_tagging", "extractive_qa", "seq2seq"):
        assert family in out
    for task in FAMILY_TASKS:
        assert task in out


@pytest.mark.parametrize("task", list(FAMILY_TASKS))
def test_run_writes_the_common_result_format_with_family_metrics(task, tmp_path, capsys):
    folder, family, metrics = FAMILY_TASKS[task]
    if not folder.is_dir():
        pytest.skip(f"real data not found at {folder}")
    argv = ["run", "--task", task, "--data-dir", str(folder), *SMALL, "--partition", "label", "--alpha", "0.5",
            "--output", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")]
    rc, out, err = call(capsys, argv)
    assert rc == 0, err
    path = next((tmp_path / "out").glob("*.json"))
    rec = json.loads(path.read_text())
    assert rec["kind"] == "federated" and rec["task"]["family"] == family
    assert set(rec["final"]) >= metrics and set(rec["task"]["metric_names"]) >= metrics
    assert rec["task"]["primary_metric"] in metrics
    assert f"{rec['task']['primary_metric']}=" in out
    assert len(rec["partition"]["digest"]) == 64 and rec["partition"]["train_sizes"]["min"] >= 1
    # per-client scores come from each client's own test examples
    primary = rec["clients"][rec["task"]["primary_metric"]]
    assert primary["min"] <= primary["median"] <= primary["max"]
    assert all(0.0 <= rec["final"][m] <= 100.0 for m in metrics)
    assert path.with_suffix(".png").exists()


@needs(SHARED / "wnut17")
def test_centralized_tagging_is_deterministic(tmp_path, capsys):
    argv = ["centralized", "--task", "wnut17", "--data-dir", str(SHARED / "wnut17"), *SMALL, "--epochs", "1",
            "--cache-dir", str(tmp_path / "cache")]
    finals = []
    for run in ("a", "b"):
        rc, _, err = call(capsys, [*argv, "--output", str(tmp_path / run)])
        assert rc == 0, err
        rec = json.loads(next((tmp_path / run).glob("*.json")).read_text())
        assert rec["kind"] == "centralized" and rec["task"]["family"] == "sequence_tagging"
        finals.append(rec["final"])
    assert finals[0] == finals[1]


def assert_one_line_error(rc: int, err: str, *words: str) -> None:
    assert rc == 2
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], lines[0]


def test_malformed_conll_line_is_one_error_line(tmp_path, capsys):
    bad = tmp_path / "train.conll"
    bad.write_text("EU\tB-ORG\nrejects\tO\n\nGerman B-MISC extra\tbad tag here\nonly_one_field\n")
    out = tmp_path / "out"
    rc, _, err = call(capsys, ["run", "--task", "tagging", "--train-file", str(bad), "--output", str(out), "--no-progress"])
    assert_one_line_error(rc, err, "train.conll", "line")
    assert not out.exists()  # a data error leaves no (empty) output folder behind


def test_unknown_tag_scheme_in_a_config_file(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("task: tagging\ntag_scheme: BILOU\n")
    rc, _, err = call(capsys, ["run", "--config", str(cfg), "--output", str(tmp_path / "out")])
    assert_one_line_error(rc, err, "BILOU", "--tag-scheme")


def test_empty_seq2seq_target_is_one_error_line(tmp_path, capsys):
    data = tmp_path / "pairs.tsv"
    data.write_text("source\ttarget\nthe cat sat on the mat\ta cat\nstocks fell sharply today\t\n")
    out = tmp_path / "out"
    rc, _, err = call(capsys, ["run", "--task", "seq2seq", "--train-file", str(data), "--output", str(out),
                               "--no-progress"])
    assert_one_line_error(rc, err, "pairs.tsv", "target")
    assert not out.exists()  # a data error leaves no (empty) output folder behind


@needs(SHARED / "squad")
def test_qa_answer_not_at_its_offset_is_reported_and_the_rest_loads(tmp_path, capsys):
    raw = json.loads((SHARED / "squad" / "dev-subset.json").read_text())
    article = raw["data"][0]
    para = article["paragraphs"][0]
    qas = [q for q in para["qas"] if q.get("answers") and not q.get("is_impossible")]
    broken = qas[0]
    broken["answers"] = [{"text": broken["answers"][0]["text"], "answer_start": len(para["context"]) - 1}]
    small = {"version": "1.1", "data": [{"title": article["title"], "paragraphs": [{"context": para["context"],
                                                                                     "qas": qas}]}]}
    path = tmp_path / "small.json"
    path.write_text(json.dumps(small))
    argv = ["run", "--task", "qa", "--train-file", str(path), "--test-file", str(path), "--rounds", "1",
            "--clients", "2", "--clients-per-round", "2", "--max-length", "64", "--no-progress",
            "--output", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")]
    rc, _, err = call(capsys, argv)
    assert rc == 0, err
    assert broken["id"] in err
    rec = json.loads(next((tmp_path / "out").glob("*.json")).read_text())
    assert rec["task"]["num_train"] == len(qas) - 1
