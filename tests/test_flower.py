"""Flower interoperability: the core never imports flwr; our task as a Flower app gives our FedAvg's metrics under
Flower's FedAvg, runs under `flwr run` (simulation engine) and on a SuperLink with SuperNodes (deployment engine),
takes Flower's other strategies and a user's own, and its result goes on the board as a community row.

Flower runs in an environment of its own, built once under the fednlp cache (or FEDNLP_FLOWER_VENV): a venv that
sees this environment's packages (torch, this checkout) through a .pth file and adds the `flower` extra's pins
(flwr with Ray); the tests skip with the reason when it cannot be built (no registry access).
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import site
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "examples" / "flower_app"
# every client trains every round (Flower samples with fraction_train = 1), the model learns in two rounds
SETTINGS = {"task": "demo", "partition": "label", "alpha": 1.0, "clients": 3, "clients-per-round": 3, "rounds": 2,
            "local-epochs": 2, "seed": 42, "max-test": 300, "eval-every": 1}
TOLERANCE = 0.01  # absolute, on accuracy and macro-F1: Flower averages float32 arrays, we average float64 deltas


def test_core_and_a_full_run_never_import_flwr(tmp_path):
    code = (
        "import sys, fednlp_bench\n"
        "from fednlp_bench.cli import main\n"
        f"assert main(['run', '--task', 'demo', '--max-train', '200', '--max-test', '50', '--rounds', '1',"
        f" '--output', {str(tmp_path)!r}, '--no-progress']) == 0\n"
        "leaked = sorted(m for m in sys.modules if m == 'flwr' or m.startswith('flwr.'))\n"
        "assert not leaked, leaked\n"
        "print('clean')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("clean"), proc.stderr[-2000:]


def _flower_env() -> Path:
    """The Flower venv (built once, reused); pytest.skip with the reason when it cannot be built."""
    from fednlp_bench.runner import default_cache_dir

    pins = (REPO / "setup.cfg").read_text().split("flower =", 1)[-1].split("\n#", 1)[0].split("\n\n", 1)[0]
    venv = Path(os.environ.get("FEDNLP_FLOWER_VENV", default_cache_dir() / "flower-venv"))
    python, marker = venv / "bin" / "python", venv / "fednlp-pins.sha256"
    want = hashlib.sha256((pins + sys.prefix + "addsitedir").encode()).hexdigest()

    def step(*cmd: str, timeout: int = 1200) -> None:
        try:  # from / so that this checkout is found as installed, not as the working directory
            proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, cwd="/")
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"could not build Flower's environment in {venv}: {exc}")
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            pytest.skip(f"could not build Flower's environment in {venv} ({' '.join(cmd[2:5])}): {tail}")

    if not (python.exists() and marker.exists() and marker.read_text() == want):
        step(sys.executable, "-m", "venv", "--clear", str(venv))
        # this environment's packages (torch, the checkout) stay visible; what flwr needs goes in front of them
        [child] = (venv / "lib").glob("python3*/site-packages")
        # (an `import` line: addsitedir also runs the .pth files there, e.g. an editable install's finder)
        (child / "fednlp_parent.pth").write_text("".join(f"import site; site.addsitedir({d!r})\n"
                                                         for d in site.getsitepackages()))
        step(str(python), "-m", "pip", "install", "-q", *[p.strip() for p in pins.split("\n") if p.strip()])
        marker.write_text(want)
    step(str(python), "-c", "import flwr, fednlp_bench.integrations.flower", timeout=300)
    return venv


def _env(venv: Path, tmp_path: Path) -> dict[str, str]:
    """One BLAS thread everywhere (Ray's actors get one too), Flower's home in tmp, the venv's commands first."""
    flwr_home = tmp_path / "flwr_home"
    flwr_home.mkdir(exist_ok=True)
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "FEDNLP_CACHE": str(tmp_path / "cache"),
            "FLWR_HOME": str(flwr_home), "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1", "RAY_DEDUP_LOGS": "0", "PYTHONPATH": str(tmp_path)}


