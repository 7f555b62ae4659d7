"""Submissions through the CLI: each failed check is one line, exit 2 and an untouched leaderboard; a good one shows."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from leaderboard_factory import make_record

from fednlp_bench.cli import main

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "partition"
UNIFORM_DEMO = "c0c774112f716e7fb2f7564d4bf4cd3f2a6f0b427ca5a8706a991cf4c870e3cc"  # partition/demo_uniform_c10.yaml


def tree_state(root: Path) -> dict[str, str]:
    """Every file under root with the sha256 of its bytes (empty when root does not exist)."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


def write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


def submit(capsys, root: Path, path: Path, *extra: str) -> tuple[int, str, str]:
    """`leaderboard submit` as a community submitter ("tester" unless --submitter is given)."""
    who = [] if "--submitter" in extra else ["--submitter", "tester"]
    rc = main(["leaderboard", "submit", str(path), "--root", str(root), "--recipes", str(RECIPES), *who, *extra])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture()
def board(tmp_path, capsys) -> Path:
    """A leaderboard with one centralized and one canonical FedAvg submission, already built."""
    root = tmp_path / "leaderboard"
    central = write(tmp_path / "central.json", make_record("centralized", final=0.9))
    fed = write(tmp_path / "fed.json", make_record(final=0.72, digest=UNIFORM_DEMO))
    for path in (central, fed):
        rc, _, err = submit(capsys, root, path, "--submitter", "lab A")
        assert rc == 0, err
    return root


def bad_records() -> dict[str, tuple[dict, list[str], str]]:
    """name -> (record, extra flags, words the error line must contain)."""
    missing_final = make_record(digest=UNIFORM_DEMO, seed=1)
    del missing_final["final"]
    out_of_range = make_record(digest=UNIFORM_DEMO, seed=2, final=1.7)
    nan_metric = make_record(digest=UNIFORM_DEMO, seed=3)
    nan_metric["final"]["accuracy"] = float("nan")
    unknown_digest = make_record(digest="ab" * 32, seed=4)
    script = make_record(digest=UNIFORM_DEMO, seed=5)
    inconsistent = make_record(digest=UNIFORM_DEMO, seed=6)
    inconsistent["config"]["clients_per_round"] = 50
    return {
        "bad schema": (missing_final, [], "final"),
        "metric out of range": (out_of_range, [], "1.7"),
        "NaN metric": (nan_metric, [], "NaN"),
        "unknown digest": (unknown_digest, [], "canonical"),
        "script tag in method name": (script, ["--method", "<script>alert(1)</script>"], "method"),
        "inconsistent config": (inconsistent, [], "clients_per_round"),
    }


@pytest.mark.parametrize("case", list(bad_records()))
def test_each_failed_check_is_rejected_with_its_reason_and_leaves_the_board_untouched(case, board, tmp_path, capsys):
    record, flags, word = bad_records()[case]
    before = tree_state(board)
    rc, out, err = submit(capsys, board, write(tmp_path / "bad.json", record), *flags)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert word in lines[0], lines[0]
    assert tree_state(board) == before


def test_a_duplicate_is_rejected(board, tmp_path, capsys):
    before = tree_state(board)
    again = write(tmp_path / "again.json", make_record(final=0.72, digest=UNIFORM_DEMO))
    rc, _, err = submit(capsys, board, again)
    assert rc == 2 and "duplicate" in err
    assert tree_state(board) == before


def test_corrupt_json_is_rejected(board, tmp_path, capsys):
    before = tree_state(board)
    bad = tmp_path / "corrupt.json"
    bad.write_text('{"schema_version": 1, "kind": ')
    rc, _, err = submit(capsys, board, bad)
    assert rc == 2 and "not valid JSON" in err
    assert tree_state(board) == before


