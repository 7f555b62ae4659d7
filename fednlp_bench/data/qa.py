"""Extractive question answering data: SQuAD v1.1 / 2.0 JSON files and Hugging Face QA datasets.

One example = one question about one context with all its gold answers (kept for max-over-gold metrics;
training uses the first). SQuAD 2.0 unanswerable questions are dropped (counted in summary()). An answer whose
text is not at its stated answer_start makes its example skipped: the problem, naming the question id, is kept in
`QAData.problems` and shown with warnings.warn, and the rest of the data still loads.

Skew label per example: the domain (MRQA-style `subset` column) when the data has one, else the question's
wh-word class (see `wh_class`).
"""
from __future__ import annotations

import hashlib
import json
import re
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import DataWarning, UserError
from .local import read_text_file
from .splits import seeded_split

WH_CLASSES = ("what", "who", "when", "where", "which", "why", "how", "other")
# whom / whose ask for a person like "who": they fall in the "who" class.
_WH_WORDS = {"what": "what", "who": "who", "whom": "who", "whose": "who", "when": "when", "where": "where",
             "which": "which", "why": "why", "how": "how"}
_WORD = re.compile(r"[a-z]+")
_SHOW = 5  # problem ids shown in one warning line


def wh_class(question: str) -> str:
    """The class of the first wh-word of the lower-cased question (what, who, when, where, which, why, how),
    'other' when it has none. Whole words only ('whatever' or 'somehow' do not count); whom/whose -> 'who'."""
    for word in _WORD.findall(question.lower()):
        if word in _WH_WORDS:
            return _WH_WORDS[word]
    return "other"


@dataclass
class QAExample:
    """One answerable question: answers as (text, answer_start) pairs, the first one used for training."""

    id: str
    question: str
    context: str
    answers: list[tuple[str, int]]
    domain: str | None = None


@dataclass
class QAData:
    """Train and test splits of an extractive QA task (duck-typed like TextClassificationData)."""

    name: str
    train_examples: list[QAExample]
    test_examples: list[QAExample]
    label_names: list[str]
    train_labels: np.ndarray  # int64 skew label per example: domain id, or wh-class id
    test_labels: np.ndarray
    fingerprint: str
    train_groups: list[str] | None = None  # domain per example when the data has domains
    test_groups: list[str] | None = None
    dropped_unanswerable: int = 0
    problems: list[str] = field(default_factory=list)  # skipped examples, one line each, naming the question id

    @classmethod
    def create(
        cls,
        name: str,
        train: Sequence[QAExample],
        test: Sequence[QAExample],
        dropped_unanswerable: int = 0,
        problems: Sequence[str] = (),
        label_names: Sequence[str] | None = None,
    ) -> "QAData":
        """Build the dataset: skew labels (domain when every example has one, else wh-class) and fingerprint."""
        train, test = list(train), list(test)
        with_domain = [ex.domain is not None for ex in train + test]
        has_domain = bool(with_domain) and all(with_domain)
        if has_domain:
            names = list(label_names) if label_names is not None else sorted({ex.domain for ex in train + test})
            keys = lambda exs: [ex.domain for ex in exs]  # noqa: E731
        else:
            names = list(label_names) if label_names is not None else list(WH_CLASSES)
            keys = lambda exs: [wh_class(ex.question) for ex in exs]  # noqa: E731
        index = {n: i for i, n in enumerate(names)}
        train_labels = np.array([index[k] for k in keys(train)], dtype=np.int64)
        test_labels = np.array([index[k] for k in keys(test)], dtype=np.int64)
        out = cls(
            name=name,
            train_examples=train,
            test_examples=test,
            label_names=names,
            train_labels=train_labels,
            test_labels=test_labels,
            fingerprint="",
            train_groups=[ex.domain for ex in train] if has_domain else None,
            test_groups=[ex.domain for ex in test] if has_domain else None,
            dropped_unanswerable=dropped_unanswerable,
            problems=list(problems),
        )
        out.fingerprint = qa_fingerprint(out)
        return out

    @property
    def train_texts(self) -> list[str]:
        """Question and context of every train example (tokenizer training, feature skew, export)."""
        return [f"{ex.question}\n{ex.context}" for ex in self.train_examples]

    @property
    def test_texts(self) -> list[str]:
        return [f"{ex.question}\n{ex.context}" for ex in self.test_examples]

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def examples(self, split: str) -> list[QAExample]:
        return self.train_examples if split == "train" else self.test_examples

    FEDNLP_TASK_TYPE = "span_extraction"

    def export_fields(self, split: str, ids: Sequence[int]) -> dict[str, list]:
        """Full-fidelity columns of some examples for partition export: id, question, context, every gold answer."""
        ex = [self.examples(split)[int(i)] for i in ids]
        return {"id": [e.id for e in ex], "question": [e.question for e in ex], "context": [e.context for e in ex],
                "answers": [[{"text": t, "answer_start": int(s)} for t, s in e.answers] for e in ex]}

    def subset(self, train_idx: np.ndarray, test_idx: np.ndarray) -> "QAData":
        """The examples at the given ids of each split (same label names); the fingerprint follows the subset."""
        tr = [self.train_examples[int(i)] for i in np.asarray(train_idx, dtype=np.int64)]
        te = [self.test_examples[int(i)] for i in np.asarray(test_idx, dtype=np.int64)]
        return QAData.create(self.name, tr, te, self.dropped_unanswerable, self.problems, self.label_names)

    def summary(self) -> str:
        """One line: name, sizes, contexts, skew labels, dropped/skipped counts and a short fingerprint."""
        contexts = len({ex.context for ex in self.train_examples + self.test_examples})
        kind = "domains" if self.train_groups is not None else "wh-classes"
        return (
            f"{self.name}: {len(self.train_examples)} train / {len(self.test_examples)} test questions "
            f"({contexts} contexts), {self.num_labels} {kind}, {self.dropped_unanswerable} unanswerable dropped, "
            f"{len(self.problems)} skipped for bad answer offsets, fingerprint {self.fingerprint[:12]}"
        )


