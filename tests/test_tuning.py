"""Parameter-efficient tuning (--peft, --freeze) and --save-model: what trains, what is uploaded, that LoRA starts
from the base model's outputs, that ranks and resumes agree, and that a saved model reloads to the same metrics."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_scale import env_one_thread, run_ok  # one BLAS thread per process, so ranks and resumes are comparable

from fednlp_bench.cli import main
from fednlp_bench.config import RunConfig, run_settings
from fednlp_bench.errors import UserError
from fednlp_bench.fl.params import FlatParams
from fednlp_bench.runner import prepare
from fednlp_bench.saved_model import load_saved_model
from fednlp_bench.tuning import Tuning, frozen_digest, parse_freeze, tuning_from

pytest.importorskip("peft")

SMALL = ["--task", "demo", "--max-train", "240", "--max-test", "80", "--clients", "4", "--clients-per-round", "2",
         "--max-length", "32", "--seed", "3", "--no-progress"]


@pytest.fixture(scope="module")
def demo_task(tmp_path_factory):
    cfg = RunConfig(task="demo", max_train=240, max_test=80, max_length=32, seed=3,
                    output=str(tmp_path_factory.mktemp("unused")), progress=False)
    _, task = prepare(cfg)
    yield task
    task.tuning = Tuning()


def built(task, **settings) -> torch.nn.Module:
    task.tuning = tuning_from(settings)
    return task.new_model(3)


def logits(task, model) -> torch.Tensor:
    model.eval()
    batch = task.batch("test", np.arange(8))
    batch.pop("labels")
    with torch.no_grad():
        return model(**batch).logits


@pytest.mark.parametrize("settings", [{}, {"peft": "lora"}, {"peft": "ia3"}, {"peft": "prompt"}, {"peft": "bitfit"},
                                      {"freeze": "e,0"}], ids=lambda s: s.get("peft") or s.get("freeze") or "full")
def test_the_flat_vector_holds_exactly_the_trainable_parameters(demo_task, settings):
    model = built(demo_task, **settings)
    flat = FlatParams(model)
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert [id(p) for p in flat.params] == [id(p) for _, p in trainable]
    assert flat.numel == sum(p.numel() for _, p in trainable)
    total = sum(p.numel() for p in model.parameters())
    names = [n for n, _ in trainable]
    if not settings:
        assert flat.numel == total
        return
    assert 0 < flat.numel < total
    assert any("classifier" in n for n in names), "the task head must train"
    if settings.get("peft") == "lora":
        assert all("lora_" in n or "classifier" in n for n in names)
    elif settings.get("peft") == "bitfit":
        assert all(n.endswith("bias") or "classifier" in n for n in names)
        assert any(n.endswith("bias") and "classifier" not in n for n in names)
    elif settings.get("freeze"):
        assert not any("embeddings" in n or ".layer.0." in n for n in names)
        assert any(".layer.1." in n for n in names)  # layer 1 still trains


def test_lora_with_its_zero_initialised_B_leaves_the_initial_model_unchanged(demo_task):
    demo_task.tuning = Tuning()
    base = demo_task.new_model(3)
    lora = built(demo_task, peft="lora", lora_dropout=0.0)
    a = [p for n, p in lora.named_parameters() if "lora_A" in n]
    b = [p for n, p in lora.named_parameters() if "lora_B" in n]
    assert a and all(p.abs().sum() > 0 for p in a) and all(torch.count_nonzero(p) == 0 for p in b)
    assert torch.equal(logits(demo_task, base), logits(demo_task, lora))
    with torch.no_grad():  # and the adapter is live: a non-zero B changes the outputs
        b[0].add_(0.5)
    assert not torch.allclose(logits(demo_task, base), logits(demo_task, lora))


def test_the_same_seed_builds_the_same_trainable_and_frozen_parts(demo_task):
    one, two = built(demo_task, peft="lora"), built(demo_task, peft="lora")
    assert torch.equal(FlatParams(one).get(), FlatParams(two).get())
    assert frozen_digest(one) == frozen_digest(two)
    other = built(demo_task, freeze="e")
    assert frozen_digest(other) != frozen_digest(one)


def test_freeze_syntax_is_fednlps_and_canonical():
    assert parse_freeze("e,0,1") == (True, [0, 1])
    assert parse_freeze("embeddings, 0-2") == (True, [0, 1, 2])
    assert parse_freeze("3") == (False, [3])
    assert tuning_from({"freeze": "0-1,e"}).freeze == "e,0,1"
    for bad in ("x", "", "e,2-1", "1.5"):
        with pytest.raises(UserError):
            parse_freeze(bad)


def test_full_fine_tuning_keeps_every_earlier_settings_key():
    settings = run_settings(RunConfig().to_dict())
    assert not {"peft", "lora_r", "lora_alpha", "lora_dropout", "lora_targets", "virtual_tokens", "freeze",
                "save_model"} & set(settings)
    lora = run_settings(RunConfig(peft="lora").resolved().to_dict())
    assert lora["peft"] == "lora" and lora["lora_r"] == 8  # the defaults are recorded, so they are in the key
    assert Tuning().active is False and tuning_from({"peft": "bitfit"}).active


@pytest.mark.parametrize("extra,words", [
    (["--peft", "adapters"], ["unknown --peft 'adapters'", "lora"]),
    (["--peft", "bitfit", "--lora-r", "4"], ["--lora-r applies to --peft lora"]),
    (["--peft", "lora", "--lora-r", "0"], ["--lora-r must be a positive integer"]),
    (["--peft", "lora", "--lora-dropout", "1.5"], ["--lora-dropout"]),
    (["--peft", "lora", "--freeze", "e"], ["--freeze", "--peft lora"]),
    (["--freeze", "e,x"], ["--freeze 'e,x'"]),
    (["--freeze", "e,7"], ["layer 7", "0-1"]),
    (["--task", "wnut17", "--peft", "prompt"], ["--peft prompt", "sequence_tagging"]),
    (["--peft", "prompt", "--max-length", "60"], ["--virtual-tokens 20", "80 positions", "64"]),
], ids=["unknown", "knob-of-another", "rank-zero", "dropout", "freeze-with-lora", "freeze-syntax", "no-such-layer",
        "prompt-on-tagging", "prompt-longer-than-the-model"])
def test_bad_tuning_input_is_one_line_and_exit_2(tmp_path, capsys, extra, words):
    out = tmp_path / "out"
    rc = main(["run", *SMALL, "--rounds", "1", "--output", str(out), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fednlp-bench: error: "), err
    for w in words:
        assert w in lines[0]
    assert not list(out.glob("*.json"))


def test_save_model_refuses_a_folder_that_holds_files(tmp_path, capsys):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "keep.txt").write_text("mine")
    rc = main(["run", *SMALL, "--rounds", "1", "--output", str(tmp_path / "out"), "--save-model", str(tmp_path / "model")])
    err = capsys.readouterr().err
    assert rc == 2 and "already holds files" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "model" / "keep.txt").read_text() == "mine" and not (tmp_path / "out").exists()


def evaluate_saved(folder: Path, record: dict) -> dict[str, float]:
    """Load the saved model with transformers / peft and evaluate it on the run's test split."""
    cfg = RunConfig(**{**record["config"], "output": str(folder.parent / "unused"), "save_model": None})
    _, task = prepare(cfg)
    model = load_saved_model(folder, task.family)
    return task.metrics(task.predict(model, "test", torch.device("cpu")), "test")


