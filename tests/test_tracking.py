"""Tests for --log-dir: TensorBoard scalars per evaluated round (federated) or epoch (centralized) that match the
result's curve, change no result, and bad input as one error line (exit 2) before anything is written."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from fednlp_bench.cli import main  # noqa: E402
from fednlp_bench.config import RunConfig, settings_key  # noqa: E402
from fednlp_bench.tracking import ScalarLog  # noqa: E402
from test_cli import assert_nothing_written, assert_one_error_line, call, fast_args  # noqa: E402

ROUNDS = 3


def scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Tag -> [(step, value)] of every scalar under `log_dir`, as TensorBoard reads them."""
    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def approx(values):
    return pytest.approx(values, rel=1e-6, abs=1e-6)  # event files hold float32


def only_result(out: Path) -> Path:
    [path] = out.glob("*.json")
    return path


@pytest.fixture(scope="module")
def fl_runs(tmp_path_factory):
    """The same federated run (3 rounds, evaluated every round) with and without --log-dir."""
    base = tmp_path_factory.mktemp("tracking")
    runs = {}
    for name, extra in (("logged", ["--log-dir", str(base / "logs")]), ("plain", [])):
        out = base / name
        argv = ["run", *fast_args(out, base / "cache", rounds=ROUNDS), "--eval-every", "1", *extra]
        assert main(argv) == 0
        path = only_result(out)
        runs[name] = {"path": path, "record": json.loads(path.read_text())}
    runs["logs"] = base / "logs"
    return runs


def test_one_scalar_per_evaluated_round_equal_to_the_curve(fl_runs):
    rec = fl_runs["logged"]["record"]
    curve, metric = rec["curve"], rec["task"]["primary_metric"]
    rounds = [p["round"] for p in curve]
    assert rounds == list(range(1, ROUNDS + 1))
    got = scalars(fl_runs["logs"])
    assert {f"eval/{metric}", "train/loss", "comm/upload_bytes", "time/wall_s"} <= set(got)
    for name in rec["task"]["metric_names"]:  # every global test metric of the round
        assert [s for s, _ in got[f"eval/{name}"]] == rounds
        assert [v for _, v in got[f"eval/{name}"]] == approx([p["metrics"][name] for p in curve])
    assert [v for _, v in got["train/loss"]] == approx([p["train_loss"] for p in curve])
    assert [v for _, v in got["time/wall_s"]] == approx([p["wall_time_s"] for p in curve])
    per_client = rec["upload_bytes_per_client_per_round"]
    assert [v for _, v in got["comm/upload_bytes"]] == approx([per_client * len(p["clients"]) for p in curve])
    for tag in ("train/loss", "comm/upload_bytes", "time/wall_s"):
        assert [s for s, _ in got[tag]] == rounds


def test_log_dir_changes_neither_the_result_nor_its_file_name(fl_runs):
    logged, plain = fl_runs["logged"], fl_runs["plain"]
    assert logged["path"].name == plain["path"].name
    a, b = logged["record"], plain["record"]
    assert a["config"]["log_dir"] == str(fl_runs["logs"]) and b["config"]["log_dir"] is None
    assert a["final"] == b["final"] and a["clients"] == b["clients"]
    strip = ("wall_time_s",)
    assert [{k: v for k, v in p.items() if k not in strip} for p in a["curve"]] == \
        [{k: v for k, v in p.items() if k not in strip} for p in b["curve"]]
    assert settings_key(a["config"]) == settings_key(b["config"])