def qa_fingerprint(data: QAData) -> str:
    """SHA-256 hex of every field of both splits (ids, questions, contexts, answers, domains, labels, label names).

    Every item is length-prefixed, so no two different datasets share a byte stream."""
    h = hashlib.sha256()

    def put(text: str) -> None:
        b = text.encode("utf-8")
        h.update(struct.pack("<Q", len(b)))
        h.update(b)

    for exs, labels in ((data.train_examples, data.train_labels), (data.test_examples, data.test_labels)):
        put(str(len(exs)))
        for ex in exs:
            put(ex.id)
            put(ex.question)
            put(ex.context)
            put("" if ex.domain is None else "D" + ex.domain)
            put(str(len(ex.answers)))
            for text, start in ex.answers:
                put(text)
                put(str(start))
        h.update(np.asarray(labels, dtype="<i8").tobytes())
    put(str(len(data.label_names)))
    for n in data.label_names:
        put(n)
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------------- conversion


class _Collector:
    """Checks raw records and turns them into QAExamples, counting unanswerable and bad-offset questions."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.examples: list[QAExample] = []
        self.dropped = 0
        self.problems: list[str] = []
        self.seen: set[str] = set()

    def add(self, qid: Any, question: Any, context: Any, answers: list[tuple[Any, Any]], impossible: bool,
            domain: str | None) -> None:
        qid = str(qid)
        if impossible or not answers:
            self.dropped += 1
            return
        for text, start in answers:
            if not isinstance(text, str) or isinstance(start, bool) or not isinstance(start, (int, np.integer)):
                self.problems.append(f"{self.where}: question {qid}: answer {text!r} has no integer answer_start")
                return
            if int(start) < 0 or context[int(start) : int(start) + len(text)] != text:
                found = context[max(int(start), 0) : max(int(start), 0) + len(text)]
                self.problems.append(f"{self.where}: question {qid}: answer {text!r} is not at answer_start "
                                     f"{int(start)} (the context has {found!r} there)")
                return
        if qid in self.seen:
            self.problems.append(f"{self.where}: question {qid}: duplicate question id (kept the first)")
            return
        self.seen.add(qid)
        self.examples.append(QAExample(qid, question, context, [(t, int(s)) for t, s in answers], domain))

    def warn(self) -> None:
        if self.problems:
            shown = "; ".join(self.problems[:_SHOW]) + (f"; ... ({len(self.problems) - _SHOW} more)"
                                                         if len(self.problems) > _SHOW else "")
            warnings.warn(f"skipped {len(self.problems)} question(s): {shown}", DataWarning, stacklevel=3)


def _require(obj: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise UserError(f"{where} has no '{key}' key", "use the SQuAD layout: data -> paragraphs -> context, "
                        "qas -> id, question, answers[text, answer_start]")
    value = obj[key]
    if not isinstance(value, kind):
        raise UserError(f"'{key}' in {where} is a {type(value).__name__}, not a {kind.__name__}",
                        "use the SQuAD layout: data -> paragraphs -> context, qas -> id, question, answers")
    return value


def squad_examples(obj: Any, where: str, domain: str | None = None) -> _Collector:
    """Examples of a parsed SQuAD v1.1/2.0 object ({"data": [{"paragraphs": [...]}, ...]})."""
    col = _Collector(where)
    articles = _require(obj, "data", list, where)
    for a, article in enumerate(articles):
        paragraphs = _require(article, "paragraphs", list, f"{where} data[{a}]")
        for p, para in enumerate(paragraphs):
            pw = f"{where} data[{a}].paragraphs[{p}]"
            context = _require(para, "context", str, pw)
            for q, qa in enumerate(_require(para, "qas", list, pw)):
                qw = f"{pw}.qas[{q}]"
                if not isinstance(qa, dict) or "id" not in qa:
                    raise UserError(f"{qw} has no 'id' key", "give every question a unique 'id'")
                qid = str(qa["id"])
                question = _require(qa, "question", str, f"{where} question {qid}")
                impossible = bool(qa.get("is_impossible", False))
                raw = qa.get("answers", []) if impossible else _require(qa, "answers", list, f"{where} question {qid}")
                answers = []
                for ans in raw or []:
                    if not isinstance(ans, dict) or "text" not in ans or "answer_start" not in ans:
                        raise UserError(f"{where} question {qid} has an answer without 'text' and 'answer_start'",
                                        "give every answer as {\"text\": ..., \"answer_start\": <char offset>}")
                    answers.append((ans["text"], ans["answer_start"]))
                col.add(qid, question, context, answers, impossible, domain)
    return col


def _mrqa_answers(rec: dict, context: str) -> list[tuple[str, int]]:
    """MRQA records (mrqa-workshop/mrqa): detected_answers{text, char_spans[{start, end}]} with INCLUSIVE ends;
    each detected answer becomes (the context's characters at its first span, start)."""
    det = rec["detected_answers"]
    if isinstance(det, dict):  # datasets gives a sequence of structs as a dict of lists
        spans = det.get("char_spans") or []
    else:
        spans = [d.get("char_spans") for d in det or []]
    out = []
    for span in spans:
        starts, ends = (span.get("start"), span.get("end")) if isinstance(span, dict) else ([], [])
        starts = starts if isinstance(starts, list) else [starts]
        ends = ends if isinstance(ends, list) else [ends]
        if starts and ends and starts[0] is not None and ends[0] is not None:
            out.append((context[int(starts[0]) : int(ends[0]) + 1], int(starts[0])))
    return out


def records_examples(records: Iterable[dict], where: str, domain_column: str | None = "subset") -> _Collector:
    """Examples of flat Hugging Face style records: id, question, context, answers{text: [...], answer_start: [...]}
    and, when present, the domain column (MRQA's `subset`). MRQA records (qid, detected_answers with char_spans)
    are read too."""
    col = _Collector(where)
    for i, rec in enumerate(records):
        rw = f"{where} record {i + 1}"
        mrqa = isinstance(rec, dict) and "qid" in rec and "detected_answers" in rec and "id" not in rec
        for key in ("qid", "question", "context", "detected_answers") if mrqa else ("id", "question", "context",
                                                                                       "answers"):
            if not isinstance(rec, dict) or key not in rec:
                have = ", ".join(rec) if isinstance(rec, dict) else type(rec).__name__
                raise UserError(f"{rw} has no '{key}' (it has: {have})",
                                "give every record id, question, context, answers{text, answer_start}")
        qid, context = rec["qid" if mrqa else "id"], str(rec["context"])
        if mrqa:
            answers = _mrqa_answers(rec, context)
        else:
            ans = rec["answers"]
            if not isinstance(ans, dict) or "text" not in ans or "answer_start" not in ans:
                raise UserError(f"{where} question {qid}: 'answers' is not {{text: [...], answer_start: [...]}}",
                                "use the Hugging Face SQuAD answers layout")
            texts, starts = list(ans["text"] or []), list(ans["answer_start"] or [])
            if len(texts) != len(starts):
                raise UserError(f"{where} question {qid}: {len(texts)} answer texts but {len(starts)} answer_start",
                                "give one answer_start per answer text")
            answers = list(zip(texts, starts))
        domain = rec.get(domain_column) if domain_column else None
        col.add(qid, str(rec["question"]), context, answers, False, None if domain is None else str(domain))
    return col


# ---------------------------------------------------------------------------------------------------------- local


def read_qa_file(path: str, option: str = "--train-file") -> _Collector:
    """Read one local QA file: SQuAD JSON (.json), or Hugging Face style records (.jsonl, or a JSON list)."""
    p = Path(path)
    text = read_text_file(path, option, "a SQuAD .json file")
    if not text.strip():
        raise UserError(f"data file is empty: {path}", f"pass a SQuAD JSON file to {option}")
    if p.suffix.lower() == ".jsonl":
        records = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise UserError(f"could not parse {path} line {lineno} ({e.msg})",
                                    "write one JSON object per line") from None
        return records_examples(records, str(path))
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"could not parse {path} ({e.msg} at line {e.lineno} column {e.colno})",
                        "check that the file is valid SQuAD JSON (data -> paragraphs -> context, qas)") from None
    if isinstance(obj, list):
        return records_examples(obj, str(path))
    return squad_examples(obj, str(path))