@pytest.mark.parametrize("extra", [["--peft", "lora"], ["--peft", "bitfit"], []], ids=["lora", "bitfit", "full"])
def test_a_saved_model_reloads_and_gives_the_reported_test_metrics(tmp_path, capsys, extra):
    out, saved = tmp_path / "out", tmp_path / "model"
    assert main(["run", *SMALL, "--rounds", "2", "--output", str(out), "--save-model", str(saved), *extra]) == 0
    [path] = out.glob("*.json")
    record = json.loads(path.read_text())
    assert (saved / "README.md").exists() and (saved / "tokenizer.json").exists()
    card = (saved / "README.md").read_text()
    assert record["partition"]["digest"] in card and "from_pretrained" in card
    assert (saved / "adapter_config.json").exists() == (extra == ["--peft", "lora"])
    assert evaluate_saved(saved, record) == record["final"]
    if extra:
        assert record["tuning"]["method"] == extra[1]
        assert record["num_parameters"] == record["tuning"]["trainable_parameters"] < record["tuning"]["total_parameters"]
        assert record["upload_bytes_per_client_per_round"] == 4 * record["tuning"]["trainable_parameters"]
    else:
        assert "tuning" not in record


def test_centralized_saves_its_model_too(tmp_path):
    out, saved = tmp_path / "out", tmp_path / "model"
    assert main(["centralized", *SMALL, "--epochs", "1", "--peft", "lora", "--output", str(out),
                 "--save-model", str(saved)]) == 0
    [path] = out.glob("*.json")
    record = json.loads(path.read_text())
    assert record["tuning"]["method"] == "lora"
    assert evaluate_saved(saved, record) == record["final"]