def test_a_good_submission_appears_in_the_rebuilt_board(board, tmp_path, capsys):
    rec = make_record(final=0.81, digest=UNIFORM_DEMO, seed=7)
    rec["config"]["data_seed"] = rec["partition"]["seed"] = 42  # training seed 7 on the canonical seed-42 partition
    rc, out, err = submit(capsys, board, write(tmp_path / "good.json", rec), "--method", "FedAvg+ours",
                          "--submitter", "lab B")
    assert rc == 0, err
    stored = json.loads(Path(out.split()[1]).read_text())
    assert stored["submission"]["method"] == "FedAvg+ours" and stored["submission"]["canonical"] is True
    assert stored["result"] == rec
    readme = (board / "README.md").read_text()
    html = (board / "index.html").read_text()
    assert "FedAvg+ours · community (lab B)" in readme and "FedAvg+ours" in html
    assert stored["submission"]["track"] == "community"
    csv = (board / "results.csv").read_text()
    assert "FedAvg+ours" in csv


def test_non_canonical_partitions_need_the_flag_and_are_marked(board, tmp_path, capsys):
    rec = make_record(digest="cd" * 32, seed=8)
    rc, out, err = submit(capsys, board, write(tmp_path / "nc.json", rec), "--allow-non-canonical")
    assert rc == 0, err
    stored = json.loads(Path(out.split()[1]).read_text())
    assert stored["submission"]["canonical"] is False


def test_build_is_deterministic_and_validate_passes(board, capsys):
    first = tree_state(board)
    assert main(["leaderboard", "build", "--root", str(board)]) == 0
    assert tree_state(board) == first
    assert main(["leaderboard", "validate", "--root", str(board), "--recipes", str(RECIPES)]) == 0
    capsys.readouterr()


def test_validate_catches_a_submission_edited_after_it_was_stored(board, capsys):
    stored = sorted((board / "submissions").glob("*.json"))[0]
    doc = json.loads(stored.read_text())
    doc["result"]["final"]["accuracy"] = 0.99
    stored.write_text(json.dumps(doc))
    assert main(["leaderboard", "validate", "--root", str(board), "--recipes", str(RECIPES)]) == 1
    out, _ = capsys.readouterr()
    assert stored.name in out and "hash" in out


def test_aggregate_command_reads_folders_of_runs_and_writes_the_table(tmp_path, capsys):
    import pandas as pd

    runs = tmp_path / "runs"
    runs.mkdir()
    write(runs / "c.json", make_record("centralized", final=0.8))
    for seed, final in ((1, 0.5), (2, 0.7)):
        write(runs / f"f{seed}.json", make_record(final=final, seed=seed, digest=UNIFORM_DEMO))
    assert main(["leaderboard", "aggregate", str(runs), "--output", str(tmp_path / "table")]) == 0
    capsys.readouterr()
    df = pd.read_csv(tmp_path / "table" / "results.csv")
    fed = df[df["method"] == "fedavg"].iloc[0]
    assert fed["n_seeds"] == 2 and fed["mean"] == pytest.approx(0.6) and fed["ratio"] == pytest.approx(0.75)
    assert fed["gap"] == pytest.approx(0.2)
    assert (tmp_path / "table" / "results.parquet").exists()


def test_the_shipped_board_is_valid_and_up_to_date(tmp_path, capsys):
    """leaderboard/ in the repository: every submission passes validate, and a rebuild gives the committed bytes."""
    import shutil

    shipped = REPO / "leaderboard"
    if not (shipped / "submissions").is_dir():
        pytest.skip("no leaderboard/submissions in this checkout")
    assert main(["leaderboard", "validate", "--root", str(shipped), "--recipes", str(RECIPES)]) == 0
    copy = tmp_path / "leaderboard"
    shutil.copytree(shipped, copy)
    shutil.copytree(RECIPES, tmp_path / "partition")  # build re-checks the official rows against the recipes
    assert main(["leaderboard", "build", "--root", str(copy)]) == 0
    capsys.readouterr()
    assert tree_state(copy) == tree_state(shipped)
