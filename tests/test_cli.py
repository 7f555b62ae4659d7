"""Tests for the command line: bad input gives one clear error line and exit 2; good input writes complete results."""
from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from fednlp_bench import __version__
from fednlp_bench.cli import main
from fednlp_bench.config import RunConfig, settings_key

# Small enough for a couple of seconds per run on a laptop CPU.
FAST = {"--max-train": "300", "--max-test": "150", "--rounds": "2", "--clients": "4", "--clients-per-round": "2",
        "--max-length": "32"}


def fast_args(out: Path, cache: Path, **overrides: str | None) -> list[str]:
    """FAST settings plus --output/--cache-dir/--no-progress; overrides use underscores (None drops a flag)."""
    opts = dict(FAST)
    for key, value in overrides.items():
        flag = "--" + key.replace("_", "-")
        if value is None:
            opts.pop(flag, None)
        else:
            opts[flag] = str(value)
    args = [x for kv in opts.items() for x in kv]
    return [*args, "--output", str(out), "--cache-dir", str(cache), "--no-progress"]


def call(capsys, argv: list[str]) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def result_file(out: Path, stem: str) -> Path:
    """The one result `<stem>-<settings key>.json` in `out`, its key the first 10 digits of the hash of its
    recorded settings (the run's checkpoint key)."""
    [path] = [p for p in out.glob(f"{stem}-*.json") if re.fullmatch(re.escape(stem) + r"-[0-9a-f]{10}\.json", p.name)]
    assert path.stem.rsplit("-", 1)[1] == settings_key(load(path)["config"])[:10]
    return path


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One tokenization cache for the positive tests that do not test the cache itself."""
    return tmp_path_factory.mktemp("tok-cache")


# ------------------------------------------------------------------------------------------------ bad input

def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(20):
            w.writerow([f"sentence number {i} about topic {i % 2}", "pos" if i % 2 else "neg"])
    return path


def _rows(tmp_path: Path, name: str, rows: list[tuple[str, str]]) -> Path:
    path = tmp_path / name
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([("text", "label"), *rows])
    return path


def _file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# Each case: (extra argv built from tmp_path, keywords the error line must contain).
BAD_INPUT = {
    "unknown-task": (lambda t: ["--task", "nosuch"], ["unknown task", "nosuch", "demo"]),
    "missing-data-file": (lambda t: ["--task", "text_classification", "--train-file", "/nonexistent.csv"],
                          ["not found", "/nonexistent.csv", "--train-file"]),
    "missing-label-column": (lambda t: ["--task", "text_classification", "--train-file", str(_csv(t)),
                                        "--label-column", "nosuch"],
                             ["label column", "nosuch", "text, label", "--text-column / --label-column"]),
    "corrupt-json-data": (lambda t: ["--task", "text_classification", "--train-file", str(_file(t, "d.json", "{bad"))],
                          ["could not parse", "d.json", "JSON"]),
    "one-label-data": (lambda t: ["--task", "text_classification", "--train-file",
                                  str(_rows(t, "one.csv", [(f"review number {i}", "pos") for i in range(40)]))],
                       ["every training example", "one.csv", "same label", "'pos'", "--label-column"]),
    "one-label-subset": (lambda t: ["--task", "text_classification", "--max-train", "1", "--train-file", str(_csv(t))],
                         ["data.csv", "--max-train 1", "same label", "--label-column"]),
    "empty-texts-only": (lambda t: ["--task", "text_classification", "--train-file",
                                    str(_rows(t, "blank.csv", [("", "pos" if i % 2 else "neg") for i in range(40)]))],
                         ["every training text", "empty", "--text-column"]),
    "alpha-zero": (lambda t: ["--partition", "label", "--alpha", "0"], ["alpha", "--alpha"]),
    "alpha-negative": (lambda t: ["--partition", "label", "--alpha", "-0.5"], ["alpha", "-0.5", "--alpha"]),
    "label-partition-without-alpha": (lambda t: ["--partition", "label"], ["alpha", "--alpha"]),
    "quantity-partition-without-beta": (lambda t: ["--partition", "quantity"], ["beta", "--beta"]),
    "more-clients-than-examples": (lambda t: ["--max-train", "50", "--clients", "100"], ["50 examples", "100 clients", "--clients"]),
    "clients-per-round-over-clients": (lambda t: ["--clients", "3", "--clients-per-round", "4"],
                                       ["--clients-per-round 4", "--clients 3"]),
    "rounds-zero": (lambda t: ["--rounds", "0"], ["--rounds", "positive"]),
    "rounds-negative": (lambda t: ["--rounds", "-3"], ["--rounds", "positive"]),
    "mu-nan": (lambda t: ["--algorithm", "fedprox", "--mu", "nan"], ["--mu"]),
    "max-train-negative": (lambda t: ["--max-train", "-5"], ["--max-train", "positive"]),
    "output-under-a-file": (lambda t: ["--output", str(_file(t, "afile", "x") / "out")], ["output folder", "not writable", "--output"]),
    "output-is-a-file": (lambda t: ["--output", str(_file(t, "afile2", "x"))], ["output folder", "not writable", "--output"]),
    "checkpoint-dir-is-a-file": (lambda t: ["--checkpoint-dir", str(_file(t, "ckfile", "x")), "--checkpoint-every", "1"],
                                 ["checkpoint folder", "ckfile", "not writable", "--checkpoint-dir"]),
    "cache-dir-is-a-file": (lambda t: ["--cache-dir", str(_file(t, "cachefile", "x"))],
                            ["tokenization cache folder", "cachefile", "not writable", "--cache-dir"]),
    "config-missing": (lambda t: ["--config", str(t / "missing.yaml")], ["config file not found", "missing.yaml"]),
    "config-invalid-yaml": (lambda t: ["--config", str(_file(t, "bad.yaml", "rounds: [1\n"))], ["not valid YAML", "bad.yaml"]),
    "config-unknown-key": (lambda t: ["--config", str(_file(t, "unk.yaml", "roundz: 3\n"))], ["unknown setting", "roundz"]),
    "config-not-a-mapping": (lambda t: ["--config", str(_file(t, "list.yaml", "- a\n- b\n"))], ["mapping"]),
    "config-wrong-type": (lambda t: ["--config", str(_file(t, "type.yaml", "partition: label\nalpha: abc\n"))],
                          ["alpha", "number", "abc"]),
}


def assert_one_error_line(rc: int, err: str, keywords: list[str]) -> str:
    assert rc == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one stderr line, got: {err!r}"
    line = lines[0]
    assert line.startswith("fednlp-bench: error: ") and len(line) > len("fednlp-bench: error: ")
    for kw in keywords:
        assert kw in line, f"{kw!r} not in {line!r}"
    return line


def assert_nothing_written(out: Path) -> None:
    """No result file, plot, CSV or temp file, not even an empty output folder: nothing is created before the
    inputs are checked."""
    left = sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) if out.is_dir() else []
    assert not out.exists(), f"output folder created before the inputs were checked (holding {left})"


# Every case through `run`; the checks shared by all commands also through `centralized` and `compare`.
SHARED_CASES = ("unknown-task", "missing-label-column", "corrupt-json-data", "rounds-zero", "clients-per-round-over-clients",
                "output-under-a-file", "config-unknown-key")
BAD_INPUT_PARAMS = [pytest.param(case, "run", id=f"run-{case}") for case in BAD_INPUT] + [
    pytest.param(case, cmd, id=f"{cmd}-{case}") for cmd in ("centralized", "compare") for case in SHARED_CASES]


@pytest.mark.parametrize(("case", "command"), BAD_INPUT_PARAMS)
def test_bad_input_is_one_line_and_exit_2(case, command, tmp_path, capsys):
    extra, keywords = BAD_INPUT[case]
    out = tmp_path / "out"
    argv = [command, *fast_args(out, tmp_path / "cache"), *extra(tmp_path)]
    rc, _, err = call(capsys, argv)
    assert_one_error_line(rc, err, keywords)
    out = Path(argv[len(argv) - argv[::-1].index("--output")])  # the last --output given is the one used
    if case == "output-is-a-file":
        assert out.read_text() == "x"  # left alone
    else:
        assert_nothing_written(out)


def test_some_empty_texts_are_one_warning_line_and_the_run_goes_on(tmp_path, shared_cache, capsys):
    rows = [("" if i in (3, 17, 30) else f"sentence number {i} about topic {i % 2}", "pos" if i % 2 else "neg")
            for i in range(60)]
    train = _rows(tmp_path, "gaps.csv", rows)
    out = tmp_path / "out"
    rc, _, err = call(capsys, ["run", *fast_args(out, shared_cache, max_train=None, max_test=None, rounds=1),
                               "--task", "text_classification", "--train-file", str(train)])
    assert rc == 0, err
    [line] = err.strip().splitlines()
    assert line.startswith(f"fednlp-bench: warning: 3 of 60 examples of {train} have an empty text (")
    assert "--text-column" in line
    assert len(list(out.glob("*.json"))) == 1


def test_a_test_file_that_repeats_the_training_texts_is_one_warning_line(tmp_path, shared_cache, capsys):
    # as multidomain_sentiment's test-labeled.tsv, which holds the domain's train.tsv and dev.tsv
    train_rows = [(f"review {i} of the product, topic {i % 2}", "pos" if i % 2 else "neg") for i in range(60)]
    train = _rows(tmp_path, "train.csv", train_rows)
    test = _rows(tmp_path, "test.csv", train_rows[:16] + [(f"held out review {i}", "pos" if i % 2 else "neg")
                                                           for i in range(4)])
    out = tmp_path / "out"
    rc, _, err = call(capsys, ["run", *fast_args(out, shared_cache, max_train=None, max_test=None, rounds=1),
                               "--task", "text_classification", "--train-file", str(train), "--test-file", str(test)])
    assert rc == 0, err
    [line] = err.strip().splitlines()
    assert line.startswith("fednlp-bench: warning: 16 of 20 test examples of ") and "held-out" in line
    # a held-out test file: no warning
    held = _rows(tmp_path, "held.csv", [(f"held out review {i}", "pos" if i % 2 else "neg") for i in range(20)])
    rc, _, err = call(capsys, ["run", *fast_args(tmp_path / "out2", shared_cache, max_train=None, max_test=None,
                                                 rounds=1),
                               "--task", "text_classification", "--train-file", str(train), "--test-file", str(held)])
    assert rc == 0 and err.strip() == "", err


def test_compare_skew_alpha_must_be_positive(tmp_path, capsys):
    out = tmp_path / "out"
    rc, _, err = call(capsys, ["compare", *fast_args(out, tmp_path / "cache"), "--skew-alpha", "0"])
    assert_one_error_line(rc, err, ["alpha", "--alpha"])
    assert_nothing_written(out)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_output_folder(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        rc, _, err = call(capsys, ["run", *fast_args(ro / "out", tmp_path / "cache")])
        assert_one_error_line(rc, err, ["not writable", "--output"])
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)


def unwritable_folder(tmp_path: Path, how: str) -> Path:
    """An --output that cannot be written: a file, a folder under a file, or one in a read-only folder."""
    if how == "is-a-file":
        return _file(tmp_path, "taken", "x")
    if how == "under-a-file":
        return _file(tmp_path, "taken", "x") / "out"
    if os.name != "posix" or os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    return ro / "out"


UNWRITABLE = ["is-a-file", "under-a-file", "read-only"]


@pytest.mark.parametrize("how", UNWRITABLE)
def test_leaderboard_aggregate_to_an_unwritable_output_is_one_line(demo_run, how, tmp_path, capsys):
    target = unwritable_folder(tmp_path, how)
    rc, out, err = call(capsys, ["leaderboard", "aggregate", str(demo_run["out"]), "--output", str(target)])
    assert_one_error_line(rc, err, ["output folder", "not writable", "--output"])
    assert out == ""  # refused before anything was aggregated or printed
    assert target.read_text() == "x" if how == "is-a-file" else not target.exists()


def test_leaderboard_aggregate_that_fails_while_writing_is_one_line(demo_run, tmp_path, capsys, monkeypatch):
    import errno

    import fednlp_bench.leaderboard.aggregate as agg

    def disk_full(df, folder):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(agg, "write_table", disk_full)
    rc, _, err = call(capsys, ["leaderboard", "aggregate", str(demo_run["out"]), "--output", str(tmp_path / "t")])
    assert_one_error_line(rc, err, ["cannot write the table", str(tmp_path / "t"), "--output"])


def test_a_result_that_cannot_be_written_is_one_line(tmp_path, shared_cache, capsys, monkeypatch):
    """The folder was fine when the run started but the disk filled up by the time the result was written."""
    import errno

    import fednlp_bench.results as results

    def disk_full(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(results, "atomic_write", disk_full)
    out = tmp_path / "out"
    rc, _, err = call(capsys, ["run", *fast_args(out, shared_cache, rounds=1)])
    assert_one_error_line(rc, err, ["cannot write the result", "No space left", "--output"])
    assert not list(out.glob("*.json"))


def test_console_script_unknown_task(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "fednlp_bench.cli", "run", "--task", "nosuch", "--output", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fednlp-bench: error: unknown task 'nosuch'")
    assert proc.stdout == ""
    assert_nothing_written(out)


@pytest.mark.parametrize("argv", [["run", "--partition", "nosuch"], ["run", "--rounds", "abc"], [], ["nosuch"]],
                         ids=["bad-choice", "bad-int", "no-command", "unknown-command"])
def test_argparse_errors_are_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fednlp-bench") and "--help" in lines[0]


# ------------------------------------------------------------------------------------------------ help and tasks

def test_tasks_lists_builtin_tasks(capsys):
    rc, out, _ = call(capsys, ["tasks"])
    assert rc == 0
    names = {line.split()[0] for line in out.strip().splitlines()[1:]}
    assert {"demo", "sst2", "agnews"} <= names


def _flag(name: str) -> str:
    return {"text_columns": "--text-column", "progress": "--no-progress",
            "algorithm_args": "--algorithm-arg"}.get(name, "--" + name.replace("_", "-"))


@pytest.mark.parametrize("command", ["run", "centralized", "compare"])
def test_help_mentions_every_config_flag(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    expected = {"--algorithm", "--partition", "--alpha", "--beta", "--clients", "--clients-per-round", "--rounds",
                "--local-epochs", "--client-lr", "--server-lr", "--server-optimizer", "--mu", "--seed", "--model",
                "--output", "--config"}
    # every RunConfig field has its flag (`extra` is YAML-only; --epochs is centralized-only, --algorithm FL-only;
    # the backend and checkpoint flags belong to one federated run)
    expected |= {_flag(f.name) for f in fields(RunConfig) if f.name != "extra"}
    if command == "centralized":
        expected -= {"--algorithm", "--selection", "--selection-candidates", "--dp-clip", "--dp-noise-multiplier",
                     "--dp-delta", "--continual-rounds", "--storage-cap", "--algorithm-arg", "--attack",
                     "--attack-fraction", "--attack-scale"}
    else:
        expected -= {"--epochs", "--max-epochs", "--patience", "--validation-fraction"}
    if command != "run":
        expected -= {"--backend", "--checkpoint-every", "--checkpoint-dir", "--resume"}
    if command == "compare":  # three runs: --log-dir and --save-model belong to one run or one centralized baseline
        expected -= {"--log-dir", "--save-model"}
    missing = sorted(f for f in expected if not re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", text))
    assert missing == []


# ------------------------------------------------------------------------------------------------ one run

def _run(out: Path, cache: Path, *extra: str) -> Path:
    assert main(["run", *fast_args(out, cache), *extra]) == 0
    files = sorted(out.glob("*.json"))
    assert len(files) == 1
    return files[0]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One FedAvg run on the demo with its own (fresh) tokenization cache."""
    base = tmp_path_factory.mktemp("demo-run")
    path = _run(base / "out", base / "cache")
    return {"path": path, "record": load(path), "out": base / "out", "cache": base / "cache"}


