"""Language modelling family: corpus loading, the causal-LM adapter's perplexity, training, CLI, membership losses."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from fednlp_bench.cli import main
from fednlp_bench.data import demo_dataset
from fednlp_bench.data.lm import load_lm_local
from fednlp_bench.errors import UserError
from fednlp_bench.results import client_distribution
from fednlp_bench.tasks import adapter_class, get_spec
from fednlp_bench.tasks.language_modeling import LanguageModelingTask, lm_metrics

SHARED = Path(os.environ.get("FEDNLP_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A .txt corpus (one text per line, with blank lines) from the embedded demo's texts."""
    folder = tmp_path_factory.mktemp("lm")
    data = demo_dataset(num_train=160, num_test=40, seed=3)
    lines = []
    for i, text in enumerate(data.train_texts + data.test_texts):
        lines.append(text)
        if i % 7 == 0:
            lines.append("   ")
    (folder / "corpus.txt").write_text("\n".join(lines) + "\n")
    return folder / "corpus.txt"


@pytest.fixture(scope="module")
def task(corpus, tmp_path_factory) -> LanguageModelingTask:
    data = load_lm_local(str(corpus), None, ["text"], None, test_fraction=0.2, seed=5, name="demo_lm")
    return LanguageModelingTask(data, model="tiny", max_length=32, cache_dir=tmp_path_factory.mktemp("cache"),
                                dropout=0.0)


def test_txt_corpus_drops_blank_lines_and_splits_by_seed(corpus):
    a = load_lm_local(str(corpus), None, ["text"], None, test_fraction=0.2, seed=5)
    b = load_lm_local(str(corpus), None, ["text"], None, test_fraction=0.2, seed=5)
    c = load_lm_local(str(corpus), None, ["text"], None, test_fraction=0.2, seed=6)
    assert len(a.train_texts) + len(a.test_texts) == 200  # the blank lines are gone
    assert len(a.test_texts) == 40 and all(t.strip() for t in a.train_texts + a.test_texts)
    assert a.fingerprint == b.fingerprint and a.fingerprint != c.fingerprint
    assert a.label_names == ["all"] and not a.train_labels.any()


def test_txt_corpus_with_a_label_column_is_a_user_error(corpus):
    with pytest.raises(UserError, match="no columns"):
        load_lm_local(str(corpus), None, ["text"], "label", test_fraction=0.2, seed=5)


def test_csv_corpus_keeps_an_optional_label_for_label_skew(tmp_path):
    (tmp_path / "c.csv").write_text("text,topic\nthe cat sat,a\n,b\nthe dog ran,b\nthe cat ran,a\nthe dog sat,b\n")
    with_label = load_lm_local(str(tmp_path / "c.csv"), None, ["text"], "topic", test_fraction=0.25, seed=0)
    assert with_label.label_names == ["a", "b"]
    assert len(with_label.train_texts) + len(with_label.test_texts) == 4  # the empty text is dropped
    without = load_lm_local(str(tmp_path / "c.csv"), None, ["text"], None, test_fraction=0.25, seed=0)
    assert without.label_names == ["all"]


def test_perplexity_is_exp_of_the_models_own_token_loss(task):
    """Pooled over tokens, the adapter's perplexity equals exp(HF causal-LM loss) of the same examples in one batch."""
    model = task.new_model(0)
    model.eval()
    ids = np.arange(12)
    stats = task.predict(model, "test", CPU)
    with torch.no_grad():
        hf_loss = float(model(**task.batch("test", ids)).loss)
    assert task.metrics(stats, "test", ids)["perplexity"] == pytest.approx(math.exp(hf_loss), rel=1e-4)
    # predicted tokens per example = its length - 1 (the first token is never predicted)
    assert np.array_equal(stats[:, 1], task.splits["test"].lengths - 1)
    # an untrained model is close to uniform over the vocabulary: perplexity of the order of its size
    ppl = task.metrics(stats, "test")["perplexity"]
    assert len(task.tokenizer) / 4 < ppl < len(task.tokenizer) * 4


def test_lm_metrics_pool_tokens_not_examples():
    stats = np.array([[2.0, 1.0, 1.0], [2.0, 3.0, 0.0]])  # NLL sums, tokens, correct
    m = lm_metrics(stats)
    assert m["perplexity"] == pytest.approx(math.exp(4.0 / 4.0))
    assert m["token_accuracy"] == pytest.approx(0.25)
    assert math.isnan(lm_metrics(np.zeros((0, 3)))["perplexity"])


