"""Loading an algorithm by name, module:Class or entry point; typed arguments; one-line refusals; what a result and
the board record of a plug-in run."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from fednlp_bench.algorithms.registry import forget_loaded, installed_plugins, load_algorithm, parse_args
from fednlp_bench.cli import main
from fednlp_bench.config import RunConfig, run_settings, settings_key
from fednlp_bench.errors import UserError

PLUGIN = '''
from dataclasses import dataclass
from typing import Literal

import torch

from fednlp_bench.algorithms import Algorithm, Contribution


@dataclass
class Args:
    k: int = 2
    rate: float = 0.5
    mode: Literal["a", "b"] = "a"
    cap: float | None = None
    flag: bool = False


class MyAlgo(Algorithm):
    name = "myalgo"
    Args = Args


class NotAnAlgorithm:
    pass


class OldApi(Algorithm):
    api_version = 0


class Unsafe(Algorithm):
    def state_dict(self):
        return {"opt": object()}


class DpLiar(Algorithm):
    supports_client_dp = True

    def client_end(self, ctx, delta):
        return Contribution.weighted_delta(delta * 2, ctx.weight)


class DpNoDelta(Algorithm):
    supports_client_dp = True
    vectors = ("update",)
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch, request) -> str:
    """A plug-in module (unique name per test) on sys.path; returns its module name."""
    name = f"myplug_{request.node.name.split('[')[0][-20:]}_{abs(hash(request.node.name)) % 10**6}"
    (tmp_path / f"{name}.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    forget_loaded()
    return name


def write_dist(site: Path, dist: str, version: str, entries: dict[str, str]) -> None:
    """An installed distribution as pip leaves it: a dist-info folder with METADATA and entry_points.txt."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entries.items())
    (info / "entry_points.txt").write_text(f"[fednlp_bench.algorithms]\n{lines}\n")


def test_module_class_spec_loads_the_class_and_records_its_source(plugin, tmp_path):
    loaded = load_algorithm(f"{plugin}:MyAlgo")
    assert loaded.kind == "module" and not loaded.builtin and loaded.qualname == f"{plugin}.MyAlgo"
    assert loaded.source_sha256 == hashlib.sha256((tmp_path / f"{plugin}.py").read_bytes()).hexdigest()
    assert load_algorithm("scaffold").builtin and load_algorithm("scaffold").cls.__name__ == "Scaffold"


def test_arguments_are_typed_from_text_and_from_yaml_values(plugin):
    loaded = load_algorithm(f"{plugin}:MyAlgo")
    args = parse_args(loaded, {"k": "3", "rate": "1e-2", "mode": "b", "cap": "none", "flag": "yes"})
    assert (args.k, args.rate, args.mode, args.cap, args.flag) == (3, 0.01, "b", None, True)
    args = parse_args(loaded, {"k": 4, "rate": 1, "cap": 2})  # YAML: an int is a fine float
    assert (args.k, args.rate, args.cap) == (4, 1.0, 2.0) and isinstance(args.rate, float)
    for given, words in [({"k": "1.5"}, "expected an integer"), ({"mode": "c"}, "choose one of: a, b"),
                         ({"flag": "maybe"}, "true or false"), ({"rate": "nan"}, "finite"),
                         ({"k": None}, "cannot be none"), ({"zz": 1}, "has no argument 'zz'")]:
        with pytest.raises(UserError, match=words):
            parse_args(loaded, given)


def test_entry_point_plugins_load_by_name_and_cannot_take_a_builtin_name(plugin, tmp_path, monkeypatch):
    site = tmp_path / "site"
    write_dist(site, "demo-plugins", "1.2", {"myalgo_ep": f"{plugin}:MyAlgo", "fedavg": f"{plugin}:MyAlgo"})
    monkeypatch.syspath_prepend(str(site))
    forget_loaded()
    loaded = load_algorithm("myalgo_ep")
    assert loaded.kind == "entry point" and loaded.cls.__name__ == "MyAlgo"
    assert (loaded.distribution, loaded.version) == ("demo-plugins", "1.2")
    assert "myalgo_ep" in installed_plugins() and "fedavg" not in installed_plugins()
    assert load_algorithm("fedavg").builtin  # a plug-in registering a built-in name is ignored
    write_dist(site, "other-plugins", "2.0", {"myalgo_ep": f"{plugin}:MyAlgo"})
    forget_loaded()
    with pytest.raises(UserError, match="two installed plug-ins register the algorithm name 'myalgo_ep'"):
        load_algorithm("myalgo_ep")