def test_run_writes_json_and_png(demo_run):
    out = demo_run["out"]
    assert demo_run["path"] == result_file(out, "demo-fedavg-uniform-seed42")
    png = demo_run["path"].with_suffix(".png")
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.iterdir()) == [png.stem + ".json", png.name]  # no temp files left


def test_run_record_schema(demo_run):
    rec = demo_run["record"]
    assert rec["schema_version"] == 1
    assert rec["package_version"] == __version__
    assert rec["kind"] == "federated"
    assert rec["seed"] == 42
    cfg = rec["config"]
    assert {f.name for f in fields(RunConfig)} <= set(cfg)
    assert cfg["algorithm"] == "fedavg" and cfg["rounds"] == 2 and cfg["clients"] == 4 and cfg["max_length"] == 32
    for key in ("client_optimizer", "client_lr", "mu", "model", "server_momentum"):
        assert cfg[key] is not None, key
    assert cfg["client_optimizer"] == "adamw" and cfg["mu"] == 0.0
    assert re.fullmatch(r"[0-9a-f]{64}", rec["partition"]["digest"])
    assert rec["partition"]["name"] == "uniform" and rec["partition"]["clients"] == 4
    assert rec["task"]["num_train"] == 300 and rec["task"]["num_test"] == 150
    curve = rec["curve"]
    assert [p["round"] for p in curve] == [1, 2]
    for point in curve:
        assert set(point["metrics"]) >= {"accuracy", "macro_f1"}
        assert all(0.0 <= point["metrics"][m] <= 1.0 for m in ("accuracy", "macro_f1"))
        assert point["wall_time_s"] >= 0
    assert curve[-1]["wall_time_s"] >= curve[0]["wall_time_s"]
    assert rec["final"] == curve[-1]["metrics"]
    acc = rec["clients"]["accuracy"]
    for stat in ("mean", "std", "min", "p10"):
        assert isinstance(acc[stat], float), stat
    assert acc["min"] <= acc["p10"] <= acc["max"] and acc["min"] <= acc["mean"] <= acc["max"]
    assert rec["wall_time_s"] > 0
    assert rec["upload_bytes_per_client_per_round"] > 0
    assert rec["upload_bytes_per_client_per_round"] == 4 * rec["num_parameters"]  # float32 parameters