def _ours(tmp_path: Path, env: dict[str, str], **extra) -> dict:
    """`fednlp-bench run` with SETTINGS in a process of its own (the Flower side's thread count)."""
    argv = []
    for k, v in {**SETTINGS, **extra}.items():
        argv += [f"--{k}", str(v)]
    out = tmp_path / "ours"
    proc = subprocess.run([sys.executable, "-m", "fednlp_bench.cli", "run", *argv, "--output", str(out),
                           "--no-progress"], capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [path] = out.glob("*.json")
    return json.loads(path.read_text())


def _only_result(folder: Path) -> dict:
    found = sorted(folder.glob("*.json"))
    assert len(found) == 1, f"expected one result in {folder}, found {[p.name for p in found]}"
    return json.loads(found[0].read_text())


def _assert_same_metrics(theirs: dict, ours: dict) -> None:
    assert theirs["partition"]["digest"] == ours["partition"]["digest"]
    assert [p["round"] for p in theirs["curve"]] == [p["round"] for p in ours["curve"]]
    for key in ("accuracy", "macro_f1"):
        assert abs(theirs["final"][key] - ours["final"][key]) <= TOLERANCE, (key, theirs["final"], ours["final"])


@pytest.mark.skipif(sys.platform != "linux", reason="Flower's engines are exercised on Linux")
def test_flowers_fedavg_through_the_app_gives_our_fedavgs_metrics(tmp_path):
    venv = _flower_env()
    env = _env(venv, tmp_path)
    script = textwrap.dedent(f"""
        from flwr.simulation import run_simulation
        from fednlp_bench.integrations.flower import make_apps
        server, client = make_apps({{**{SETTINGS!r}, "output": {str(tmp_path / "flower")!r}, "strategy": "FedAvg"}})
        run_simulation(server, client, num_supernodes={SETTINGS["clients"]},
                       backend_config={{"client_resources": {{"num_cpus": 1}}}})
    """)
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", script], capture_output=True, text=True,
                          timeout=900, env=env, cwd=tmp_path)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    theirs, ours = _only_result(tmp_path / "flower"), _ours(tmp_path, env)
    print(f"Flower FedAvg accuracy {theirs['final']['accuracy']:.4f}, ours {ours['final']['accuracy']:.4f}")
    assert ours["final"]["accuracy"] > 0.3  # the compared run learns (8 topics: chance 0.125)
    _assert_same_metrics(theirs, ours)
    assert theirs["execution"]["backend"] == "flower-simulation"
    assert theirs["algorithm"]["class"] == "flwr.serverapp.strategy.fedavg.FedAvg"
    assert theirs["upload_bytes_per_client_per_round"] == ours["upload_bytes_per_client_per_round"]

    # it aggregates and submits like ours: a community row, kept apart from the built-in FedAvg
    from fednlp_bench.cli import main

    result = next((tmp_path / "flower").glob("*.json"))
    board = tmp_path / "board"
    assert main(["leaderboard", "submit", str(result), "--root", str(board), "--submitter", "a flower lab",
                 "--allow-non-canonical"]) == 0
    methods = (board / "results.csv").read_text()
    assert "plugin(flwr.serverapp.strategy.FedAvg)" in methods and "a flower lab" in methods


