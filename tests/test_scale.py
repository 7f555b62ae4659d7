"""Scale-out and fault tolerance: the torch.distributed backend (2 gloo processes) and checkpoint/resume.

Every run here is a real `fednlp-bench run` subprocess with one BLAS thread per process, so the in-process
reference and each distributed rank execute the same kernels (thread count changes float reduction order).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fednlp_bench.config import RunConfig
from fednlp_bench.fl.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from fednlp_bench.runner import checkpoint_key

# FedOpt with a server Adam: the server optimizer's moments must survive all_reduce and checkpoints alike.
RUN = ["--task", "demo", "--max-train", "480", "--max-test", "80", "--clients", "6", "--clients-per-round", "4",
       "--local-epochs", "2",
       "--algorithm", "fedopt", "--server-optimizer", "adam", "--server-lr", "0.01", "--seed", "5", "--no-progress"]
ROUNDS = 8


def env_one_thread() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "fednlp_bench.cli", "run", *RUN, *args]


def run_ok(cmd: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env_one_thread(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def final_checkpoint(folder: Path) -> dict:
    [pt] = folder.glob("checkpoints/*/checkpoint.pt")
    return torch.load(pt, map_location="cpu", weights_only=True)  # a checkpoint is tensors and numbers only


def result(folder: Path) -> dict:
    [path] = folder.glob("*.json")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted in-process run, checkpointing at its end (the checkpoint holds the final weights)."""
    out = tmp_path_factory.mktemp("reference")
    run_ok(cli("--rounds", str(ROUNDS), "--checkpoint-every", str(ROUNDS), "--output", str(out)))
    return out


def test_two_gloo_processes_match_the_in_process_backend(reference, tmp_path):
    out = tmp_path / "dist"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc-per-node", "2",
           "-m", "fednlp_bench.cli", "run", *RUN, "--rounds", str(ROUNDS), "--checkpoint-every", str(ROUNDS),
           "--backend", "distributed", "--output", str(out)]
    run_ok(cmd, timeout=400)
    ours, ref = final_checkpoint(out), final_checkpoint(reference)
    diff = (ours["global_weights"] - ref["global_weights"]).abs().max().item()
    moved = (ref["global_weights"] - final_checkpoint_initial(reference)).abs().max().item()
    assert diff < 1e-5, f"distributed vs in-process max abs difference {diff}"
    assert moved > 1e-3  # training really changed the weights, so equality is not trivial
    rec = result(out)
    assert rec["execution"]["backend"] == "distributed" and rec["execution"]["world_size"] == 2
    assert rec["execution"]["torch_threads"] == result(reference)["execution"]["torch_threads"] == 1
    assert rec["final"] == result(reference)["final"]
    assert [c["clients"] for c in rec["curve"]] == [c["clients"] for c in result(reference)["curve"]]
    # the server Adam's moments are the same on the rank that checkpointed
    ref_state, our_state = ref["server_state"]["state"][0], ours["server_state"]["state"][0]
    assert (ref_state["exp_avg_sq"] - our_state["exp_avg_sq"]).abs().max().item() < 1e-9
    assert len(list(out.glob("*.json"))) == 1  # only rank 0 writes a result


def final_checkpoint_initial(reference: Path) -> torch.Tensor:
    """The initial global model of the reference config (a 0-round view: the seed's fresh model)."""
    from fednlp_bench.fl.params import FlatParams
    from fednlp_bench.runner import prepare

    cfg = RunConfig(**{k: v for k, v in result(reference)["config"].items()})
    cfg.output = str(reference / "unused")
    _, task = prepare(cfg)
    return FlatParams(task.new_model(cfg.seed)).get()


