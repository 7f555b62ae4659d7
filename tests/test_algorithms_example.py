"""The example plug-in (examples/clipped_fedavgm): pip installs it (offline, no build isolation) and fednlp-bench
finds it by its entry-point name, records its distribution and version, and checkpoints its server state."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "clipped_fedavgm"


def test_the_example_plugin_installs_and_runs_by_its_entry_point_name(tmp_path):
    src, site = tmp_path / "src", tmp_path / "site"
    shutil.copytree(EXAMPLE, src)  # pip leaves build files beside the sources
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-deps",
                          "--no-index", "--target", str(site), str(src)], capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr[-2000:]
    paths = [str(site), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "out"
    run = [sys.executable, "-m", "fednlp_bench.cli", "run", "--task", "demo", "--max-train", "120", "--max-test", "30",
           "--clients", "4", "--clients-per-round", "3", "--rounds", "2", "--no-progress", "--output", str(out),
           "--checkpoint-every", "2", "--algorithm", "clipped_fedavgm", "--algorithm-arg", "max_norm=0.5"]
    proc = subprocess.run(run, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [path] = out.glob("*.json")
    rec = json.loads(path.read_text())
    block = rec["algorithm"]
    assert block["kind"] == "entry point" and block["class"] == "clipped_fedavgm.ClippedFedAvgM"
    assert (block["distribution"], block["version"]) == ("fednlp-clipped-fedavgm", "0.1.0")
    assert block["args"] == {"max_norm": 0.5, "momentum": 0.9} and rec["config"]["algorithm_args"] == {"max_norm": 0.5}
    [ckpt] = out.glob("checkpoints/*/checkpoint.pt")
    velocity = torch.load(ckpt, map_location="cpu", weights_only=True)["server_state"]["velocity"]
    assert velocity.shape == (rec["num_parameters"],) and float(velocity.abs().max()) > 0
    # clipping: no client moved the model by more than max_norm, so the momentum holds at most (1 + 0.9) * 0.5
    assert float(velocity.norm()) <= 1.9 * 0.5 + 1e-4
    # without the installed distribution on the path the name is unknown: one line, exit 2
    env["PYTHONPATH"] = os.pathsep.join(paths[1:])
    proc = subprocess.run(run, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 2 and "unknown --algorithm 'clipped_fedavgm'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