def _split_by_question(examples: list[QAExample], test_fraction: float, seed: int, where: str):
    train_idx, test_idx = seeded_split(len(examples), test_fraction, seed, where, "answerable question")
    return [examples[i] for i in train_idx], [examples[i] for i in test_idx]


def _finish(name: str, parts: list[_Collector], train: list[QAExample], test: list[QAExample], where: str) -> QAData:
    for part in parts:
        part.warn()
    if not train or not test:
        which = "train" if not train else "test"
        dropped = sum(p.dropped for p in parts)
        skipped = sum(len(p.problems) for p in parts)
        raise UserError(f"no answerable question left in the {which} split of {where} ({dropped} unanswerable "
                        f"dropped, {skipped} skipped for bad answer offsets)",
                        "pass SQuAD data with answers whose text is found at answer_start")
    return QAData.create(name, train, test, sum(p.dropped for p in parts), [m for p in parts for m in p.problems])


def load_qa_local(
    train_path: str,
    test_path: str | None,
    columns: list[str] | None = None,
    target_column: str | None = None,
    *,
    test_fraction: float = 0.2,
    seed: int = 42,
    name: str = "extractive_qa",
    **options: Any,
) -> QAData:
    """Read SQuAD v1.1 / 2.0 JSON files (or .jsonl / JSON-list files of Hugging Face style records).

    `columns` and `target_column` are not used (the SQuAD layout fixes them). Unanswerable SQuAD 2.0 questions
    are dropped and counted; an example whose answer text is not at its answer_start is skipped, named in a
    warning and in `QAData.problems`. Without `test_path` the answerable questions are split at random (seeded,
    `test_fraction` of them to test) BY QUESTION: several questions share a context, so a context may appear in
    both train and test (as in SQuAD practice for a split of one file; give a test file for disjoint articles).
    """
    del columns, target_column, options
    train_col = read_qa_file(train_path, "--train-file")
    if test_path is not None:
        test_col = read_qa_file(test_path, "--test-file")
        return _finish(name, [train_col, test_col], train_col.examples, test_col.examples, test_path)
    if not train_col.examples:
        return _finish(name, [train_col], [], [], train_path)
    train, test = _split_by_question(train_col.examples, test_fraction, seed, train_path)
    return _finish(name, [train_col], train, test, train_path)


