"""Partition export of tagging, QA and seq2seq data keeps each family's own fields (shards and FedNLP's data.h5)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fednlp_bench.partition import make_partition
from fednlp_bench.partition.export import export_partition
from fednlp_bench.partition.fednlp_h5 import read_data_h5
from fednlp_bench.partition.model import Partition
from fednlp_bench.tasks.registry import load_task_data, subsample

SHARED = Path(os.environ.get("FEDNLP_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SOURCES = {"wnut17": SHARED / "wnut17", "squad": SHARED / "squad", "agnews_headline": SHARED / "agnews"}


def small(task: str):
    folder = SOURCES[task]
    if not folder.is_dir():
        pytest.skip(f"real data not found at {folder} (set FEDNLP_SHARED_DATA)")
    return subsample(load_task_data(task, str(folder), seed=0), 40, 12, 0)


def label_partition(data) -> Partition:
    train = make_partition("label", data.train_labels, 3, 0, 0.5, None)
    test = make_partition("label", data.test_labels, 3, 0, 0.5, None)
    return Partition("label", train, test, {"alpha": 0.5, "seed": 0})


def jsonl_rows(folder: Path, split: str) -> list[dict]:
    return [json.loads(line) for f in sorted((folder / split).glob("*.jsonl")) for line in f.read_text().splitlines()]


def test_tagging_shards_keep_words_and_tags(tmp_path):
    data = small("wnut17")
    out = export_partition(label_partition(data), tmp_path / "jsonl", "shards-jsonl", data)
    rows = jsonl_rows(out, "train")
    assert len(rows) == len(data.train_tokens)
    for r in rows:
        i = r["example_id"]
        assert r["tokens"] == data.train_tokens[i] and r["tags"] == data.train_tags[i]
        assert len(r["tokens"]) == len(r["tags"])
        assert r["label_name"] == data.label_names[int(data.train_labels[i])]
    pq_out = export_partition(label_partition(data), tmp_path / "pq", "shards-parquet", data)
    table = pq.read_table(next((pq_out / "test").glob("*.parquet")))
    assert {"tokens", "tags", "text", "label"} <= set(table.column_names)


def test_tagging_data_h5_has_word_and_tag_arrays(tmp_path):
    data = small("wnut17")
    out = export_partition(label_partition(data), tmp_path / "h5", "fednlp-h5", data)
    h5 = read_data_h5(out / "data.h5")
    assert h5["task_type"] == "sequence_tagging"
    assert h5["X"][0] == data.train_tokens[0] and h5["Y"][0] == data.train_tags[0]
    n = len(data.train_tokens)
    assert h5["X"][n] == data.test_tokens[0]
    assert set(h5["label_vocab"]) == set(data.tag_names)


def test_qa_shards_and_data_h5_keep_questions_contexts_and_character_spans(tmp_path):
    data = small("squad")
    out = export_partition(label_partition(data), tmp_path / "jsonl", "shards-jsonl", data)
    rows = {r["id"]: r for r in jsonl_rows(out, "test")}
    ex = data.examples("test")[0]
    r = rows[ex.id]
    assert r["question"] == ex.question and r["context"] == ex.context
    assert [(a["text"], a["answer_start"]) for a in r["answers"]] == [(t, s) for t, s in ex.answers]
    h5 = read_data_h5(export_partition(label_partition(data), tmp_path / "h5", "fednlp-h5", data) / "data.h5")
    assert h5["task_type"] == "span_extraction"
    first = data.examples("train")[0]
    start, end = h5["Y"][0]
    assert h5["context_X"][0][start:end] == first.answers[0][0]
    assert h5["question_ids"][0] == first.id and h5["question_X"][0] == first.question


def test_seq2seq_shards_and_data_h5_keep_source_and_target(tmp_path):
    data = small("agnews_headline")
    out = export_partition(label_partition(data), tmp_path / "pq", "shards-parquet", data)
    table = pa.concat_tables([pq.read_table(f) for f in sorted((out / "train").glob("*.parquet"))])
    ids = np.asarray(table.column("example_id").to_pylist())
    assert table.column("target").to_pylist() == [data.train_targets[i] for i in ids]
    assert table.column("source").to_pylist() == [data.train_texts[i] for i in ids]
    h5 = read_data_h5(export_partition(label_partition(data), tmp_path / "h5", "fednlp-h5", data) / "data.h5")
    assert h5["task_type"] == "seq2seq"
    assert h5["X"][0] == data.train_texts[0] and h5["Y"][0] == data.train_targets[0]