def run_args(out: Path, *extra: str) -> list[str]:
    return ["run", "--task", "demo", "--max-train", "80", "--max-test", "20", "--clients", "6",
            "--clients-per-round", "5", "--rounds", "1", "--no-progress", "--output", str(out), *extra]


REFUSALS = {
    "unknown": (["--algorithm", "nosuch"], "unknown --algorithm 'nosuch'; choose a built-in"),
    "no-module": (["--algorithm", "no_such_module_xyz:Algo"], "cannot import module 'no_such_module_xyz'"),
    "no-class": (["--algorithm", "{plugin}:Nope"], "has no 'Nope'"),
    "not-subclass": (["--algorithm", "{plugin}:NotAnAlgorithm"], "is not a subclass of"),
    "api-version": (["--algorithm", "{plugin}:OldApi"], "Algorithm API version 0"),
    "bad-spec": (["--algorithm", "a:b:c"], "not of the form module:Class"),
    "no-args": (["--algorithm", "fedavg", "--algorithm-arg", "x=1"], "takes no --algorithm-arg"),
    "bad-type": (["--algorithm", "qfedavg", "--algorithm-arg", "q=abc"], "q=abc for qfedavg: expected a number"),
    "bad-value": (["--algorithm", "qfedavg", "--algorithm-arg", "q=-1"], "q must be >= 0"),
    "not-pair": (["--algorithm", "qfedavg", "--algorithm-arg", "q"], "is not KEY=VALUE"),
    "dp-median": (["--algorithm", "median", "--dp-clip", "1"], "client-level DP (--dp-clip) cannot be combined"),
    "dp-scaffold": (["--algorithm", "scaffold", "--dp-clip", "1"], "uploads more than a clipped delta"),
    "dpsgd-qfedavg": (["--algorithm", "qfedavg", "--dp-sgd-clip", "1"], "example-level DP-SGD"),
    "weighting": (["--algorithm", "median", "--weighting", "batches"], "counts clients equally"),
    "dp-promise": (["--algorithm", "{plugin}:DpNoDelta"], "declares supports_client_dp but does not upload"),
    "dp-broken-promise": (["--algorithm", "{plugin}:DpLiar", "--dp-clip", "1"],
                          "under client-level DP client_end must return Contribution.weighted_delta"),
    "krum-too-few": (["--algorithm", "krum", "--clients-per-round", "4"], "more than 2f + 2 = 4 clients"),
    "trim-all": (["--algorithm", "trimmed_mean", "--algorithm-arg", "beta=0.5"], "beta must lie in [0, 0.5)"),
    "mu": (["--algorithm", "scaffold", "--mu", "0.1"], "--mu is FedProx's proximal weight"),
    "mu-twice": (["--algorithm", "fedprox", "--mu", "0.1", "--algorithm-arg", "mu=0.2"], "disagree"),
    "attack-no-fraction": (["--attack", "sign_flip"], "--attack needs --attack-fraction"),
    "attack-fraction": (["--attack", "noise", "--attack-fraction", "1.5"], "in (0, 1)"),
    "attack-scale": (["--attack", "scale", "--attack-fraction", "0.2", "--attack-scale", "-1"], "--attack-scale"),
    "fraction-alone": (["--attack-fraction", "0.2"], "need --attack"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_bad_algorithm_settings_are_one_line_exit_2_and_write_nothing(case, plugin, tmp_path, capsys):
    argv, words = REFUSALS[case]
    out = tmp_path / "out"
    rc = main(run_args(out, *[a.format(plugin=plugin) for a in argv]))
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    [line] = err.strip().splitlines()
    assert line.startswith("fednlp-bench: error: ") and words in line, line
    assert not out.exists()


def test_a_plugin_that_fails_on_import_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "broken_plugin_mod.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    forget_loaded()
    assert main(run_args(tmp_path / "out", "--algorithm", "broken_plugin_mod:X")) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "cannot import module 'broken_plugin_mod'" in line and "RuntimeError: boom at import" in line
    assert main(["check-algorithm", "broken_plugin_mod:X"]) == 2  # check-algorithm refuses before launching anything
    assert "cannot import module" in capsys.readouterr().err


def test_yaml_algorithm_args_are_typed_and_the_command_line_wins(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("algorithm: qfedavg\nalgorithm_args: {q: 0.5, lipschitz: 20}\n")
    out = tmp_path / "out"
    assert main(run_args(out, "--config", str(cfg), "--algorithm-arg", "q=1.5")) == 0
    [path] = out.glob("*.json")
    rec = json.loads(path.read_text())
    assert rec["config"]["algorithm_args"] == {"q": 1.5, "lipschitz": 20.0}
    assert rec["algorithm"]["args"] == {"q": 1.5, "lipschitz": 20.0} and rec["algorithm"]["builtin"] is True
    assert rec["algorithm"]["class"] == "fednlp_bench.algorithms.qfedavg.QFedAvg"
    cfg.write_text("algorithm: qfedavg\nalgorithm_args: [1, 2]\n")
    capsys.readouterr()
    assert main(run_args(tmp_path / "o2", "--config", str(cfg))) == 2
    assert "must be a mapping" in capsys.readouterr().err


def test_new_settings_at_their_defaults_leave_earlier_runs_keys_unchanged():
    rc = RunConfig(task="demo").resolved().to_dict()
    assert not {"algorithm_args", "attack", "attack_fraction", "attack_scale"} & set(run_settings(rc))
    other = RunConfig(task="demo", algorithm="qfedavg", algorithm_args={"q": "0.2"}).resolved()
    assert other.algorithm_args == {}  # the default, given explicitly, is the default
    changed = RunConfig(task="demo", algorithm="qfedavg", algorithm_args={"q": "0.5"}).resolved()
    assert changed.algorithm_args == {"q": 0.5}
    assert settings_key(changed.to_dict()) != settings_key(other.to_dict())


def test_server_state_that_checkpoints_cannot_hold_is_refused_when_saving(plugin, tmp_path):
    from fednlp_bench.data import demo_dataset
    from fednlp_bench.fl.client import ClientConfig
    from fednlp_bench.fl.simulation import Checkpointing, FLConfig, run_federated
    from fednlp_bench.fl.strategies import ServerConfig
    from fednlp_bench.tasks import TextClassificationTask

    task = TextClassificationTask(demo_dataset(num_train=40, num_test=10, seed=1), model="tiny", max_length=16,
                                  cache_dir=tmp_path / "cache")
    parts = [torch.arange(i, 40, 2).numpy() for i in range(2)]
    cfg = FLConfig(algorithm=f"{plugin}:Unsafe", rounds=1, clients_per_round=2, client=ClientConfig(),
                   server=ServerConfig(), progress=False)
    with pytest.raises(UserError, match=r"server state: state_dict\(\)\['opt'\] is a builtins.object"):
        run_federated(task, parts, cfg, torch.device("cpu"), checkpointing=Checkpointing(tmp_path / "ck", "k", every=1))
    assert not (tmp_path / "ck" / "checkpoint.pt").exists()


# ---------------------------------------------------------------------------------------------- results and board

@pytest.fixture(scope="module")
def plugin_result(tmp_path_factory) -> dict:
    """A real run of a module:Class plug-in (its module written to a folder on sys.path)."""
    import sys

    folder = tmp_path_factory.mktemp("plugin")
    (folder / "board_plugin_mod.py").write_text(PLUGIN)
    sys.path.insert(0, str(folder))
    try:
        forget_loaded()
        out = folder / "out"
        assert main(run_args(out, "--algorithm", "board_plugin_mod:MyAlgo", "--algorithm-arg", "k=3")) == 0
    finally:
        sys.path.remove(str(folder))
    [path] = out.glob("*.json")
    return {"path": path, "record": json.loads(path.read_text()),
            "sha": hashlib.sha256((folder / "board_plugin_mod.py").read_bytes()).hexdigest()}


def test_a_plugin_result_records_spec_class_source_and_arguments(plugin_result):
    from fednlp_bench.leaderboard.schema import default_method, validate_result

    rec = plugin_result["record"]
    assert rec["config"]["algorithm"] == "board_plugin_mod:MyAlgo" and rec["config"]["algorithm_args"] == {"k": 3}
    block = rec["algorithm"]
    assert block["class"] == "board_plugin_mod.MyAlgo" and block["kind"] == "module" and block["builtin"] is False
    assert block["source_sha256"] == plugin_result["sha"] and block["api_version"] == 1
    assert block["args"] == {"k": 3, "rate": 0.5, "mode": "a", "cap": None, "flag": False}
    assert validate_result(rec) == []
    assert default_method(rec) == "plugin(board_plugin_mod.MyAlgo)(k=3)"


def test_the_board_keeps_plugin_runs_apart_and_no_plugin_passes_for_a_builtin(plugin_result, tmp_path):
    from fednlp_bench.leaderboard.schema import validate_result
    from fednlp_bench.leaderboard.submit import submit

    root = tmp_path / "board"
    kw = dict(submitter="A Lab", allow_non_canonical=True)
    for method, words in [("fedavg", "plug-in rows are kept apart"), ("myalgo", "plug-in rows are kept apart")]:
        with pytest.raises(UserError, match=words):
            submit(plugin_result["path"], root, method=method, **kw)
    stored = submit(plugin_result["path"], root, **kw)
    assert json.loads(stored.read_text())["submission"]["method"] == "plugin(board_plugin_mod.MyAlgo)(k=3)"
    # a result that names a built-in but was made by another class is invalid
    forged = json.loads(plugin_result["path"].read_text())
    forged["config"]["algorithm"] = forged["algorithm"]["spec"] = "scaffold"
    assert any("is a built-in name, but the run's class is 'board_plugin_mod.MyAlgo'" in p
               for p in validate_result(forged))
    forged["algorithm"]["class"] = "fednlp_bench.algorithms.scaffold.Scaffold"
    forged["algorithm"]["builtin"] = False
    assert any("is a built-in name" in p for p in validate_result(forged))
    # a built-in run cannot take a plug-in's name
    builtin = json.loads(plugin_result["path"].read_text())
    builtin["config"]["algorithm"] = "fedavg"
    builtin["config"]["algorithm_args"] = {}
    builtin["algorithm"].update(spec="fedavg", builtin=True, kind="builtin",
                                **{"class": "fednlp_bench.algorithms.fedavg.FedAvg"})
    assert validate_result(builtin) == []
    path = tmp_path / "builtin.json"
    path.write_text(json.dumps(builtin))
    with pytest.raises(UserError, match="is a plug-in's name"):
        submit(path, root, method="plugin(x)", **kw)


def test_reading_a_plugin_result_never_imports_the_plugin(plugin_result, tmp_path, monkeypatch):
    """The board reads what a result says of its algorithm; it never imports the class a result names."""
    from fednlp_bench.leaderboard.aggregate import aggregate
    from fednlp_bench.leaderboard.schema import as_submission, validate_result

    marker = tmp_path / "imported"
    (tmp_path / "trap_plugin_mod.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    rec = json.loads(plugin_result["path"].read_text())
    rec["config"]["algorithm"] = rec["algorithm"]["spec"] = "trap_plugin_mod:MyAlgo"
    assert validate_result(rec) == []
    doc = as_submission(rec, "trap.json")
    assert doc["submission"]["method"].startswith("plugin(trap_plugin_mod.MyAlgo)")
    assert len(aggregate([doc])) == 1
    assert not marker.exists()


def test_a_resume_mismatch_names_the_algorithm_argument_flag(tmp_path):
    """The checkpoint's settings differ in algorithm_args: the message names the flag a user types."""
    import json

    from fednlp_bench.fl.checkpoint import settings_difference

    (tmp_path / "checkpoint.json").write_text(json.dumps({"settings": {"algorithm_args": {"mu": 1.0}}}))
    text = settings_difference(tmp_path, {"algorithm_args": {"mu": 2.0}})
    assert text.startswith("--algorithm-arg ") and "--algorithm-args" not in text