def test_dp_sgd_with_lora_clips_per_example_gradients_of_the_adapter_only(tmp_path):
    out = tmp_path / "out"
    assert main(["run", *SMALL, "--rounds", "1", "--peft", "lora", "--dp-sgd-clip", "1.0",
                 "--dp-sgd-noise-multiplier", "0.5", "--output", str(out)]) == 0
    [path] = out.glob("*.json")
    record = json.loads(path.read_text())
    assert record["privacy"]["epsilon"] > 0 and record["tuning"]["method"] == "lora"


# ------------------------------------------------------------------ ranks and resume (real subprocesses, 1 thread)

RANKS_RUN = [*SMALL, "--max-train", "320", "--clients", "6", "--clients-per-round", "4", "--peft", "lora",
             "--algorithm", "fedopt", "--server-optimizer", "adam", "--server-lr", "0.01"]
ROUNDS = 6


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "fednlp_bench.cli", "run", *RANKS_RUN, "--rounds", str(ROUNDS), *args]


def final(folder: Path) -> tuple[dict, torch.Tensor]:
    [path] = folder.glob("*.json")
    [pt] = folder.glob("checkpoints/*/checkpoint.pt")
    return json.loads(path.read_text()), torch.load(pt, map_location="cpu", weights_only=True)["global_weights"]


@pytest.fixture(scope="module")
def lora_reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lora-reference")
    run_ok(cli("--checkpoint-every", str(ROUNDS), "--output", str(out)))
    return out


def test_two_gloo_ranks_equal_the_in_process_run_with_lora(lora_reference, tmp_path):
    out = tmp_path / "dist"
    run_ok([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc-per-node", "2",
            "-m", "fednlp_bench.cli", "run", *RANKS_RUN, "--rounds", str(ROUNDS), "--checkpoint-every", str(ROUNDS),
            "--backend", "distributed", "--output", str(out)], timeout=400)
    (ours, w_ours), (ref, w_ref) = final(out), final(lora_reference)
    assert w_ours.numel() == ref["tuning"]["trainable_parameters"]  # only the adapter (and head) is synchronised
    assert (w_ours - w_ref).abs().max().item() < 1e-5
    assert ours["final"] == ref["final"] and ours["tuning"]["frozen_digest"] == ref["tuning"]["frozen_digest"]


