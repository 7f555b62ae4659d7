"""Tests for the sequence-tagging family: CoNLL/hub loading, scheme checks, subword alignment, seqeval metrics, FL."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from fednlp_bench.data.tagging import (
    SequenceTaggingData,
    detect_scheme,
    dominant_type,
    load_sequence_tagging_local,
    tagging_from_hf,
)
from fednlp_bench.errors import UserError
from fednlp_bench.tasks.tagging import IGNORE, SequenceTaggingTask, align_labels
from fednlp_bench.tasks.tagging_metrics import entity_scores

SHARED_DATA = Path(os.environ.get("FEDNLP_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
CPU = torch.device("cpu")


def _write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


# ------------------------------------------------------------------------------------------ seqeval metrics


def test_entity_scores_hand_checked():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "O", "B-LOC"]]
    # gold entities: PER(0-1), LOC(3) in s1; ORG(1-2) in s2                      -> 3
    # predicted:     PER(0-1), LOC(3) in s1; ORG(1-1) (wrong span), LOC(3) in s2 -> 4
    # correct: PER, LOC of s1 -> 2.  P = 2/4 = 0.5, R = 2/3, F1 = 2PR/(P+R) = (2/3)/(7/6) = 4/7
    # word accuracy: s1 4/4, s2 2/4 (I-ORG->O and O->B-LOC wrong) -> 6/8 = 0.75
    s = entity_scores(gold, pred, "BIO")
    assert s["precision"] == pytest.approx(0.5)
    assert s["recall"] == pytest.approx(2 / 3)
    assert s["f1"] == pytest.approx(4 / 7)
    assert s["accuracy"] == pytest.approx(0.75)


def test_entity_scores_iob1_conlleval_and_iobes_strict():
    # IOB1: entities start with I-; B- only splits two adjacent same-type entities.
    gold = [["I-PER", "I-PER", "B-PER", "O", "I-LOC"]]  # PER(0-1), PER(2), LOC(4)
    pred = [["I-PER", "I-PER", "I-PER", "O", "I-LOC"]]  # PER(0-2), LOC(4): 1 of 2 correct, 2 of 3 gold missed
    s = entity_scores(gold, pred, "IOB1")
    assert s["precision"] == pytest.approx(1 / 2) and s["recall"] == pytest.approx(1 / 3)  # F1 = 0.4
    assert s["f1"] == pytest.approx(0.4)
    # IOBES strict: "B-PER I-PER" without E- is no entity, so only S-LOC is predicted: P = 1/1, R = 1/2, F1 = 2/3.
    gold = [["B-PER", "E-PER", "S-LOC"]]
    pred = [["B-PER", "I-PER", "S-LOC"]]
    s = entity_scores(gold, pred, "IOBES")
    assert (s["precision"], s["recall"]) == (pytest.approx(1.0), pytest.approx(0.5))
    assert s["f1"] == pytest.approx(2 / 3)
    # the lenient conlleval reading of the same predictions would count B-PER I-PER as PER(0-1): F1 1.0
    assert entity_scores(gold, pred, "BIO")["f1"] == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------- label alignment


def test_align_labels_first_subtoken_only():
    # [CLS] w0 w0 w1 w2 w2 w2 [SEP]
    labels, words = align_labels([None, 0, 0, 1, 2, 2, 2, None], [5, 0, 7])
    assert labels == [IGNORE, 5, IGNORE, 0, 7, IGNORE, IGNORE, IGNORE]
    assert words == [-1, 0, -1, 1, 2, -1, -1, -1]


def _small_data(sentences: list[list[tuple[str, str]]]) -> SequenceTaggingData:
    toks = [[t for t, _ in s] for s in sentences]
    tags = [[g for _, g in s] for s in sentences]
    return SequenceTaggingData.create("small", toks, tags, toks, tags)


def test_task_aligns_real_tokenizer_and_truncation_predicts_o():
    words = ["Helloyesterday", "visited", "the", "Paris", "Paris", "yesterday"] + ["and"] * 20
    tags = ["B-person", "O", "O", "B-location", "I-location", "O"] + ["O"] * 20
    train = [["hello", "visited", "the", "and", "yesterday"], ["Paris", "and", "the"]]
    data = SequenceTaggingData.create("small", train, [["O"] * 5, ["B-location", "O", "O"]],
                                      [words, ["hello", "Paris"]], [tags, ["O", "B-location"]])
    task = SequenceTaggingTask(data, model="tiny", max_length=10)
    enc = task.tokenizer(words, is_split_into_words=True, truncation=True, max_length=10)
    wid = enc.word_ids()
    b = task.batch("test", np.array([0]))
    labels = b["labels"][0].tolist()
    assert len(labels) == len(wid) == 10
    seen = set()
    for pos, w in enumerate(wid):
        if w is None or w in seen:
            assert labels[pos] == IGNORE
        else:
            assert labels[pos] == task.tag_names.index(tags[w])
            seen.add(w)
    assert wid.count(0) > 1  # the rare first word is split, so the -100 branch above really ran
    kept = max(w for w in wid if w is not None)
    assert kept < len(words) - 1  # truncation cut words off
    preds = task.predict(task.new_model(0), "test", CPU)
    assert [len(p) for p in preds] == [len(words), 2]
    assert all(t == "O" for t in preds[0][kept + 1 :])  # cut-off words are predicted O


# ------------------------------------------------------------------------------------------- CoNLL parsing

BIO_TEXT = "-DOCSTART- -X- O O\n\nJohn NNP B-PER\nSmith\tNNP\tI-PER\nlives O\nin O\nNew B-LOC\nYork I-LOC\n \t\nHi O\n"


def test_conll_bio_parsing(tmp_path):
    path = _write(tmp_path, "train.conll", BIO_TEXT)
    d = load_sequence_tagging_local(path, path, ["tokens"], "ner_tags", name="t")
    assert d.tag_scheme == "BIO"
    assert d.train_tokens == [["John", "Smith", "lives", "in", "New", "York"], ["Hi"]]
    assert d.train_tags[0] == ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC"]
    assert d.train_texts[0] == "John Smith lives in New York"
    assert d.tag_names == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert d.label_names == ["O", "LOC", "PER"]
    assert [d.label_names[i] for i in d.train_labels] == ["LOC", "O"]  # tie PER/LOC -> alphabetical
    assert d.train_labels.dtype == np.int64 and d.train_groups is None
    again = load_sequence_tagging_local(path, path, None, None, name="t")
    assert again.fingerprint == d.fingerprint and len(d.fingerprint) == 64
    sub = d.subset(np.array([1]), np.array([0, 1]))
    assert sub.train_tokens == [["Hi"]] and sub.tag_names == d.tag_names and sub.fingerprint != d.fingerprint
    assert "2 train / 2 test sentences" in d.summary()


def test_conll_iob1_and_iobes_detected(tmp_path):
    iob1 = _write(tmp_path, "iob1.txt", "Bill I-PER\nGates I-PER\nBob B-PER\nsaw O\n\nParis I-LOC\n")
    d = load_sequence_tagging_local(iob1, None, None, None, test_fraction=0.5, name="x")
    assert d.tag_scheme == "IOB1"
    iobes = _write(tmp_path, "iobes.txt", "Bill B-PER\nGates E-PER\nin O\nParis S-LOC\n\nRome S-LOC\n")
    d = load_sequence_tagging_local(iobes, iobes, None, None)
    assert d.tag_scheme == "IOBES" and d.train_tags[0] == ["B-PER", "E-PER", "O", "S-LOC"]
    assert d.name == "iobes"
    assert detect_scheme([["B-PER", "I-PER", "O"]]) == "BIO"
    # declared schemes win over detection (IOB1 data read as BIO is chunked the same way by conlleval)
    assert load_sequence_tagging_local(iob1, iob1, None, None, tag_scheme="BIO").tag_scheme == "BIO"


def test_conll_seeded_split(tmp_path):
    text = "".join(f"w{i} O\nParis B-LOC\n\n" for i in range(10))
    path = _write(tmp_path, "d.conll", text)
    a = load_sequence_tagging_local(path, None, None, None, test_fraction=0.3, seed=1)
    b = load_sequence_tagging_local(path, None, None, None, test_fraction=0.3, seed=1)
    c = load_sequence_tagging_local(path, None, None, None, test_fraction=0.3, seed=2)
    assert len(a.train_tokens) == 7 and len(a.test_tokens) == 3
    assert a.fingerprint == b.fingerprint and a.test_tokens == b.test_tokens
    assert a.test_tokens != c.test_tokens


@pytest.mark.parametrize(
    "text, scheme, pattern",
    [
        ("John B-PER\nSmith\n", "auto", r"line 2: expected a token and a tag, got 1 field"),
        ("John B-PER\n\nSmith PERSON\n", "auto", r"line 3: tag 'PERSON' is not O or X-TYPE"),
        ("John B-PER\nSmith E-PER\n", "BIO", r"line 2: tag 'E-PER' is not allowed in the BIO scheme"),
        ("Paris S-LOC\n", "IOB1", r"line 1: tag 'S-LOC' is not allowed in the IOB1 scheme"),
        ("John B-PER\nSmith I-PER\nsays O\n", "IOBES", r"line 2: tag 'I-PER' is not followed by I-PER/E-PER"),
        ("", "auto", r"no sentences in .*empty\.conll"),
        ("-DOCSTART- O\n\n\n", "auto", r"no sentences in"),
    ],
)
def test_conll_bad_input(tmp_path, text, scheme, pattern):
    path = _write(tmp_path, "empty.conll", text)
    with pytest.raises(UserError, match=pattern) as err:
        load_sequence_tagging_local(path, None, None, None, tag_scheme=scheme)
    assert "\n" not in str(err.value) and "empty.conll" in str(err.value)


def test_bad_scheme_name_and_missing_file(tmp_path):
    path = _write(tmp_path, "ok.conll", "John B-PER\n\nHi O\n")
    with pytest.raises(UserError, match=r"unknown tag scheme 'BILOU'.*auto, BIO, IOB1, IOBES"):
        load_sequence_tagging_local(path, None, None, None, tag_scheme="BILOU")
    with pytest.raises(UserError, match=r"data file not found: .*nope\.conll"):
        load_sequence_tagging_local(str(tmp_path / "nope.conll"), None, None, None)
    with pytest.raises(UserError, match=r"not found: .*missing-test\.conll.*--test-file"):
        load_sequence_tagging_local(path, str(tmp_path / "missing-test.conll"), None, None)
    with pytest.raises(UserError, match="unknown option"):
        load_sequence_tagging_local(path, None, None, None, tagscheme="BIO")


# ----------------------------------------------------------------------------------------- skew label rule


def test_dominant_type_rule():
    assert dominant_type(["B-PER", "I-PER", "O", "B-LOC", "B-LOC"]) == "LOC"  # 2 LOC mentions beat 1 PER
    assert dominant_type(["B-PER", "I-PER", "I-PER", "B-LOC"]) == "LOC"  # mentions, not tokens: 1-1 tie -> alphabetical
    assert dominant_type(["O", "O"]) == "O"
    assert dominant_type(["S-ORG", "O", "B-PER", "E-PER", "S-ORG"]) == "ORG"  # IOBES chunks too


# --------------------------------------------------------------------------------------- Hugging Face path


def test_hub_conversion_classlabel_and_strings():
    import datasets

    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    feats = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                               "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names))})
    train = datasets.Dataset.from_dict({"tokens": [["Ann", "Lee", "in", "Oslo"], ["ok"]],
                                        "ner_tags": [[1, 2, 0, 3], [0]]}, features=feats)
    test = datasets.Dataset.from_dict({"tokens": [["Oslo"]], "ner_tags": [[3]]}, features=feats)
    d = tagging_from_hf(datasets.DatasetDict(train=train, validation=test), ["tokens"], "ner_tags",
                        train_split="train", test_split="validation", name="hf", shown="mem")
    assert d.train_tags[0] == ["B-PER", "I-PER", "O", "B-LOC"] and d.test_tags == [["B-LOC"]]
    assert d.tag_names == names and d.tag_scheme == "BIO"
    assert [d.label_names[i] for i in d.train_labels] == ["LOC", "O"]
    two = {"train": datasets.Dataset.from_dict({"words": [["a", "B"], ["C", "d"]], "tags": [["O", "S-X"], ["S-Y", "O"]]})}
    d2 = tagging_from_hf(two, ["words"], "tags", train_split="train", test_split=None, test_fraction=0.5, shown="mem")
    assert d2.tag_scheme == "IOBES" and len(d2.train_tokens) == len(d2.test_tokens) == 1
    assert d2.tag_names == ["O", "S-X", "S-Y"]
    plain = {"train": datasets.Dataset.from_dict({"words": [["a", "B"]], "tags": [["O", "S-X"]]})}
    with pytest.raises(UserError, match="only 1 sentence"):
        tagging_from_hf(plain, ["words"], "tags", train_split="train", test_split=None, shown="mem")
    with pytest.raises(UserError, match=r"column 'ner_tags' not in Hugging Face dataset 'mem'"):
        tagging_from_hf(plain, ["words"], None, train_split="train", test_split=None, shown="mem")
    with pytest.raises(UserError, match=r"no split 'test'"):
        tagging_from_hf(plain, ["words"], "tags", train_split="train", test_split="test", shown="mem")


# ------------------------------------------------------------------------------------- model determinism


def test_new_model_same_seed_same_weights():
    data = _small_data([[("Ann", "B-PER"), ("runs", "O")], [("Oslo", "B-LOC")]])
    task = SequenceTaggingTask(data)
    a, b, c = task.new_model(3), task.new_model(3), task.new_model(4)
    wa, wb, wc = (torch.cat([p.detach().flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert a.config.num_labels == task.num_labels == 3
    assert task.metric_names == ("precision", "recall", "f1", "accuracy") and task.primary_metric == "f1"


# ------------------------------------------------------------------------------------ WNUT-17 integration


def _wnut() -> Path:
    path = SHARED_DATA / "wnut17"
    if not (path / "train.conll").exists():
        pytest.skip(f"real data not available: {path}/train.conll is missing (set FEDNLP_SHARED_DATA)")
    return path


@pytest.fixture
def one_thread():
    """2 shared cores: one torch thread is several times faster than two under contention; restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_wnut17_fedavg_and_centralized_beat_untrained(one_thread):
    from fednlp_bench.fl.centralized import run_centralized
    from fednlp_bench.fl.client import ClientConfig
    from fednlp_bench.fl.simulation import FLConfig, run_federated
    from fednlp_bench.fl.strategies import ServerConfig
    from fednlp_bench.partition import make_partition

    root = _wnut()
    full = load_sequence_tagging_local(str(root / "train.conll"), str(root / "test.conll"), None, None, name="wnut17")
    assert (len(full.train_tokens), len(full.test_tokens)) == (3394, 586) and full.tag_scheme == "BIO"
    assert len(full.label_names) == 7
    # 600 training tweets that hold an entity (WNUT is 92% O; a random sample teaches a tiny model to say O
    # everywhere), 300 random test tweets.
    rng = np.random.default_rng(0)
    with_entity = np.flatnonzero(full.train_labels > 0)
    data = full.subset(np.sort(rng.choice(with_entity, 600, replace=False)),
                       np.sort(rng.choice(len(full.test_tokens), 300, replace=False)))
    task = SequenceTaggingTask(data, model="tiny", max_length=64)
    untrained = task.metrics(task.predict(task.new_model(0), "test", CPU), "test")
    client = ClientConfig(optimizer="adamw", lr=3e-3, local_epochs=4, batch_size=16)
    parts = make_partition("uniform", task.skew_labels("train"), 2, 0, None, None)
    fl = run_federated(task, parts, FLConfig("fedavg", 3, 2, client, ServerConfig(), seed=0, progress=False), CPU)
    central = run_centralized(task, 5, client, CPU, seed=0, progress=False)
    # measured (seed 0): untrained F1 0.003, FedAvg 0.043, centralized 0.048
    assert len(fl.curve) == 3 and len(central.curve) == 5
    assert fl.final["f1"] > untrained["f1"] + 0.01
    assert central.final["f1"] > untrained["f1"] + 0.01
    assert fl.final["accuracy"] > untrained["accuracy"]
    per_client = [task.metrics(fl.predictions, "test", ids) for ids in np.array_split(np.arange(300), 3)]
    assert all(set(m) == {"precision", "recall", "f1", "accuracy"} for m in per_client)