def test_run_prints_metric_and_path(tmp_path, shared_cache, capsys):
    rc, out, err = call(capsys, ["run", *fast_args(tmp_path / "o", shared_cache, rounds=1)])
    assert rc == 0
    assert re.search(r"accuracy=\d\.\d{4}  result: .*demo-fedavg-uniform-seed42-[0-9a-f]{10}\.json", out)
    assert "Traceback" not in err


def test_run_is_deterministic(demo_run, tmp_path):
    # a second, independent run: other output folder and a fresh cache
    again = load(_run(tmp_path / "out", tmp_path / "cache"))
    first = demo_run["record"]
    assert again["partition"]["digest"] == first["partition"]["digest"]
    assert again["final"] == first["final"]
    assert [p["metrics"] for p in again["curve"]] == [p["metrics"] for p in first["curve"]]
    assert again["clients"] == first["clients"]


def test_runs_differing_only_in_learning_rate_into_one_folder_keep_both_results(tmp_path, shared_cache):
    out = tmp_path / "out"
    for lr in ("0.001", "0.002"):
        assert main(["run", *fast_args(out, shared_cache, rounds=1), "--client-lr", lr]) == 0
    files = sorted(out.glob("demo-fedavg-uniform-seed42-*.json"))
    assert len(files) == 2, [p.name for p in out.iterdir()]
    assert sorted(load(p)["config"]["client_lr"] for p in files) == [0.001, 0.002]
    assert len(list(out.glob("*.png"))) == 2
    # the same settings again replace their own result: one file per settings, not per invocation
    assert main(["run", *fast_args(out, shared_cache, rounds=1), "--client-lr", "0.001"]) == 0
    assert len(list(out.glob("*.json"))) == 2


