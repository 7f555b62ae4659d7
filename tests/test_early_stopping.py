"""The converged centralized reference: held-out validation split, early stopping, the best epoch's test metrics."""
from __future__ import annotations

import json

import pytest
import torch

from fednlp_bench.cli import main
from fednlp_bench.config import RunConfig
from fednlp_bench.data import demo_dataset
from fednlp_bench.data.splits import holdout_validation
from fednlp_bench.errors import UserError
from fednlp_bench.fl import centralized
from fednlp_bench.fl.centralized import EarlyStopping, best_epoch, run_centralized_converged
from fednlp_bench.fl.client import ClientConfig
from fednlp_bench.tasks import TextClassificationTask

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    data = demo_dataset(num_train=200, num_test=80, seed=5)
    train, val = holdout_validation(data, 0.2, seed=11)
    cache = tmp_path_factory.mktemp("cache")
    make = lambda d: TextClassificationTask(d, model="tiny", max_length=32, cache_dir=cache, dropout=0.0)  # noqa: E731
    return data, make(train), make(val)


def test_holdout_splits_the_training_data_and_keeps_the_test_split(tasks):
    data, train, val = tasks
    assert train.num_examples("train") == 160 and val.num_examples("test") == 40
    assert train.num_examples("test") == len(data.test_texts)
    held = set(val.data.test_texts)
    kept = set(train.data.train_texts)
    assert held.isdisjoint(kept) and held | kept == set(data.train_texts)
    # the validation data trains on the same examples, so a tokenizer built from them is the same
    assert val.data.train_texts == train.data.train_texts
    assert val.data.fingerprint != train.data.fingerprint != data.fingerprint
    again = holdout_validation(data, 0.2, seed=11)[1]
    assert again.test_texts == val.data.test_texts  # seeded by the data seed
    assert holdout_validation(data, 0.2, seed=12)[1].test_texts != val.data.test_texts


def test_holdout_works_for_every_family():
    from fednlp_bench.data.qa import QAData, QAExample
    from fednlp_bench.data.tagging import SequenceTaggingData

    tag = SequenceTaggingData.create("t", [["a", "b"], ["c"], ["d", "e"], ["f"]], [["B-x", "O"], ["O"], ["O", "B-y"], ["O"]],
                                     [["g"]], [["O"]])
    tr, va = holdout_validation(tag, 0.25, seed=1)
    assert len(tr.train_tokens) == 3 and len(va.test_tokens) == 1 and va.tag_names == tag.tag_names
    ex = [QAExample(id=f"q{i}", question=f"what {i}?", context=f"context {i} here", answers=[(f"{i}", 8)])
          for i in range(5)]
    qa = QAData.create("q", ex[:4], ex[4:])
    tr, va = holdout_validation(qa, 0.25, seed=1)
    assert len(tr.train_examples) == 3 and [e.id for e in va.test_examples] != [] and len(tr.test_examples) == 1
    assert {e.id for e in va.test_examples} | {e.id for e in tr.train_examples} == {"q0", "q1", "q2", "q3"}


@pytest.mark.parametrize("values,higher,best", [([0.1, 0.5, 0.4, 0.5], True, 2), ([3.0, 2.0, 2.5, 1.0], False, 4),
                                                 ([0.2], True, 1)])
def test_best_epoch_is_the_first_best_value(values, higher, best):
    assert best_epoch(values, higher) == best


