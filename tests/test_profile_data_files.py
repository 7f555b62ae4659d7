"""A profile may read other split files of a task's local folder than the card's (local_train / local_test):
squad's standard profile trains on train-subset.json and tests on dev-subset.json, its smoke profile splits
dev-subset.json. File names only, the run's key unchanged when unset, one error line when they cannot apply."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from fednlp_bench.config import RunConfig, run_settings, settings_key
from fednlp_bench.errors import UserError
from fednlp_bench.partition.recipe import load_recipe_data
from fednlp_bench.runner import partition_recipe
from fednlp_bench.tasks.profiles import profile_settings
from fednlp_bench.tasks.registry import get_spec, load_task_data

SQUAD = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad"


def _squad_file(path: Path, n: int, title: str) -> None:
    qas = [{"id": f"{title}-{i}", "question": f"What is item {i}?",
            "answers": [{"text": f"thing{i}", "answer_start": len("Item is ")}]} for i in range(n)]
    paragraphs = [{"context": f"Item is thing{i} here.", "qas": [q]} for i, q in enumerate(qas)]
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": title, "paragraphs": paragraphs}]}))


@pytest.fixture
def squad_folder(tmp_path: Path) -> Path:
    _squad_file(tmp_path / "dev-subset.json", 20, "dev")  # the card's file (split 80/20)
    _squad_file(tmp_path / "big.json", 50, "big")
    _squad_file(tmp_path / "held.json", 7, "held")
    return tmp_path


def test_profile_files_replace_the_cards_files(squad_folder):
    card = load_task_data("squad", data_dir=str(squad_folder))
    assert len(card.train_examples) + len(card.test_examples) == 20
    both = load_task_data("squad", data_dir=str(squad_folder), local_train="big.json", local_test="held.json")
    assert (len(both.train_examples), len(both.test_examples)) == (50, 7)
    assert {ex.id.split("-")[0] for ex in both.test_examples} == {"held"}
    only_train = load_task_data("squad", data_dir=str(squad_folder), local_train="big.json")  # split, seeded
    assert len(only_train.train_examples) + len(only_train.test_examples) == 50
    assert {ex.id.split("-")[0] for ex in only_train.test_examples} == {"big"}


def test_profile_files_need_the_local_copy(monkeypatch):
    monkeypatch.delenv("FEDNLP_DATA_DIR", raising=False)
    with pytest.raises(UserError) as err:
        load_task_data("squad", local_train="train-subset.json")
    assert "train-subset.json" in str(err.value) and "FEDNLP_DATA_DIR" in str(err.value)


@pytest.mark.parametrize("bad", ["../train.json", "/etc/passwd", "sub/train.json", "..", ""])
def test_profile_files_are_file_names_not_paths(bad):
    with pytest.raises(UserError) as err:
        RunConfig(task="squad", local_train=bad).validate()
    assert "local_train" in str(err.value) and "file name" in str(err.value)


def test_unset_profile_files_leave_the_run_key_unchanged():
    plain = RunConfig(task="squad").to_dict()
    assert "local_train" not in run_settings(plain) and "local_test" not in run_settings(plain)
    with_files = RunConfig(task="squad", local_train="train-subset.json").to_dict()
    assert settings_key(with_files) != settings_key(plain)


def test_squad_standard_profile_names_its_files_and_smoke_does_not():
    spec = get_spec("squad")
    standard = profile_settings(spec, "standard", "fedavg")
    assert (standard["local_train"], standard["local_test"]) == ("train-subset.json", "dev-subset.json")
    assert "local_train" not in profile_settings(spec, "smoke", "fedavg")


@pytest.mark.skipif(not (SQUAD / "train-subset.json").exists(),
                    reason=f"squad train-subset.json not found under {SQUAD} (see shared/data/squad/PROVENANCE-train.md)")
def test_squad_standard_recipe_reads_the_training_subset(monkeypatch):
    monkeypatch.setenv("FEDNLP_DATA_DIR", str(SQUAD.parent))
    settings = profile_settings(get_spec("squad"), "standard", "fedavg")
    cfg = RunConfig(task="squad", partition="uniform", clients=settings["clients"],
                    local_train=settings["local_train"], local_test=settings["local_test"])
    recipe = partition_recipe(cfg, "squad")
    assert recipe.to_dict()["local_train"] == "train-subset.json"
    data = load_recipe_data(recipe)
    assert (len(data.train_examples), len(data.test_examples)) == (3807, 705)  # all 11 articles; dev answerable
    train_ids = {ex.id for ex in data.train_examples}
    assert not train_ids & {ex.id for ex in data.test_examples}