def test_result_file_and_checkpoint_folder_share_the_settings_key(tmp_path, shared_cache):
    out = tmp_path / "out"
    assert main(["run", *fast_args(out, shared_cache, rounds=1), "--checkpoint-every", "1"]) == 0
    [result] = out.glob("*.json")
    [folder] = (out / "checkpoints").iterdir()
    assert folder.name == result.stem
    assert json.loads((folder / "checkpoint.json").read_text())["settings"]["rounds"] == 1


def test_tokenization_cache_is_reused(demo_run, tmp_path):
    cache = demo_run["cache"]
    tok = sorted(cache.glob("tok-*.npz"))
    assert len(tok) == 2  # train and test
    old = 1_000_000_000  # 2001: a rewrite would give a current mtime
    for p in cache.iterdir():
        os.utime(p, (old, old))
    before = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    again = load(_run(tmp_path / "out", cache))
    after = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    assert after == before
    assert again["final"] == demo_run["record"]["final"]


# ------------------------------------------------------------------------------------------------ config file

def test_config_file_and_flag_precedence(tmp_path, shared_cache):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("rounds: 3\npartition: label\nalpha: 0.5\nseed: 7\nclient-lr: 3e-3\nlocal_epochs: 1\n")
    out = tmp_path / "out"
    # --rounds 2 on the command line wins over the file's rounds: 3
    assert main(["run", *fast_args(out, shared_cache, rounds=2), "--config", str(cfg)]) == 0
    path = result_file(out, "demo-fedavg-niid_label_clients=4_alpha=0.5-seed7")
    rec = load(path)
    assert len(rec["curve"]) == 2 and rec["config"]["rounds"] == 2
    assert rec["config"]["partition"] == "label" and rec["config"]["alpha"] == 0.5
    assert rec["partition"]["method"] == "label" and rec["partition"]["alpha"] == 0.5
    assert rec["seed"] == 7 and rec["config"]["seed"] == 7
    assert rec["config"]["client_lr"] == pytest.approx(3e-3)  # YAML reads 3e-3 as a string; it must become a float
    assert path.with_suffix(".png").is_file()