@pytest.mark.skipif(sys.platform != "linux", reason="Flower's engines are exercised on Linux")
def test_flwr_run_simulates_the_app_with_another_strategy(tmp_path):
    venv = _flower_env()
    env = _env(venv, tmp_path)
    (tmp_path / "flwr_home" / "config.toml").write_text(textwrap.dedent("""
        [superlink]
        default = "local"
        [superlink.local]
        address = ":local:"
    """))
    overrides = _run_config(tmp_path / "overrides.toml", {**SETTINGS, "output": str(tmp_path / "run"),
                                                          "strategy": "FedProx", "strategy-args": '{"proximal_mu": 0.1}'})
    try:
        proc = subprocess.run([str(venv / "bin" / "flwr"), "run", str(APP), "local", "--run-config", overrides,
                               "--federation-config", f"num-supernodes={SETTINGS['clients']}", "--stream"],
                              capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    finally:  # flwr run leaves its local SuperLink running
        subprocess.run(["pkill", "-f", f"flower-superlink.*{tmp_path / 'flwr_home'}"], check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    theirs = _only_result(tmp_path / "run")
    assert theirs["algorithm"]["name"] == "FedProx" and theirs["algorithm"]["args"]["proximal_mu"] == 0.1
    assert theirs["execution"]["backend"] == "flower-simulation" and theirs["final"]["accuracy"] > 0.3
    _assert_same_metrics(theirs, _ours(tmp_path, env, algorithm="fedprox", mu=0.1))  # our FedProx's proximal step


def _run_config(path: Path, values: dict) -> str:
    """A TOML file of run-config overrides for `flwr run --run-config FILE` (strings as JSON = TOML basic strings)."""
    path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()))
    return str(path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(sys.platform != "linux", reason="Flower's engines are exercised on Linux")
def test_the_app_runs_on_a_superlink_with_supernodes_and_a_users_own_strategy(tmp_path):
    venv = _flower_env()
    env = _env(venv, tmp_path)
    (tmp_path / "my_strategy.py").write_text(textwrap.dedent("""
        from flwr.serverapp.strategy import FedAvg

        class CountingFedAvg(FedAvg):
            '''FedAvg that counts its aggregations: a user's own Strategy class.'''
            def aggregate_train(self, server_round, replies):
                self.aggregations = getattr(self, "aggregations", 0) + 1
                return super().aggregate_train(server_round, replies)
    """))
    link = _free_port()
    (tmp_path / "flwr_home" / "config.toml").write_text(textwrap.dedent(f"""
        [superlink]
        default = "here"
        [superlink.here]
        address = "127.0.0.1:{link}"
        insecure = true
    """))
    bin_ = venv / "bin"
    procs = [subprocess.Popen([str(bin_ / "flower-superlink"), "--insecure", "--port", str(link), "--database",
                               str(tmp_path / "state.db")], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)]
    try:
        time.sleep(5)
        n = SETTINGS["clients"]
        for i in range(n):
            procs.append(subprocess.Popen(
                [str(bin_ / "flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{link}", "--port",
                 str(_free_port()), "--node-config", f"partition-id={i} num-partitions={n}"], env=env, cwd=tmp_path,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        time.sleep(5)
        overrides = _run_config(tmp_path / "overrides.toml", {**SETTINGS, "output": str(tmp_path / "run"),
                                                              "strategy": "my_strategy:CountingFedAvg"})
        proc = subprocess.run([str(bin_ / "flwr"), "run", str(APP), "here", "--run-config", overrides, "--stream"],
                              capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    theirs = _only_result(tmp_path / "run")
    assert theirs["execution"]["backend"] == "flower-deployment"
    assert theirs["algorithm"]["class"] == "my_strategy.CountingFedAvg" and theirs["algorithm"]["source_sha256"]
    _assert_same_metrics(theirs, _ours(tmp_path, env))  # it aggregates as FedAvg: the same metrics


def test_a_failing_clientapp_stops_the_run_with_its_error(tmp_path):
    """Flower's strategies aggregate whatever replies arrive; the app's grid refuses a round with a failed client
    instead, and records which clients trained (the replies are stand-ins with the fields the grid reads)."""
    venv = _flower_env()
    script = textwrap.dedent("""
        from fednlp_bench.errors import UserError
        from fednlp_bench.integrations.flower import CheckedGrid

        class Reply:
            def __init__(self, client=None, reason=None):
                self.error = type("Error", (), {"reason": reason})() if reason else None
                self.content = {"metrics": {"client": client}} if reason is None else {}
            def has_error(self):
                return self.error is not None

        class Grid:
            def __init__(self, replies):
                self.replies, self.run_id = replies, 7
            def send_and_receive(self, messages, timeout=None):
                return self.replies

        grid = CheckedGrid(Grid([Reply(client=2), Reply(client=0)]))
        assert len(grid.send_and_receive([])) == 2 and grid.trained == [0, 2] and grid.run_id == 7
        grid = CheckedGrid(Grid([Reply(client=1), Reply(reason="the partition has 3 clients")]))
        try:
            grid.send_and_receive([])
        except UserError as exc:
            assert "a ClientApp failed: the partition has 3 clients" in str(exc)
            print("refused")
    """)
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", script], capture_output=True, text=True, timeout=300,
                          env=_env(venv, tmp_path), cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == "refused", (proc.stdout + proc.stderr)[-3000:]


def test_strategies_by_name_or_module_and_bad_ones_are_one_line(tmp_path):
    """A strategy is a class of flwr.serverapp.strategy by name or module:Class; FedProx gets our mu default;
    an unknown name, a module that is not there, a class that is no Strategy and a wrong argument are UserErrors."""
    venv = _flower_env()
    script = textwrap.dedent(f"""
        from fednlp_bench.errors import UserError
        from fednlp_bench.integrations.flower import load_job, make_strategy, strategy_spec
        job = load_job({{"task": "demo", "clients": 4, "clients-per-round": 2, "max-train": 80, "max-test": 40,
                        "rounds": 1, "output": {str(tmp_path / "out")!r}}})
        assert strategy_spec({{}}) == "flwr.serverapp.strategy:FedAvg"
        assert strategy_spec({{"strategy": "my.mod:Mine"}}) == "my.mod:Mine"
        prox, kw = make_strategy(job, strategy_spec({{"strategy": "FedProx"}}), {{}})
        assert type(prox).__name__ == "FedProx" and kw["proximal_mu"] == 0.1 and kw["fraction_train"] == 0.5
        adam, kw = make_strategy(job, "flwr.serverapp.strategy:FedAdam", {{"eta": 0.01}})
        assert kw["eta"] == 0.01 and kw["min_available_nodes"] == 4 and kw["fraction_evaluate"] == 0.0
        for spec, args, said in (("flwr.serverapp.strategy:Nope", {{}}, "unknown Flower strategy 'Nope'"),
                                 ("nomod:X", {{}}, "cannot be loaded"),
                                 ("json:dumps", {{}}, "is not a Flower Strategy class"),
                                 ("flwr.serverapp.strategy:FedAvg", {{"bogus": 1}}, "does not take these arguments")):
            try:
                make_strategy(job, spec, args)
            except UserError as exc:
                assert said in str(exc), (spec, str(exc))
            else:
                raise AssertionError(spec)
        print("ok")
    """)
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", script], capture_output=True, text=True, timeout=300,
                          env=_env(venv, tmp_path), cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), (proc.stdout + proc.stderr)[-3000:]
