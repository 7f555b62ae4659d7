"""Task cards (tasks/*.yaml): every card loads and validates offline; user cards work; bad cards fail in one line."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fednlp_bench.cli import main
from fednlp_bench.errors import UserError
from fednlp_bench.tasks import TASKS, get_spec
from fednlp_bench.tasks.cards import ALGO_KEYS, INT_KEYS, builtin_cards_dir, load_builtin_cards, load_card
from fednlp_bench.tasks.spec import FAMILIES, FAMILY_METRIC

ROOT = Path(__file__).resolve().parents[1]
CARDS = sorted((ROOT / "tasks").glob("*.yaml"))
# FedNLP's datasets (REFERENCE-FEDNLP.md) by card name
FEDNLP = {"20news", "agnews", "sst2", "sentiment140", "onto", "wikiner", "wnut17", "ploner", "squad", "mrqa",
          "gigaword", "cnn_dailymail", "cornell_movie_dialogue", "reddit_tifu"}
FORMER_TASKS = {"demo", "sst2", "agnews", "multidomain_sentiment", "20news", "text_classification", "wnut17",
                "conll2003", "tagging", "squad", "mrqa", "qa", "agnews_headline", "cnn_dailymail", "xsum", "samsum",
                "seq2seq"}


def test_the_checkout_reads_the_top_level_cards():
    assert builtin_cards_dir() == ROOT / "tasks"
    assert {p.stem for p in CARDS} == set(TASKS)


def test_every_former_task_and_every_fednlp_dataset_has_a_card():
    assert FORMER_TASKS | FEDNLP <= set(TASKS)


def test_every_family_has_a_card():
    assert {s.family for s in TASKS.values()} == set(FAMILIES)


@pytest.mark.parametrize("path", CARDS, ids=lambda p: p.stem)
def test_card_validates(path):
    spec = load_card(path)
    assert spec.name == path.stem
    assert spec.metric == FAMILY_METRIC[spec.family]
    assert spec.text_columns and all(isinstance(c, str) and c for c in spec.text_columns)
    if spec.family == "language_modeling":  # a label there is optional (it only feeds label skew)
        assert spec.label_column is None or (isinstance(spec.label_column, str) and spec.label_column)
    else:
        assert isinstance(spec.label_column, str) and spec.label_column
    assert isinstance(spec.max_length, int) and spec.max_length > 0
    expected_cols = {"extractive_qa": 2, "sequence_tagging": 1, "seq2seq": 1}.get(spec.family)
    if expected_cols:
        assert len(spec.text_columns) == expected_cols
    if spec.hub_name:
        assert len(spec.hub_splits) == 2
    if spec.layout == "domains":
        assert spec.local_train
    assert spec.notes, "every card says where it comes from in notes"
    for algo, block in spec.fednlp.items():
        assert set(block) == set(ALGO_KEYS[algo])
        for key, value in block.items():
            if key in INT_KEYS:
                assert type(value) is int and value > 0, (algo, key)
            elif key.endswith("_lr") or key == "mu":
                assert type(value) is float and value > 0, (algo, key)
        assert block["clients_per_round"] <= block["clients"]


@pytest.mark.parametrize("name", sorted(FEDNLP))
def test_fednlp_cards_carry_fednlp_settings(name):
    spec = TASKS[name]
    assert set(spec.fednlp) == {"fedavg", "fedprox", "fedopt"}
    assert spec.fednlp["fedavg"]["client_optimizer"] == "sgd"
    assert spec.fednlp["fedopt"]["client_optimizer"] == "adamw"
    batch = {"text_classification": 32, "sequence_tagging": 16, "seq2seq": 4}.get(spec.family)
    if batch:
        assert spec.fednlp["fedavg"]["batch_size"] == batch


def test_primary_metric_of_each_family_matches_its_adapter():
    from fednlp_bench.tasks import adapter_class

    for family in FAMILIES:
        assert adapter_class(family).primary_metric == FAMILY_METRIC[family]


# ------------------------------------------------------------------------------------------------ user cards

USER_CARD = {"name": "my_reviews", "family": "text_classification", "description": "my reviews, 2 classes",
             "text_columns": ["review"], "label_column": "stars", "metric": "accuracy", "max_length": 32}


def write_card(tmp_path: Path, card: dict | str, name: str = "my.yaml") -> Path:
    path = tmp_path / name
    path.write_text(card if isinstance(card, str) else yaml.safe_dump(card, sort_keys=False))
    return path


def test_get_spec_accepts_a_card_path(tmp_path):
    path = write_card(tmp_path, USER_CARD, "mine.yml")
    spec = get_spec(str(path))
    assert (spec.name, spec.text_columns, spec.label_column, spec.default_model) == (
        "my_reviews", ("review",), "stars", "tiny")


def test_user_card_runs_through_the_cli(tmp_path, capsys):
    path = write_card(tmp_path, USER_CARD)
    rows = ["review,stars"] + [f"{'great fine good' if i % 2 else 'bad awful poor'} item {i},{i % 2}" for i in range(80)]
    data = tmp_path / "reviews.csv"
    data.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    rc = main(["run", "--task", str(path), "--train-file", str(data), "--rounds", "1", "--clients", "2",
               "--clients-per-round", "2", "--output", str(out), "--cache-dir", str(tmp_path / "cache"),
               "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "accuracy=" in captured.out
    results = list(out.glob("my_reviews-fedavg-*.json"))
    assert len(results) == 1


def test_missing_card_file_is_one_line(tmp_path, capsys):
    rc = main(["run", "--task", str(tmp_path / "nope.yaml"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "task card not found" in err[0]


BAD_CARDS = {
    "unknown key": ({**USER_CARD, "colour": "red"}, "'colour'"),
    "unknown nested key": ({**USER_CARD, "data": {"hub": {"name": "x", "revision": "main"}}}, "'data.hub.revision'"),
    "wrong type": ({**USER_CARD, "max_length": "long"}, "'max_length'"),
    "columns not a list": ({**USER_CARD, "text_columns": "review"}, "'text_columns'"),
    "unknown family": ({**USER_CARD, "family": "translation"}, "'family'"),
    "metric vs family": ({**USER_CARD, "metric": "rougeL"}, "'metric'"),
    "missing key": ({k: v for k, v in USER_CARD.items() if k != "label_column"}, "'label_column'"),
    "bad layout": ({**USER_CARD, "data": {"local": {"train": "a.csv", "layout": "shards"}}}, "'data.local.layout'"),
    "lr as text": ({**USER_CARD, "fednlp": {"fedavg": {
        "client_optimizer": "sgd", "client_lr": "5e-5", "rounds": 1, "clients": 2, "clients_per_round": 1,
        "local_epochs": 1, "batch_size": 8}}}, "'fednlp.fedavg.client_lr'"),
    "negative rounds": ({**USER_CARD, "fednlp": {"fedavg": {
        "client_optimizer": "sgd", "client_lr": 0.1, "rounds": -3, "clients": 2, "clients_per_round": 1,
        "local_epochs": 1, "batch_size": 8}}}, "'fednlp.fedavg.rounds'"),
    "missing mu": ({**USER_CARD, "fednlp": {"fedprox": {
        "client_optimizer": "sgd", "client_lr": 0.1, "rounds": 1, "clients": 2, "clients_per_round": 1,
        "local_epochs": 1, "batch_size": 8}}}, "'fednlp.fedprox.mu'"),
    "not a mapping": ("- just\n- a list\n", "expected a mapping"),
    "broken yaml": ("name: [unclosed\n", "not valid YAML"),
}


@pytest.mark.parametrize("case", list(BAD_CARDS))
def test_bad_card_is_a_user_error_naming_file_and_key(case, tmp_path):
    card, needle = BAD_CARDS[case]
    path = write_card(tmp_path, card)
    with pytest.raises(UserError) as exc:
        load_card(path)
    message = str(exc.value)
    assert str(path) in message and needle in message and "\n" not in message
    assert "; " in message  # a fix follows the problem


@pytest.mark.parametrize("case", ["unknown key", "metric vs family"])
def test_bad_card_exits_2_with_one_line(case, tmp_path, capsys):
    path = write_card(tmp_path, BAD_CARDS[case][0])
    rc = main(["run", "--task", str(path), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("fednlp-bench: error: task card")


def test_builtin_card_named_unlike_its_file_is_rejected(tmp_path):
    write_card(tmp_path, USER_CARD, "other.yaml")
    with pytest.raises(UserError, match="differs from the file name"):
        load_builtin_cards(tmp_path)


def test_tasks_command_shows_card_columns(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    for column in ("family", "metric", "default model", "hub", "local files"):
        assert column in header
    assert "stanfordnlp/sentiment140" in out and "rougeL" in out