# ------------------------------------------------------------------------------------------------ algorithms

def test_fedprox_records_mu(tmp_path, shared_cache):
    out = tmp_path / "out"
    assert main(["run", *fast_args(out, shared_cache), "--algorithm", "fedprox", "--mu", "0.05"]) == 0
    rec = load(result_file(out, "demo-fedprox-uniform-seed42"))
    assert rec["config"]["algorithm"] == "fedprox"
    assert rec["config"]["mu"] == 0.05
    assert rec["final"]["accuracy"] is not None and len(rec["curve"]) == 2


@pytest.mark.parametrize("server_opt", ["sgd", "adam", "yogi", "adagrad"])
def test_fedopt_records_server_optimizer(server_opt, tmp_path, shared_cache):
    out = tmp_path / "out"
    argv = ["run", *fast_args(out, shared_cache), "--algorithm", "fedopt", "--server-optimizer", server_opt,
            "--server-lr", "0.01"]
    assert main(argv) == 0
    rec = load(result_file(out, "demo-fedopt-uniform-seed42"))
    cfg = rec["config"]
    assert cfg["algorithm"] == "fedopt" and cfg["server_optimizer"] == server_opt and cfg["server_lr"] == 0.01
    assert cfg["client_optimizer"] == "adamw"
    assert cfg["server_momentum"] == (0.9 if server_opt == "sgd" else 0.0)
    assert all(math.isfinite(v) for v in rec["final"].values())