# ------------------------------------------------------------------------------------------------------------ hub


def qa_from_hf(dsd: Any, train_split: str, test_split: str | None, name: str, *, test_fraction: float = 0.2,
               seed: int = 42, domain_column: str = "subset") -> QAData:
    """Convert a loaded datasets.DatasetDict (columns id, question, context, answers{text, answer_start}, and an
    optional domain column such as MRQA's `subset`) into QAData. With test_split None, train is split by question."""
    available = list(dsd.keys()) if hasattr(dsd, "keys") else []
    for split in [train_split] + ([test_split] if test_split is not None else []):
        if split not in available:
            raise UserError(f"Hugging Face dataset '{name}' has no split '{split}' (it has: "
                            f"{', '.join(available) or 'none'})",
                            "pass an existing split name for the train/test split")
    cols = []
    for split in [train_split] + ([test_split] if test_split is not None else []):
        ds = dsd[split]
        mrqa = {"qid", "detected_answers"} <= set(ds.column_names) and "id" not in ds.column_names
        needed = ("qid", "question", "context", "detected_answers") if mrqa else ("id", "question", "context", "answers")
        missing = [c for c in needed if c not in ds.column_names]
        if missing:
            raise UserError(f"split '{split}' of Hugging Face dataset '{name}' lacks column(s) {', '.join(missing)} "
                            f"(it has: {', '.join(ds.column_names)})",
                            "use an extractive QA dataset with id, question, context, answers{text, answer_start}")
        cols.append(records_examples(iter(ds), f"{name} [{split}]",
                                     domain_column if domain_column in ds.column_names else None))
    if test_split is not None:
        return _finish(name, cols, cols[0].examples, cols[1].examples, name)
    if not cols[0].examples:
        return _finish(name, cols, [], [], name)
    train, test = _split_by_question(cols[0].examples, test_fraction, seed, name)
    return _finish(name, cols, train, test, name)