def test_early_stopping_picks_the_best_validation_epoch_of_a_planted_curve(tasks, monkeypatch):
    _, train, val = tasks
    planted = iter([0.30, 0.55, 0.70, 0.65, 0.69, 0.90, 0.95])  # best at epoch 3, patience 2 stops after epoch 5
    evaluated: list[torch.Tensor] = []
    real_evaluate = centralized.evaluate

    def fake_evaluate(task, model, device):
        from fednlp_bench.fl.params import FlatParams

        if task is val:
            score = next(planted)
            return None, {"accuracy": score, "macro_f1": score}
        evaluated.append(FlatParams(model).get())
        return real_evaluate(task, model, device)

    weights_after_epoch: list[torch.Tensor] = []
    real_train = centralized.train_steps

    def recording_train(task, model, flat, *args, **kwargs):
        loss = real_train(task, model, flat, *args, **kwargs)
        weights_after_epoch.append(flat.get())
        return loss

    monkeypatch.setattr(centralized, "evaluate", fake_evaluate)
    monkeypatch.setattr(centralized, "train_steps", recording_train)
    out = run_centralized_converged(train, val, EarlyStopping(max_epochs=10, patience=2),
                                    ClientConfig(optimizer="adamw", lr=1e-3, batch_size=32), CPU, seed=3, progress=False)
    es = out.early_stopping
    assert es["epochs_run"] == 5 and es["best_epoch"] == 3
    assert es["best_validation"]["accuracy"] == pytest.approx(0.70)
    assert [p["metrics"]["accuracy"] for p in out.curve] == [0.30, 0.55, 0.70, 0.65, 0.69]
    assert all(p["split"] == "validation" for p in out.curve)
    # the test metrics are those of the best epoch's weights, not the last epoch's
    assert len(evaluated) == 1 and torch.equal(evaluated[0], weights_after_epoch[2])
    assert not torch.equal(weights_after_epoch[2], weights_after_epoch[4])
    assert torch.equal(out.weights, weights_after_epoch[2])


def test_lower_is_better_monitor_and_max_epochs(tasks, monkeypatch):
    _, train, val = tasks
    planted = iter([5.0, 4.0, 3.0])
    real_evaluate = centralized.evaluate
    monkeypatch.setattr(centralized, "evaluate", lambda task, model, device: (
        (None, {"accuracy": next(planted), "macro_f1": 0.0}) if task is val else real_evaluate(task, model, device)))
    out = run_centralized_converged(train, val, EarlyStopping(max_epochs=3, patience=1, higher_is_better=False),
                                    ClientConfig(optimizer="adamw", lr=1e-3, batch_size=64), CPU, seed=3, progress=False)
    assert out.early_stopping["epochs_run"] == 3 and out.early_stopping["best_epoch"] == 3


def test_cli_converged_reference_records_epochs_and_pairs_with_the_fl_data(tmp_path, capsys):
    args = ["--task", "demo", "--max-train", "300", "--max-test", "100", "--seed", "2", "--data-seed", "4",
            "--output", str(tmp_path), "--no-progress"]
    assert main(["centralized", *args, "--max-epochs", "3", "--patience", "1", "--validation-fraction", "0.2"]) == 0
    path = next(tmp_path.glob("*centralized*.json"))
    rec = json.loads(path.read_text())
    es = rec["early_stopping"]
    assert 1 <= es["best_epoch"] <= es["epochs_run"] <= 3 and es["validation_examples"] == 60
    assert rec["task"]["num_train"] == 240 and rec["task"]["num_validation"] == 60
    assert rec["config"]["max_epochs"] == 3 and rec["config"]["patience"] == 1
    # the fingerprint is the whole data's, as a federated run on the same settings records it
    assert main(["run", *args, "--rounds", "1", "--clients", "4", "--clients-per-round", "2"]) == 0
    fed = json.loads(next(tmp_path.glob("*fedavg*.json")).read_text())
    assert fed["task"]["data_fingerprint"] == rec["task"]["data_fingerprint"]
    from fednlp_bench.leaderboard.schema import validate_result

    assert validate_result(rec) == []


@pytest.mark.parametrize("kwargs,needle", [
    ({"algorithm": "fedavg", "max_epochs": 3}, "centralized baseline only"),
    ({"algorithm": "centralized", "max_epochs": 3, "epochs": 2.0}, "cannot be combined"),
    ({"algorithm": "centralized", "max_epochs": 0}, "--max-epochs must be a positive integer"),
    ({"algorithm": "centralized", "max_epochs": 3, "validation_fraction": 0.7}, "--validation-fraction"),
    ({"algorithm": "centralized", "patience": 2}, "--patience applies to early stopping only"),
])
def test_bad_early_stopping_settings_are_one_line(kwargs, needle, tmp_path):
    with pytest.raises(UserError, match=needle.replace("(", r"\(")):
        RunConfig(task="demo", output=str(tmp_path), **kwargs).validate()


def test_holdout_of_a_single_example_is_refused():
    data = demo_dataset(num_train=1, num_test=5, seed=1)
    with pytest.raises(UserError, match="only 1"):
        holdout_validation(data, 0.1, seed=1)