def test_resumed_lora_run_equals_the_uninterrupted_one(lora_reference, tmp_path):
    import time

    out = tmp_path / "run"
    cmd = cli("--checkpoint-every", "1", "--output", str(out))
    proc = subprocess.Popen(cmd, env=env_one_thread(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, held = time.monotonic() + 240, 0
    while time.monotonic() < deadline and held < 2:
        for summary in out.glob("checkpoints/*/checkpoint.json"):
            try:
                held = json.loads(summary.read_text())["round"]
            except (OSError, ValueError):
                pass
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert 2 <= held < ROUNDS and not list(out.glob("*.json"))
    summary = json.loads(next(out.glob("checkpoints/*/checkpoint.json")).read_text())
    assert summary["frozen_digest"] == final(lora_reference)[0]["tuning"]["frozen_digest"]  # it names its base
    run_ok(cmd + ["--resume", "--checkpoint-every", str(ROUNDS)])
    (resumed, w_res), (ref, w_ref) = final(out), final(lora_reference)
    assert resumed["execution"]["resumed_from_round"] == held
    assert resumed["final"] == ref["final"] and torch.equal(w_res, w_ref)


def test_resume_on_another_frozen_base_is_refused(lora_reference, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(lora_reference, out)
    for p in out.glob("*.json"):
        p.unlink()
    [pt] = out.glob("checkpoints/*/checkpoint.pt")
    ckpt = torch.load(pt, map_location="cpu", weights_only=True)
    ckpt["frozen_digest"] = "0123456789abcdef"  # as if the base model's files had changed since
    torch.save(ckpt, pt)
    proc = subprocess.run(cli("--resume", "--checkpoint-every", str(ROUNDS), "--output", str(out)),
                          env=env_one_thread(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "frozen base model differs" in proc.stderr and "Traceback" not in proc.stderr


def test_the_board_names_a_tuned_run_apart_from_full_fine_tuning():
    from fednlp_bench.leaderboard.schema import tuning_tags

    assert tuning_tags(RunConfig().to_dict()) == []
    assert tuning_tags(RunConfig(peft="lora").resolved().to_dict()) == ["lora(r=8)"]
    assert tuning_tags(RunConfig(peft="lora", lora_r=4, lora_alpha=8.0).resolved().to_dict()) == ["lora(r=4,alpha=8.0)"]
    assert tuning_tags(RunConfig(peft="prompt").resolved().to_dict()) == ["prompt(n=20)"]
    assert tuning_tags(RunConfig(freeze="0-2,e").resolved().to_dict()) == ["freeze(e,0,1,2)"]
    assert tuning_tags(RunConfig(peft="bitfit").resolved().to_dict()) == ["bitfit"]


def test_the_communication_plot_needs_full_fine_tuning_and_a_tuned_row():
    from fednlp_bench.leaderboard.render import _comm_plot, tuning_label

    assert tuning_label("fedavg") == "full" and tuning_label("fedavg+lora(r=8)") == "lora(r=8)"
    assert tuning_label("fedavg+bitfit+activity") == "bitfit+activity" and tuning_label("centralized") is None

    def row(method: str, upload: float, mean: float, partition: str = "uniform") -> dict:
        return {"task": "agnews", "method": method, "algorithm": method.split("+")[0], "partition": partition,
                "metric": "accuracy", "mean": mean, "ci95": 0.01, "upload_bytes_per_round": upload,
                "selection": "uniform", "data": "static", "dp": "none", "attack_fraction": 0.0, "reference": "converged"}

    central = {**row("centralized", 0, 0.85), "algorithm": "centralized"}
    assert _comm_plot("agnews", [central, row("fedavg", 9e8, 0.84)]) is None  # nothing to compare with
    assert _comm_plot("agnews", [central, row("fedavg+lora(r=8)", 3e6, 0.83)]) is None  # no full row beside it
    png = _comm_plot("agnews", [central, row("fedavg", 9e8, 0.84), row("fedavg+lora(r=8)", 3e6, 0.83),
                                row("fedavg+bitfit", 1e6, 0.80)])
    assert png is not None and png[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_task_cards_profile_can_choose_the_tuning(tmp_path, capsys):
    import yaml

    card = {"name": "my_reviews", "family": "text_classification", "description": "my reviews, 2 classes",
            "text_columns": ["review"], "label_column": "stars", "metric": "accuracy", "max_length": 32,
            "profiles": {"standard": {"rounds": 1, "clients": 2, "clients_per_round": 2,
                                      "fedavg": {"peft": "lora", "lora_r": 4, "lora_dropout": 0.0}}}}
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(card))
    rows = ["review,stars"] + [f"{'great fine good' if i % 2 else 'bad awful poor'} item {i},{i % 2}" for i in range(80)]
    (tmp_path / "reviews.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    assert main(["run", "--task", str(path), "--profile", "standard", "--train-file", str(tmp_path / "reviews.csv"),
                 "--output", str(out), "--no-progress"]) == 0, capsys.readouterr().err
    [result] = out.glob("*.json")
    tuning = json.loads(result.read_text())["tuning"]
    assert (tuning["method"], tuning["lora_r"], tuning["lora_dropout"]) == ("lora", 4, 0.0)
