"""Export/import of client partitions: every format round-trips, FedNLP's h5 layout, errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from fednlp_bench.data import demo_dataset
from fednlp_bench.errors import UserError
from fednlp_bench.partition import export as export_mod
from fednlp_bench.partition import make_partition
from fednlp_bench.partition.export import FORMATS, export_partition
from fednlp_bench.partition.fednlp_h5 import method_params, same_method
from fednlp_bench.partition.importer import import_partition, read_fednlp_data_h5
from fednlp_bench.partition.manifest import read_manifest, sha256_file, write_manifest
from fednlp_bench.partition.model import Partition

CLIENTS = 6


@pytest.fixture(scope="module")
def data():
    return demo_dataset(num_train=300, num_test=100)


@pytest.fixture(scope="module")
def label_partition(data) -> Partition:
    train = make_partition("label", data.train_labels, CLIENTS, 42, alpha=0.5)
    test = make_partition("label", data.test_labels, CLIENTS, 42, alpha=0.5)
    return Partition("label", train, test, {"alpha": 0.5, "seed": 42})


@pytest.fixture(scope="module")
def quantity_partition() -> Partition:
    rng = np.random.default_rng(0)
    train = make_partition("quantity", rng.integers(0, 4, 300), CLIENTS, 7, beta=5.0)
    test = make_partition("quantity", rng.integers(0, 4, 100), CLIENTS, 7, beta=5.0)
    return Partition("quantity", train, test, {"beta": 5.0, "seed": 7})


def assert_same(a: Partition, b: Partition) -> None:
    assert a.num_clients == b.num_clients
    for split in ("train", "test"):
        for x, y in zip(getattr(a, split), getattr(b, split)):
            assert x.dtype == np.int64
            np.testing.assert_array_equal(np.sort(x), np.sort(y))
    assert a.digest == b.digest


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_every_format(tmp_path, data, label_partition, fmt):
    out = export_partition(label_partition, tmp_path / "export", fmt, data=data)
    back = import_partition(out)
    assert_same(back, label_partition)
    assert back.method == "label" and back.params == {"alpha": 0.5, "seed": 42}
    assert back.name == label_partition.name
    manifest = read_manifest(out)
    assert manifest["digest"] == label_partition.digest
    assert manifest["format"] == fmt
    assert manifest["recipe"]["clients"] == CLIENTS and manifest["recipe"]["alpha"] == 0.5
    assert manifest["dataset"]["fingerprint"] == data.fingerprint
    assert manifest["dataset"]["num_train"] == 300 and manifest["dataset"]["num_test"] == 100
    for rel, sha in manifest["files"].items():
        assert sha256_file(out / rel) == sha
    # no temporary siblings are left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


@pytest.mark.parametrize("fmt", ["index-json", "index-parquet", "fednlp-h5"])
def test_round_trip_without_data(tmp_path, quantity_partition, fmt):
    out = export_partition(quantity_partition, tmp_path / "q", fmt)
    back = import_partition(out)
    assert_same(back, quantity_partition)
    assert back.method == "quantity" and back.params == {"beta": 5.0, "seed": 7}


def test_partition_json_layout(tmp_path, label_partition):
    out = export_partition(label_partition, tmp_path / "j", "index-json")
    doc = json.loads((out / "partition.json").read_text())
    assert sorted(doc) == ["test", "train"]
    assert list(doc["train"]) == [str(c) for c in range(CLIENTS)]
    assert doc["test"]["2"] == label_partition.test[2].tolist()


@pytest.mark.parametrize("fmt,builder", [("shards-parquet", "parquet"), ("shards-jsonl", "json")])
def test_shards_load_with_datasets(tmp_path, data, label_partition, fmt, builder):
    datasets = pytest.importorskip("datasets")
    out = export_partition(label_partition, tmp_path / "s", fmt, data=data)
    ext = "parquet" if builder == "parquet" else "jsonl"
    for split, parts, texts, labels in (
        ("train", label_partition.train, data.train_texts, data.train_labels),
        ("test", label_partition.test, data.test_texts, data.test_labels),
    ):
        for c in (0, CLIENTS - 1):
            ds = datasets.load_dataset(
                builder,
                data_files=str(out / split / f"client_{c:05d}.{ext}"),
                split="train",
                cache_dir=str(tmp_path / "hf-cache"),
            )
            ids = parts[c]
            assert len(ds) == len(ids)
            assert ds["example_id"] == ids.tolist()
            assert ds["text"] == [texts[i] for i in ids]
            assert ds["label"] == [int(labels[i]) for i in ids]
            assert ds["label_name"] == [data.label_names[int(labels[i])] for i in ids]


# ---------------------------------------------------------------- FedNLP layout


def test_fednlp_h5_layout_with_plain_h5py(tmp_path, data, label_partition):
    out = export_partition(label_partition, tmp_path / "h5", "fednlp-h5", data=data)
    name = label_partition.name
    assert name == f"niid_label_clients={CLIENTS}_alpha=0.5"
    with h5py.File(out / "partition_index.h5", "r") as f:
        assert list(f.keys()) == [name]
        assert int(f[name]["n_clients"][()]) == CLIENTS
        assert float(f[name]["alpha"][()]) == 0.5
        assert "beta" not in f[name]
        for c in range(CLIENTS):
            part = f[name]["partition_data"][str(c)]
            np.testing.assert_array_equal(part["train"][()], label_partition.train[c])
            # test ids live in FedNLP's global index space: offset by num_train
            np.testing.assert_array_equal(part["test"][()], label_partition.test[c] + 300)
            assert part["train"].dtype == np.int64 and part["test"].dtype == np.int64
    with h5py.File(out / "data.h5", "r") as f:
        attrs = json.loads(f.attrs["attributes"])
        assert set(attrs) == {"index_list", "train_index_list", "test_index_list",
                              "label_vocab", "num_labels", "task_type"}
        assert attrs["task_type"] == "text_classification"
        assert attrs["num_labels"] == data.num_labels
        assert attrs["train_index_list"] == list(range(300))
        assert attrs["test_index_list"] == list(range(300, 400))
        assert attrs["label_vocab"] == {n: i for i, n in enumerate(data.label_names)}
        assert f["X"]["0"][()].decode() == data.train_texts[0]
        assert f["X"]["300"][()].decode() == data.test_texts[0]
        assert f["Y"]["301"][()].decode() == data.label_names[int(data.test_labels[1])]
    back = read_fednlp_data_h5(out / "data.h5")
    assert back["X"] == data.train_texts + data.test_texts
    labels = np.concatenate([data.train_labels, data.test_labels])
    assert back["Y"] == [data.label_names[int(i)] for i in labels]
    # the global ids of client 0's test examples point at its texts in data.h5
    with h5py.File(out / "partition_index.h5", "r") as f:
        global_ids = f[name]["partition_data"]["0"]["test"][()]
    assert [back["X"][g] for g in global_ids] == [data.test_texts[i] for i in label_partition.test[0]]


def test_fednlp_h5_quantity_has_beta(tmp_path, quantity_partition):
    out = export_partition(quantity_partition, tmp_path / "q", "fednlp-h5")
    with h5py.File(out / "partition_index.h5", "r") as f:
        group = f[f"niid_quantity_clients={CLIENTS}_beta=5.0"]
        assert float(group["beta"][()]) == 5.0 and "alpha" not in group
    assert not (out / "data.h5").exists()


def _write_original(path: Path, name: str, clients: int = 100, num_train: int = 1000) -> tuple[list, list]:
    """An 'original FedNLP' partition_index.h5: no extras, test ids offset by num_train."""
    rng = np.random.default_rng(3)
    train = np.array_split(rng.permutation(num_train), clients)
    test = np.array_split(rng.permutation(200), clients)
    with h5py.File(path, "w") as f:
        g = f.create_group(name)
        g["n_clients"] = clients
        g["alpha"] = 1.0
        for c in range(clients):
            g[f"partition_data/{c}/train"] = train[c].astype(np.int64)
            g[f"partition_data/{c}/test"] = test[c].astype(np.int64) + num_train
    return train, test


@pytest.mark.parametrize(
    "stored,asked",
    [("niid_label_clients=100.0_alpha=1", "niid_label_clients=100_alpha=1.0"),
     ("niid_label_clients=100_alpha=1.0", "niid_label_clients=100.0_alpha=1")],
)
def test_import_original_fednlp_name_spelling(tmp_path, stored, asked):
    path = tmp_path / "partition_index.h5"
    train, test = _write_original(path, stored)
    for num_train in (1000, None):  # given, or inferred from the train ids
        p = import_partition(path, method=asked, num_train=num_train)
        assert p.method == "label" and p.params == {"alpha": 1.0}
        assert p.name == "niid_label_clients=100_alpha=1.0"
        assert p.num_clients == 100
        for c in (0, 57, 99):
            np.testing.assert_array_equal(p.train[c], train[c])
            np.testing.assert_array_equal(p.test[c], test[c])
    assert import_partition(tmp_path).digest == p.digest  # folder holding the file, single group


def test_method_name_helpers():
    assert same_method("niid_label_clients=100_alpha=1", "niid_label_clients=100.0_alpha=1.0")
    assert not same_method("niid_label_clients=100_alpha=1", "niid_label_clients=100_alpha=0.1")
    assert not same_method("niid_label_clients=100_alpha=1", "niid_cluster_clients=100_alpha=1")
    assert method_params("niid_quantity_clients=10_beta=5") == ("quantity", {"beta": 5.0})
    assert method_params("niid_cluster_clients=10_alpha=0.1") == ("cluster", {"alpha": 0.1})
    assert method_params("uniform") == ("uniform", {})


# ---------------------------------------------------------------- errors


def test_export_refuses_non_empty_folder(tmp_path, label_partition):
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="exists and is not empty.*--overwrite"):
        export_partition(label_partition, target, "index-json")
    assert sorted(p.name for p in target.iterdir()) == ["keep.txt"]
    assert (target / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    export_partition(label_partition, target, "index-json", overwrite=True)
    assert sorted(p.name for p in target.iterdir()) == ["manifest.json", "partition.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_failed_export_leaves_nothing(tmp_path, label_partition, monkeypatch):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export_mod, "write_manifest", boom)
    with pytest.raises(RuntimeError):
        export_partition(label_partition, target, "index-parquet", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    with pytest.raises(RuntimeError):
        export_partition(label_partition, tmp_path / "new", "index-json")
    assert not (tmp_path / "new").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_shards_need_data(tmp_path, label_partition):
    for fmt in ("shards-parquet", "shards-jsonl"):
        with pytest.raises(UserError, match="shard export needs the dataset; pass --task"):
            export_partition(label_partition, tmp_path / fmt, fmt)
        assert not (tmp_path / fmt).exists()


def test_unknown_format_and_out_of_range_ids(tmp_path, data, label_partition):
    with pytest.raises(UserError, match="unknown export format"):
        export_partition(label_partition, tmp_path / "x", "csv")
    bad = Partition("label", [np.array([0, 999])], [np.array([0])], {"alpha": 1.0})
    with pytest.raises(UserError, match="train id 999 is out of range"):
        export_partition(bad, tmp_path / "x", "shards-parquet", data=data)
    assert not (tmp_path / "x").exists()


def test_corrupt_h5(tmp_path):
    path = tmp_path / "partition_index.h5"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(UserError, match=r"cannot read .* as HDF5 .*re-download or re-export"):
        import_partition(path)


def test_truncated_h5(tmp_path):
    full = tmp_path / "full.h5"
    _write_original(full, "niid_label_clients=100_alpha=1.0")
    raw = full.read_bytes()
    cut = tmp_path / "partition_index.h5"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(UserError, match=r"cannot read .* as HDF5"):
        import_partition(cut)


def test_missing_h5_key_is_named(tmp_path):
    path = tmp_path / "partition_index.h5"
    _write_original(path, "uniform", clients=4)
    with h5py.File(path, "a") as f:
        del f["uniform/partition_data/2/test"]
    with pytest.raises(UserError, match="partition_data/2/test"):
        import_partition(path)


def test_missing_method_lists_available(tmp_path):
    path = tmp_path / "partition_index.h5"
    _write_original(path, "niid_label_clients=100_alpha=1.0", clients=5)
    with h5py.File(path, "a") as f:
        f.copy(f["niid_label_clients=100_alpha=1.0"], "niid_label_clients=100_alpha=0.1")
    with pytest.raises(UserError, match=r"no partition method 'niid_label_clients=100_alpha=5.0'.*"
                                        r"niid_label_clients=100_alpha=0\.1, niid_label_clients=100_alpha=1\.0"):
        import_partition(path, method="niid_label_clients=100_alpha=5.0")
    with pytest.raises(UserError, match=r"holds 2 partition methods: .*alpha=0\.1.*alpha=1\.0"):
        import_partition(path)
    assert import_partition(path, method="niid_label_clients=100_alpha=0.1").params == {"alpha": 0.1}


def test_manifest_digest_mismatch(tmp_path, label_partition):
    out = export_partition(label_partition, tmp_path / "j", "index-json")
    doc = json.loads((out / "partition.json").read_text())
    doc["train"]["0"][0] = doc["train"]["1"][0]  # one id changed
    (out / "partition.json").write_text(json.dumps(doc))
    manifest = read_manifest(out)
    manifest["files"]["partition.json"] = sha256_file(out / "partition.json")
    write_manifest(out, manifest)
    with pytest.raises(UserError, match="manifest digest does not match its files"):
        import_partition(out)


@pytest.mark.parametrize("fmt,rel", [("index-parquet", "test.parquet"), ("fednlp-h5", "partition_index.h5")])
def test_file_sha_mismatch(tmp_path, label_partition, fmt, rel):
    out = export_partition(label_partition, tmp_path / "e", fmt)
    with open(out / rel, "ab") as f:
        f.write(b"\0")
    with pytest.raises(UserError, match=rf"file .*{rel} does not match its manifest \(sha256 differs\); re-export"):
        import_partition(out)
    os.remove(out / rel)
    with pytest.raises(UserError, match="missing"):
        import_partition(out)


def test_import_missing_path(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        import_partition(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no partition found"):
        import_partition(tmp_path / "empty")