# ------------------------------------------------------------------------------------------------ centralized and compare

def test_centralized_defaults_to_fl_equivalent_passes(tmp_path, shared_cache):
    out = tmp_path / "out"
    # rounds 3 * local epochs 1 * 2 clients per round / 4 clients = 1.5 passes
    assert main(["centralized", *fast_args(out, shared_cache, rounds=3)]) == 0
    path = result_file(out, "demo-centralized-all-seed42")
    assert path.with_suffix(".png").is_file()
    rec = load(path)
    assert rec["kind"] == "centralized"
    assert rec["config"]["algorithm"] == "centralized"
    assert rec["config"]["epochs"] == pytest.approx(1.5)
    assert rec["curve"][-1]["passes"] == pytest.approx(1.5)
    assert rec["upload_bytes_per_client_per_round"] == 0
    assert set(rec["final"]) >= {"accuracy", "macro_f1"}


def test_compare_prints_table_and_writes_csv_and_png(tmp_path, shared_cache, capsys):
    out = tmp_path / "out"
    rc, stdout, err = call(capsys, ["compare", *fast_args(out, shared_cache)])
    assert rc == 0, err
    rows = [line.strip() for line in stdout.splitlines()]
    for setting in ("centralized", "fedavg iid", "fedavg alpha=0.1"):
        assert any(r.startswith(setting + " ") for r in rows), (setting, stdout)
    with (out / "compare-demo.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [r["setting"] for r in table] == ["centralized", "fedavg iid", "fedavg alpha=0.1"]
    assert all(0.0 <= float(r["accuracy"]) <= 1.0 for r in table)
    assert (out / "compare-demo.png").read_bytes()[:4] == b"\x89PNG"
    for stem in ("demo-centralized-all-seed42", "demo-fedavg-uniform-seed42",
                 "demo-fedavg-niid_label_clients=4_alpha=0.1-seed42"):
        assert result_file(out, stem).with_suffix(".png").is_file(), stem
    assert not [p.name for p in out.iterdir() if ".tmp" in p.name or p.name.startswith(".")]


@pytest.mark.parametrize("argv", [["compare", "--task", "demo"], ["reproduce", "text_classification"]])
def test_sigterm_inside_compare_or_reproduce_is_one_line_and_exit_143(capsys, monkeypatch, argv):
    """A run inside compare / reproduce that checkpoints on SIGTERM raises Interrupted: one line, no traceback."""
    from fednlp_bench import compare, reproduce
    from fednlp_bench.fl.checkpoint import Interrupted

    def stopped(*args, **kwargs):
        raise Interrupted(3, None)

    monkeypatch.setattr(compare, "compare", stopped)
    monkeypatch.setattr(reproduce, "reproduce", stopped)
    rc, _, err = call(capsys, argv)
    assert rc == 143 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "stopped by SIGTERM after round 3" in err and "rerun the same command" in err
