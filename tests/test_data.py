"""Tests for fednlp_bench.data: demo set, local files, hub wrapper, label encoding."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from fednlp_bench.data import (
    TOPICS,
    TextClassificationData,
    demo_dataset,
    encode_labels,
    fingerprint_of,
    load_hub,
    load_local,
)
from fednlp_bench.errors import UserError

SHARED_DATA = Path(os.environ.get("FEDNLP_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def _shared(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} is missing (set FEDNLP_SHARED_DATA to the shared/data folder)")
    return path


# ---------------------------------------------------------------- demo dataset


@pytest.fixture(scope="module")
def demo() -> TextClassificationData:
    return demo_dataset()


def test_demo_same_seed_identical(demo):
    again = demo_dataset()
    assert again.train_texts == demo.train_texts and again.test_texts == demo.test_texts
    assert np.array_equal(again.train_labels, demo.train_labels)
    assert np.array_equal(again.test_labels, demo.test_labels)
    assert again.fingerprint == demo.fingerprint


def test_demo_different_seed_differs(demo):
    other = demo_dataset(seed=1)
    assert other.fingerprint != demo.fingerprint
    assert other.train_texts != demo.train_texts


def test_demo_sizes_and_classes(demo):
    assert demo.name == "demo"
    assert len(demo.train_texts) == 4000 and len(demo.test_texts) == 1000
    assert demo.label_names == TOPICS and demo.num_labels == 8
    assert demo.train_labels.dtype == np.int64
    small = demo_dataset(num_train=100, num_test=30, seed=3)
    assert len(small.train_texts) == 100 and len(small.test_texts) == 30
    for text in demo.train_texts + demo.test_texts:
        assert 8 <= len(text.split()) <= 30
    assert len(set(demo.train_texts)) > 0.95 * len(demo.train_texts)


def test_demo_balanced():
    clean = demo_dataset(label_noise=0.0)
    for labels in (clean.train_labels, clean.test_labels):
        counts = np.bincount(labels, minlength=8)
        assert counts.max() - counts.min() <= 1
    noisy = demo_dataset()
    counts = np.bincount(noisy.train_labels, minlength=8)
    assert counts.min() > 0.8 * 500 and counts.max() < 1.2 * 500


def test_demo_label_noise_fraction():
    clean = demo_dataset(label_noise=0.0)
    noisy = demo_dataset(label_noise=0.2)
    assert clean.train_texts == noisy.train_texts  # noise touches labels only
    flipped = np.mean(clean.train_labels != noisy.train_labels)
    assert flipped == pytest.approx(0.2, abs=0.01)
    assert np.mean(clean.test_labels != noisy.test_labels) == pytest.approx(0.2, abs=0.01)


def test_demo_test_split_independent_of_train_size(demo):
    bigger = demo_dataset(num_train=5000)
    assert bigger.test_texts == demo.test_texts


def test_demo_bad_arguments():
    with pytest.raises(UserError):
        demo_dataset(num_train=0)
    with pytest.raises(UserError):
        demo_dataset(label_noise=1.5)


def _bag_of_words(texts, vocab=None):
    tokens = [re.findall(r"[a-z]+", t.lower()) for t in texts]
    if vocab is None:
        vocab = {w: i for i, w in enumerate(sorted({w for ts in tokens for w in ts}))}
    x = np.zeros((len(texts), len(vocab)))
    for i, ts in enumerate(tokens):
        for w in ts:
            if w in vocab:
                x[i, vocab[w]] += 1
    return x, vocab


def _nearest_centroid_accuracy(data: TextClassificationData) -> float:
    xtr, vocab = _bag_of_words(data.train_texts)
    xte, _ = _bag_of_words(data.test_texts, vocab)
    idf = np.log(len(xtr) / (1.0 + (xtr > 0).sum(axis=0)))

    def unit(x):
        x = x * idf
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    xtr, xte = unit(xtr), unit(xte)
    centroids = np.stack([xtr[data.train_labels == k].mean(axis=0) for k in range(data.num_labels)])
    centroids = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
    predictions = (xte @ centroids.T).argmax(axis=1)
    return float(np.mean(predictions == data.test_labels))


def test_demo_has_real_but_imperfect_signal(demo):
    accuracy = _nearest_centroid_accuracy(demo)  # about 0.77 with the defaults
    assert 0.6 < accuracy < 0.9, accuracy
    clean = _nearest_centroid_accuracy(demo_dataset(label_noise=0.0))  # about 0.87
    assert accuracy < clean < 0.97, clean


# ---------------------------------------------------------------- labels and fingerprint


def test_encode_labels_numeric_order():
    train, test, names = encode_labels(["10", "2", "1", "2"], ["1", "10"])
    assert names == ["1", "2", "10"]
    assert train.tolist() == [2, 1, 0, 1] and test.tolist() == [0, 2]
    assert train.dtype == np.int64


def test_encode_labels_ints_and_strings():
    train, test, names = encode_labels([3, 1, 2], [1])
    assert names == ["1", "2", "3"] and train.tolist() == [2, 0, 1] and test.tolist() == [0]
    train, _, names = encode_labels(["pos", "neg", "neutral"], [])
    assert names == ["neg", "neutral", "pos"] and train.tolist() == [2, 0, 1]


def test_encode_labels_unseen_test_label():
    with pytest.raises(UserError, match="not seen in train"):
        encode_labels(["a", "b"], ["a", "c"])


def test_encode_labels_empty_label():
    with pytest.raises(UserError, match="empty label"):
        encode_labels(["a", ""], [])


def test_fingerprint_sensitive_and_stable():
    base = fingerprint_of(["a b", "c"], [0, 1], ["d"], [1])
    assert base == fingerprint_of(["a b", "c"], np.array([0, 1]), ["d"], np.array([1]))
    assert base != fingerprint_of(["a", "b c"], [0, 1], ["d"], [1])
    assert base != fingerprint_of(["a b", "c"], [1, 0], ["d"], [1])
    assert base != fingerprint_of(["a b"], [0], ["c", "d"], [1, 1])
    assert len(base) == 64 and int(base, 16) >= 0


# ---------------------------------------------------------------- local files

ROWS = [
    {"title": "Stocks rally", "body": "Markets rose, then fell.", "label": "business"},
    {"title": "Cup final", "body": 'The "underdogs" won\nin extra time', "label": "sports"},
    {"title": "New probe", "body": "A spacecraft reached orbit", "label": "science"},
    {"title": "Bank deal", "body": "Merger agreed", "label": "business"},
]


def _write_csv(path: Path, rows, sep=","):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter=sep, quotechar='"')
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.parametrize("ext", [".csv", ".tsv", ".jsonl", ".json", ".json-data"])
def test_load_local_formats(tmp_path, ext):
    train, test = tmp_path / "train", tmp_path / "test"
    if ext in (".csv", ".tsv"):
        train, test = train.with_suffix(ext), test.with_suffix(ext)
        _write_csv(train, ROWS, "\t" if ext == ".tsv" else ",")
        _write_csv(test, ROWS[:2], "\t" if ext == ".tsv" else ",")
    elif ext == ".jsonl":
        train, test = train.with_suffix(ext), test.with_suffix(ext)
        train.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n\n", encoding="utf-8")
        test.write_text("\n".join(json.dumps(r) for r in ROWS[:2]), encoding="utf-8")
    else:
        train, test = train.with_suffix(".json"), test.with_suffix(".json")
        if ext == ".json":
            train.write_text(json.dumps(ROWS), encoding="utf-8")
            test.write_text(json.dumps(ROWS[:2]), encoding="utf-8")
        else:
            train.write_text(json.dumps({"data": ROWS}), encoding="utf-8")
            test.write_text(json.dumps({"data": ROWS[:2]}), encoding="utf-8")
    data = load_local(str(train), str(test), ["body"], "label")
    assert data.label_names == ["business", "science", "sports"]
    assert data.train_labels.tolist() == [0, 2, 1, 0] and data.test_labels.tolist() == [0, 2]
    assert data.train_texts[1] == 'The "underdogs" won\nin extra time'
    assert data.name == "train" or data.name == tmp_path.name


def test_load_local_multi_column_join(tmp_path):
    path = tmp_path / "news.csv"
    _write_csv(path, ROWS)
    data = load_local(str(path), str(path), ["title", "body"], "label", name="news")
    assert data.name == "news"
    assert data.train_texts[0] == "Stocks rally Markets rose, then fell."


def test_load_local_json_numeric_labels(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps({"text": f"t{i}", "label": i % 3 + 1}) for i in range(9)), encoding="utf-8")
    data = load_local(str(path), None, ["text"], "label", test_fraction=1 / 3, seed=0)
    assert data.label_names == ["1", "2", "3"]
    assert len(data.train_texts) == 6 and len(data.test_texts) == 3


def _many_rows(tmp_path: Path, n: int = 50) -> Path:
    path = tmp_path / "many.csv"
    _write_csv(path, [{"text": f"row {i}", "label": str(i % 2)} for i in range(n)])
    return path


def test_load_local_seeded_split(tmp_path):
    path = _many_rows(tmp_path)
    a = load_local(str(path), None, ["text"], "label", test_fraction=0.2, seed=7)
    b = load_local(str(path), None, ["text"], "label", test_fraction=0.2, seed=7)
    c = load_local(str(path), None, ["text"], "label", test_fraction=0.2, seed=8)
    assert len(a.train_texts) == 40 and len(a.test_texts) == 10
    assert a.fingerprint == b.fingerprint and a.test_texts == b.test_texts
    assert a.test_texts != c.test_texts
    assert sorted(a.train_texts + a.test_texts) == sorted(f"row {i}" for i in range(50))
    for text, label in zip(a.test_texts, a.test_labels):
        assert int(text.split()[1]) % 2 == label


def test_error_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found.*--train-file"):
        load_local(str(tmp_path / "nope.csv"), None, ["text"], "label")
    path = _many_rows(tmp_path)
    with pytest.raises(UserError, match="--test-file"):
        load_local(str(path), str(tmp_path / "nope.csv"), ["text"], "label")


def test_error_unknown_extension(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_text("text,label\na,1\n")
    with pytest.raises(UserError, match="unknown data file extension '.xlsx'"):
        load_local(str(path), None, ["text"], "label")


@pytest.mark.parametrize(
    "name, content",
    [
        ("bad.json", '[{"text": "a", "label": 1},'),
        ("bad.jsonl", '{"text": "a", "label": 1}\n{"text": oops}\n'),
        ("bad.json", '"just a string"'),
        ("bad.json", "[1, 2, 3]"),
        ("bad.csv", 'text,label\n"a,1\nb,2,3,4\n'),
    ],
)
def test_error_corrupt_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError) as info:
        load_local(str(path), None, ["text"], "label")
    assert "\n" not in str(info.value)


def test_error_not_utf8(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\ncaf\xe9,1\nb,0\n".encode("latin-1"))
    with pytest.raises(UserError, match="UTF-8"):
        load_local(str(path), None, ["text"], "label")


def test_error_missing_columns(tmp_path):
    path = _many_rows(tmp_path)
    with pytest.raises(UserError, match=r"'sentence' not in .*it has: text, label"):
        load_local(str(path), None, ["sentence"], "label")
    with pytest.raises(UserError, match=r"label column 'y' not in .*it has: text, label"):
        load_local(str(path), None, ["text"], "y")


@pytest.mark.parametrize("name, content", [("e.csv", ""), ("h.csv", "text,label\n"), ("e.json", "[]"),
                                           ("e.jsonl", "\n\n"), ("d.json", '{"data": []}')])
def test_error_empty_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match="empty|no data rows"):
        load_local(str(path), None, ["text"], "label")


def test_error_bad_test_fraction(tmp_path):
    with pytest.raises(UserError, match="test fraction"):
        load_local(str(_many_rows(tmp_path)), None, ["text"], "label", test_fraction=1.0)


def test_error_test_label_unseen(tmp_path):
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    _write_csv(train, ROWS[:1])
    _write_csv(test, ROWS[1:2])
    with pytest.raises(UserError, match="not seen in train"):
        load_local(str(train), str(test), ["body"], "label")


# ---------------------------------------------------------------- hub (no network: load_dataset is stubbed)


def test_hub_class_label_names(monkeypatch):
    import datasets

    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["neg", "pos"])})
    dsd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": ["bad", "good", "fine"], "label": [0, 1, 1]}, features=features),
        "test": datasets.Dataset.from_dict({"text": ["awful"], "label": [0]}, features=features),
        "unlabeled": datasets.Dataset.from_dict({"text": ["?"], "label": [-1]}, features=features),
    })
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: dsd)
    data = load_hub("fake/sentiment", ["text"], "label")
    assert data.label_names == ["neg", "pos"] and data.train_labels.tolist() == [0, 1, 1]
    assert data.test_texts == ["awful"] and data.name == "fake/sentiment"
    with pytest.raises(UserError, match="no split 'validation'.*train, test"):
        load_hub("fake/sentiment", ["text"], "label", test_split="validation")
    with pytest.raises(UserError, match="unlabeled"):
        load_hub("fake/sentiment", ["text"], "label", test_split="unlabeled")
    with pytest.raises(UserError, match="'sentence' not in"):
        load_hub("fake/sentiment", ["sentence"], "label")
    split = load_hub("fake/sentiment", ["text"], "label", test_split=None, test_fraction=0.34)
    assert len(split.train_texts) == 2 and len(split.test_texts) == 1


def test_hub_plain_labels(monkeypatch):
    import datasets

    dsd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"a": ["x", "y"], "b": ["1", "2"], "y": ["world", "sport"]}),
        "test": datasets.Dataset.from_dict({"a": ["z"], "b": ["3"], "y": ["sport"]}),
    })
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: dsd)
    data = load_hub("fake/news", ["a", "b"], "y", config_name="default")
    assert data.label_names == ["sport", "world"] and data.train_texts == ["x 1", "y 2"]
    assert data.name == "fake/news/default"


def test_hub_load_failure_is_user_error(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'https://huggingface.co'\n(offline)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(UserError) as info:
        load_hub("glue", ["sentence"], "label", config_name="sst2")
    message = str(info.value)
    assert message.startswith("could not load Hugging Face dataset 'glue/sst2' (ConnectionError")
    assert "--train-file" in message and "\n" not in message


# ---------------------------------------------------------------- real data in shared/data


def test_real_sst2():
    folder = _shared("sst2")
    data = load_local(str(folder / "train.tsv"), str(folder / "test-labeled.tsv"), ["sentence"], "label")
    assert data.name == "sst2"
    assert len(data.train_texts) == 1000 and len(data.test_texts) == 1821
    assert data.label_names == ["0", "1"]
    assert set(np.unique(data.train_labels)) == {0, 1}
    assert data.train_texts[0].startswith("hide new secretions from the parental units")


def test_real_agnews_split():
    path = _shared("agnews", "test.csv")
    data = load_local(str(path), None, ["title", "description"], "label", test_fraction=0.2, seed=42)
    assert len(data.train_texts) + len(data.test_texts) == 7600
    assert len(data.test_texts) == 1520
    assert data.label_names == ["1", "2", "3", "4"]
    assert np.bincount(np.concatenate([data.train_labels, data.test_labels])).tolist() == [1900] * 4
    assert set(np.unique(data.test_labels)) == {0, 1, 2, 3}
    joined = [t for t in data.train_texts + data.test_texts if t.startswith("Fears for T N pension after talks ")]
    assert joined and joined[0].endswith("stricken parent firm Federal Mogul.")
    again = load_local(str(path), None, ["title", "description"], "label", test_fraction=0.2, seed=42)
    assert again.fingerprint == data.fingerprint


def test_real_multidomain_books_quoted_newlines():
    path = _shared("multidomain_sentiment", "books", "train.tsv")
    data = load_local(str(path), None, ["sentence"], "label")
    assert data.name == "books"
    assert len(data.train_texts) + len(data.test_texts) == 1700
    assert data.label_names == ["0", "1"]
    texts = data.train_texts + data.test_texts
    assert sum("\n" in t for t in texts) > 1000  # review title and body are separated by a newline
    first = next(t for t in texts if t.startswith("Horrible book, horrible.\n"))
    assert first.endswith("THis book wasted my life")