def test_training_lowers_held_out_perplexity(task):
    model = task.new_model(1)
    before = task.metrics(task.predict(model, "test", CPU), "test")["perplexity"]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    model.train()
    for _ in range(60):
        loss = task.loss(model, task.batch("train", rng.choice(task.num_examples("train"), 16, replace=False)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = task.metrics(task.predict(model, "test", CPU), "test")["perplexity"]
    assert after < 0.5 * before


def test_example_losses_are_each_examples_mean_token_loss(task):
    from fednlp_bench.membership import example_losses

    model = task.new_model(2)
    model.eval()
    ids = np.array([0, 3, 7])
    batched = example_losses(task, model, "train", ids, CPU)
    with torch.no_grad():
        single = [float(model(**task.batch("train", np.array([i]))).loss) for i in ids]
    assert batched == pytest.approx(single, rel=1e-4)


def test_client_p10_of_perplexity_is_the_worse_tail():
    values = np.arange(1.0, 11.0)  # ten clients, perplexity 1..10
    assert client_distribution(values, higher_is_better=False)["p10"] == pytest.approx(np.percentile(values, 90))
    assert client_distribution(values)["p10"] == pytest.approx(np.percentile(values, 10))


def test_card_family_and_adapter():
    spec = get_spec("language_modeling")
    assert spec.family == "language_modeling" and spec.metric == "perplexity" and spec.label_column is None
    assert adapter_class("language_modeling") is LanguageModelingTask


def test_run_and_mia_from_the_cli_are_deterministic(corpus, tmp_path, capsys):
    argv = ["run", "--task", "language_modeling", "--train-file", str(corpus), "--clients", "4",
            "--clients-per-round", "2", "--rounds", "2", "--batch-size", "8", "--max-length", "32",
            "--client-optimizer", "adamw", "--client-lr", "0.003", "--selection", "activity", "--partition",
            "quantity", "--beta", "2", "--mia", "--no-progress", "--cache-dir", str(tmp_path / "cache")]
    finals = []
    for out in ("a", "b"):
        assert main([*argv, "--output", str(tmp_path / out)]) == 0
        rec = json.loads(next((tmp_path / out).glob("*.json")).read_text())
        finals.append(rec["final"])
    capsys.readouterr()
    assert finals[0] == finals[1]
    assert rec["task"]["family"] == "language_modeling" and rec["task"]["primary_metric"] == "perplexity"
    clients = rec["clients"]["perplexity"]
    assert clients["min"] <= clients["median"] <= clients["p10"] <= clients["max"]
    assert 0.0 <= rec["membership_inference"]["auc"] <= 1.0
    assert rec["config"]["selection"] == "activity"


def test_txt_with_label_column_from_the_cli_is_one_error_line(corpus, tmp_path, capsys):
    rc = main(["run", "--task", "language_modeling", "--train-file", str(corpus), "--label-column", "topic",
               "--output", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "label column" in err
    assert not (tmp_path / "o").exists()  # a data error leaves no (empty) output folder behind


@pytest.mark.skipif(not (SHARED / "agnews" / "test.csv").exists(),
                    reason=f"real data not found at {SHARED / 'agnews'} (set FEDNLP_SHARED_DATA to ../shared/data)")
def test_agnews_lm_splits_the_local_file_and_keeps_topics_as_skew_labels():
    from fednlp_bench.tasks import load_task_data

    data = load_task_data("agnews_lm", data_dir=str(SHARED / "agnews"), seed=42)
    assert len(data.train_texts) == 6080 and len(data.test_texts) == 1520
    assert len(data.label_names) == 4
    assert set(data.train_texts).isdisjoint(data.test_texts)


def test_a_null_label_column_is_allowed_for_language_modelling_only(tmp_path):
    from fednlp_bench.tasks.cards import load_card

    text = ("name: {name}\nfamily: {family}\ndescription: d\ntext_columns: [text]\nlabel_column: null\n"
            "metric: {metric}\n")
    (tmp_path / "lm.yaml").write_text(text.format(name="lm", family="language_modeling", metric="perplexity"))
    assert load_card(tmp_path / "lm.yaml").label_column is None
    (tmp_path / "tc.yaml").write_text(text.format(name="tc", family="text_classification", metric="accuracy"))
    with pytest.raises(UserError, match="label_column"):
        load_card(tmp_path / "tc.yaml")