def wait_for_round(folder: Path, round_idx: int, proc: subprocess.Popen, timeout: float = 240) -> int:
    """Poll the run's checkpoint summary until it holds `round_idx` or later; returns the round it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for summary in folder.glob("checkpoints/*/checkpoint.json"):
            try:
                held = json.loads(summary.read_text())["round"]
            except (OSError, ValueError):
                continue
            if held >= round_idx:
                return held
        assert proc.poll() is None, f"run ended before round {round_idx}: {proc.stderr.read()[-2000:]}"
        time.sleep(0.02)
    raise AssertionError(f"no checkpoint of round {round_idx} within {timeout} s")


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_interrupted_and_resumed_run_equals_the_uninterrupted_one(reference, tmp_path, how):
    out = tmp_path / "run"
    cmd = cli("--rounds", str(ROUNDS), "--checkpoint-every", "1", "--output", str(out))
    proc = subprocess.Popen(cmd, env=env_one_thread(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if how == "SIGKILL":
        held = wait_for_round(out, 2, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL
    else:
        wait_for_round(out, 1, proc)
        proc.send_signal(signal.SIGTERM)  # the run finishes its current round, checkpoints it and exits
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 143, err[-2000:]
        assert "--resume" in err and "Traceback" not in err
        held = json.loads(next(out.glob("checkpoints/*/checkpoint.json")).read_text())["round"]
    assert 1 <= held < ROUNDS, f"the run was stopped after round {held} of {ROUNDS}"
    assert not list(out.glob("*.json")), "an interrupted run wrote a result"

    run_ok(cmd + ["--resume", "--checkpoint-every", str(ROUNDS)])
    resumed, ref = result(out), result(reference)
    assert resumed["execution"]["torch_threads"] == ref["execution"]["torch_threads"] == 1  # same kernels
    assert resumed["execution"]["resumed_from_round"] == held
    assert resumed["final"] == ref["final"]
    assert resumed["clients"] == ref["clients"]
    assert [c["metrics"] for c in resumed["curve"]] == [c["metrics"] for c in ref["curve"]]
    assert torch.equal(final_checkpoint(out)["global_weights"], final_checkpoint(reference)["global_weights"])


def test_stop_request_checkpoints_the_finished_round_even_without_periodic_checkpoints(tmp_path):
    from fednlp_bench.data import demo_dataset
    from fednlp_bench.fl.checkpoint import Interrupted, StopFlag
    from fednlp_bench.fl.client import ClientConfig
    from fednlp_bench.fl.simulation import Checkpointing, FLConfig, run_federated
    from fednlp_bench.fl.strategies import ServerConfig
    from fednlp_bench.tasks import TextClassificationTask

    data = demo_dataset(num_train=80, num_test=20, seed=1)
    task = TextClassificationTask(data, model="tiny", max_length=16, cache_dir=tmp_path / "cache")
    parts = [torch.arange(i, 80, 4).numpy() for i in range(4)]
    fl = FLConfig(algorithm="fedavg", rounds=5, clients_per_round=2, client=ClientConfig(optimizer="adamw", lr=1e-3),
                  server=ServerConfig(), progress=False)
    ck = Checkpointing(folder=tmp_path / "ck", key="k", every=0)
    with pytest.raises(Interrupted) as stopped:
        run_federated(task, parts, fl, torch.device("cpu"), checkpointing=ck, stop=StopFlag(requested=True))
    assert stopped.value.round == 1
    saved = load_checkpoint(tmp_path / "ck", "k")
    assert saved.round == 1 and len(saved.curve) == 1


def test_resume_without_a_checkpoint_starts_from_round_one(tmp_path):
    from fednlp_bench.runner import run_fl

    cfg = RunConfig(task="demo", max_train=120, max_test=40, clients=4, clients_per_round=2, rounds=2, resume=True,
                    output=str(tmp_path), progress=False)
    rec = run_fl(cfg)
    assert rec["execution"]["resumed_from_round"] is None and len(rec["curve"]) == 2


def test_checkpoint_of_other_settings_or_corrupt_is_refused(tmp_path):
    folder = tmp_path / "ck"
    a = RunConfig(task="demo", rounds=3)
    b = RunConfig(task="demo", rounds=3, client_lr=0.01)
    assert checkpoint_key(a.resolved()) != checkpoint_key(b.resolved())
    # where and how a run executes does not change what it computes: same key
    c = RunConfig(task="demo", rounds=3, output="elsewhere", backend="distributed", checkpoint_every=2, progress=False)
    assert checkpoint_key(a.resolved()) == checkpoint_key(c.resolved())
    save_checkpoint(folder, Checkpoint(round=1, rounds=3, key=checkpoint_key(a.resolved()),
                                       global_weights=torch.arange(4.0), server_state={}))
    assert load_checkpoint(folder, checkpoint_key(a.resolved())).round == 1
    assert torch.equal(load_checkpoint(folder, checkpoint_key(a.resolved())).global_weights, torch.arange(4.0))
    assert not list(folder.glob(".*tmp*")), "a temp file was left behind"
    proc = subprocess.run([sys.executable, "-m", "fednlp_bench.cli", "run", "--task", "demo", "--rounds", "3",
                           "--client-lr", "0.01", "--resume", "--checkpoint-dir", str(folder), "--output",
                           str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "other settings" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    (folder / "checkpoint.pt").write_bytes(b"not a checkpoint")
    proc = subprocess.run([sys.executable, "-m", "fednlp_bench.cli", "run", "--task", "demo", "--rounds", "3",
                           "--resume", "--checkpoint-dir", str(folder), "--output", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "cannot be read" in proc.stderr and "Traceback" not in proc.stderr
    assert not list((tmp_path / "o").glob("*.json"))


class _RunsCode:
    """Unpickling this calls os.system: what a crafted checkpoint would do."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_crafted_checkpoint_with_a_pickle_payload_is_refused_without_running_it(tmp_path):
    folder, marker = tmp_path / "ck", tmp_path / "pwned"
    cfg = RunConfig(task="demo", rounds=3, client_lr=0.01, output=str(tmp_path / "o"))
    folder.mkdir()
    # a checkpoint of exactly these settings (right key), with the payload hidden in the server state
    torch.save({"format": 2, "round": 1, "rounds": 3, "key": checkpoint_key(cfg.resolved()),
                "global_weights": torch.zeros(4), "server_state": {"x": _RunsCode(f"touch {marker}")}, "curve": [],
                "wall_time_s": 0.0, "rng": {}}, folder / "checkpoint.pt")
    torch.load(folder / "checkpoint.pt", weights_only=False)  # a plain unpickle really runs the payload
    assert marker.exists()
    marker.unlink()
    proc = subprocess.run([sys.executable, "-m", "fednlp_bench.cli", "run", "--task", "demo", "--rounds", "3",
                           "--client-lr", "0.01", "--resume", "--checkpoint-dir", str(folder), "--output",
                           str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert not marker.exists(), "loading the checkpoint ran its pickle payload"
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("fednlp-bench: error: checkpoint ") and "cannot be read safely" in line
    assert not (tmp_path / "o").exists()


def test_a_checkpoint_that_cannot_be_written_is_one_error_and_leaves_no_temp_file(tmp_path, monkeypatch):
    import errno

    from fednlp_bench.errors import UserError

    blocked = tmp_path / "afile"
    blocked.write_text("x")
    with pytest.raises(UserError, match="cannot write the checkpoint to .*afile.*--checkpoint-dir"):
        save_checkpoint(blocked / "ck", Checkpoint(round=1, rounds=2, key="k", global_weights=torch.zeros(2),
                                                   server_state={}))

    def disk_full(obj, path):
        Path(path).write_bytes(b"half")  # the temp file is half written when the disk fills up
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(UserError, match="No space left"):
        save_checkpoint(tmp_path / "ck", Checkpoint(round=1, rounds=2, key="k", global_weights=torch.zeros(2),
                                                    server_state={}))
    assert list((tmp_path / "ck").iterdir()) == []


def test_rng_states_survive_a_checkpoint_round_trip(tmp_path):
    import random

    import numpy as np

    from fednlp_bench.fl.checkpoint import restore_rng, rng_states

    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.normal()  # numpy now caches a Gaussian: that part of its state must survive too
    save_checkpoint(tmp_path, Checkpoint(round=1, rounds=2, key="k", global_weights=torch.zeros(2), server_state={},
                                         curve=[{"round": 1, "metrics": {"accuracy": np.float64(0.5)}}],
                                         rng=rng_states()))
    draws = (random.random(), np.random.normal(), np.random.rand(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    loaded = load_checkpoint(tmp_path, "k")
    restore_rng(loaded.rng)
    assert (random.random(), np.random.normal(), np.random.rand(), torch.rand(1).item()) == draws
    assert loaded.curve[0]["metrics"]["accuracy"] == 0.5


def test_temp_files_of_a_killed_write_are_removed_on_the_next_start(tmp_path):
    from fednlp_bench.runner import run_fl

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid names the temp files of a write that was killed
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    ck, out = tmp_path / "ck", tmp_path / "o"
    ck.mkdir(), out.mkdir()
    stale = [ck / f".checkpoint.pt.tmp{gone.pid}", ck / f".checkpoint.json.tmp{gone.pid}",
             out / f".demo-fedavg-uniform-seed42.json.tmp{gone.pid}",
             out / f".demo-fedavg-uniform-seed42.png.tmp{gone.pid}.png"]
    kept = [ck / f".checkpoint.pt.tmp{alive.pid}",  # a write in progress in another process
            out / "notes.tmp1", out / ".hidden"]  # not temp files of ours
    for path in stale + kept:
        path.write_bytes(b"half")
    try:
        run_fl(RunConfig(task="demo", max_train=120, max_test=40, clients=4, clients_per_round=2, rounds=1,
                         checkpoint_dir=str(ck), checkpoint_every=1, resume=True, output=str(out), progress=False))
    finally:
        alive.kill()
        alive.wait()
    assert [p.name for p in stale if p.exists()] == []
    assert all(p.read_bytes() == b"half" for p in kept)
    assert (ck / "checkpoint.pt").is_file() and len(list(out.glob("*.json"))) == 1


@pytest.mark.parametrize("where", ["default folder", "--checkpoint-dir"])
def test_resume_after_a_settings_change_is_one_line_naming_the_setting(tmp_path, capsys, where):
    from fednlp_bench.cli import main

    out = tmp_path / "o"
    base = ["run", "--task", "demo", "--max-train", "120", "--max-test", "40", "--clients", "4",
            "--clients-per-round", "2", "--rounds", "2", "--no-progress", "--output", str(out),
            "--cache-dir", str(tmp_path / "cache")]
    if where == "--checkpoint-dir":
        base += ["--checkpoint-dir", str(tmp_path / "ck")]
    assert main([*base, "--client-lr", "0.01", "--checkpoint-every", "1"]) == 0
    [result] = out.glob("*.json")
    before = {p: p.read_bytes() for p in [result, *tmp_path.rglob("checkpoint.*")]}
    capsys.readouterr()
    rc = main([*base, "--client-lr", "0.001", "--resume"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    [line] = err.strip().splitlines()
    assert line.startswith("fednlp-bench: error: ") and "other settings" in line
    assert "--client-lr 0.01 there, 0.001 here" in line
    assert {p: p.read_bytes() for p in before} == before and list(out.glob("*.json")) == [result]
    # without --resume the new settings are a new run, written beside the old one
    assert main([*base, "--client-lr", "0.001"]) == 0
    assert len(list(out.glob("*.json"))) == 2 and result.read_bytes() == before[result]


def test_distributed_backend_outside_torchrun_is_one_clear_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    proc = subprocess.run([sys.executable, "-m", "fednlp_bench.cli", "run", "--task", "demo", "--rounds", "1",
                           "--backend", "distributed", "--output", str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "torchrun" in proc.stderr and "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("*.json"))


def test_bf16_autocast_trains_and_differs_from_fp32_only_slightly(tmp_path):
    """bf16 is meant for GPUs; CPU autocast runs the same code path, so its behaviour is testable here."""
    from fednlp_bench.runner import run_fl

    base = dict(task="demo", max_train=160, max_test=60, clients=4, clients_per_round=2, rounds=2, progress=False,
                seed=3)
    fp32 = run_fl(RunConfig(**base, output=str(tmp_path / "a")))
    bf16 = run_fl(RunConfig(**base, precision="bf16", output=str(tmp_path / "b")))
    assert bf16["execution"]["precision"] == "bf16"
    assert bf16["curve"][-1]["train_loss"] != fp32["curve"][-1]["train_loss"]  # autocast really ran
    assert abs(bf16["curve"][-1]["train_loss"] - fp32["curve"][-1]["train_loss"]) < 0.1


def test_compile_option_runs_training_through_torch_compile(tmp_path):
    """--compile: dynamo really captures the training forward, and the run trains like the eager one."""
    import torch._dynamo

    from fednlp_bench.runner import run_fl

    base = dict(task="demo", max_train=96, max_test=40, clients=4, clients_per_round=1, rounds=1, progress=False,
                seed=3)
    eager = run_fl(RunConfig(**base, output=str(tmp_path / "a")))
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = run_fl(RunConfig(**base, compile=True, output=str(tmp_path / "b")))
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0
    assert compiled["execution"]["compile"] is True
    assert abs(compiled["curve"][-1]["train_loss"] - eager["curve"][-1]["train_loss"]) < 0.05