def load_qa_hub(
    hub_name: str,
    config_name: str | None = None,
    columns: list[str] | None = None,
    target_column: str | None = None,
    *,
    train_split: str = "train",
    test_split: str | None = "validation",
    name: str | None = None,
    cache_dir: str | None = None,
    test_fraction: float = 0.2,
    seed: int = 42,
    **options: Any,
) -> QAData:
    """Load a Hugging Face extractive QA dataset (e.g. 'squad', 'rajpurkar/squad_v2', 'mrqa-workshop/mrqa')
    through datasets.load_dataset (cache or network) and convert it with `qa_from_hf`."""
    del columns, target_column, options
    shown = hub_name if config_name is None else f"{hub_name}/{config_name}"
    try:
        import datasets

        dsd = datasets.load_dataset(hub_name, config_name, cache_dir=cache_dir)
    except Exception as e:  # no network, no cache, unknown name ...
        reason = " ".join(f"{type(e).__name__}: {e}".split())[:200]
        raise UserError(f"could not load Hugging Face dataset '{shown}' ({reason})",
                        "connect to the network once to fill the cache, or pass a SQuAD JSON file with --train-file"
                        ) from None
    return qa_from_hf(dsd, train_split, test_split, name or shown, test_fraction=test_fraction, seed=seed)


# The family's loaders, as the task registry looks them up (one signature for all families).
LOCAL_LOADER = load_qa_local
HUB_LOADER = load_qa_hub