@pytest.mark.parametrize("command", ["run", "centralized"])
@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_unwritable_log_dir_is_one_line_and_exit_2(command, where, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    log_dir = afile if where == "a file" else afile / "logs"
    out = tmp_path / "out"
    rc, _, err = call(capsys, [command, *fast_args(out, tmp_path / "cache"), "--log-dir", str(log_dir)])
    assert_one_error_line(rc, err, ["TensorBoard log folder", "afile", "not writable", "--log-dir"])
    assert_nothing_written(out)
    assert afile.read_text() == "x"  # left alone


def test_log_dir_without_tensorboard_is_one_line_naming_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # `import tensorboard` raises ImportError
    out, logs = tmp_path / "out", tmp_path / "logs"
    rc, _, err = call(capsys, ["run", *fast_args(out, tmp_path / "cache"), "--log-dir", str(logs)])
    assert_one_error_line(rc, err, ["--log-dir", "tensorboard", "not installed", "pip install 'fednlp-bench[tracking]'"])
    assert_nothing_written(out)
    assert not logs.exists()


@pytest.mark.parametrize("budget", [["--epochs", "2"], ["--max-epochs", "2", "--patience", "1"]],
                         ids=["fixed-budget", "early-stopping"])
def test_centralized_run_writes_per_epoch_scalars(budget, tmp_path):
    out, logs = tmp_path / "out", tmp_path / "logs"
    assert main(["centralized", *fast_args(out, tmp_path / "cache"), "--log-dir", str(logs), *budget]) == 0
    rec = json.loads(only_result(out).read_text())
    curve, metric = rec["curve"], rec["task"]["primary_metric"]
    epochs = [p["round"] for p in curve]
    got = scalars(logs)
    split = "validation" if budget[0] == "--max-epochs" else "eval"
    assert [s for s, _ in got[f"{split}/{metric}"]] == epochs
    assert [v for _, v in got[f"{split}/{metric}"]] == approx([p["metrics"][metric] for p in curve])
    assert [v for _, v in got["train/loss"]] == approx([p["train_loss"] for p in curve])
    assert [s for s, _ in got["time/wall_s"]] == epochs
    assert "comm/upload_bytes" not in got
    if split == "validation":  # the best epoch's test metrics: the run's final result
        assert got[f"eval/{metric}"] == [(rec["early_stopping"]["best_epoch"], approx(rec["final"][metric]))]


def test_a_resumed_run_logs_each_round_once(tmp_path, capsys, monkeypatch):
    """A run killed after logging round 2 but before checkpointing it resumes from round 1; TensorBoard shows the
    rounds once (the resumed writer purges the steps from 2 on)."""
    out, logs = tmp_path / "out", tmp_path / "logs"
    argv = ["run", *fast_args(out, tmp_path / "cache", rounds=ROUNDS), "--checkpoint-every", "1",
            "--log-dir", str(logs)]
    logged = ScalarLog.point

    def point_then_die(self, point, upload_bytes=None):
        logged(self, point, upload_bytes)
        if point["round"] == 2:  # logged, but the checkpoint of round 2 is written after this
            raise KeyboardInterrupt

    monkeypatch.setattr(ScalarLog, "point", point_then_die)
    assert call(capsys, argv)[0] == 130
    monkeypatch.undo()
    time.sleep(1.1)  # event files are read in name order, which starts with the creation second
    assert main([*argv, "--resume"]) == 0
    rec = json.loads(only_result(out).read_text())
    assert rec["execution"]["resumed_from_round"] == 1
    metric = rec["task"]["primary_metric"]
    got = scalars(logs)[f"eval/{metric}"]
    assert [s for s, _ in got] == [1, 2, 3]
    assert [v for _, v in got] == approx([p["metrics"][metric] for p in rec["curve"]])


def test_compare_refuses_log_dir(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(f"log_dir: {tmp_path / 'logs'}\n")
    out = tmp_path / "out"
    rc, _, err = call(capsys, ["compare", *fast_args(out, tmp_path / "cache"), "--config", str(config)])
    assert_one_error_line(rc, err, ["log_dir", "compare"])
    assert_nothing_written(out)


def test_log_dir_is_an_execution_setting():
    with_log = RunConfig(log_dir="somewhere").to_dict()
    assert settings_key(with_log) == settings_key(RunConfig().to_dict())
