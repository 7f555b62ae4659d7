"""Extractive QA adapter: (question, context) windows with a document stride, AutoModelForQuestionAnswering,
n-best span decoding back to context characters, SQuAD exact match / F1 (fractions in [0, 1], primary: f1).

The FL core partitions EXAMPLES (questions); a long context gives an example several features (windows).
Training batches gather, per example, every window that contains the first gold answer plus at most one window
that does not (the first such window, labelled with the CLS position 0): long contexts cannot blow up a batch,
and the model still sees "no answer in this window". Evaluation uses every window of every example.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.qa import QAData
from ..errors import UserError
from .base import Task
from .models import build_model, load_tokenizer, resolve_model, tokenizer_hash
from .qa_metrics import decode_example, squad_scores

DEFAULT_MAX_LENGTH = 256  # covers most SQuAD paragraphs (about 150 word pieces) in one window
_CACHE_VERSION = "qa-features-v1"


@dataclass
class QAFeatures:
    """The windows of one split, ragged: window f is tokens[tok_offsets[f]:tok_offsets[f+1]].

    Windows are stored in example order, so example e owns windows ex_offsets[e]:ex_offsets[e+1].
    """

    ids: np.ndarray  # int32 token ids, all windows concatenated
    char_offsets: np.ndarray  # int32 (tokens, 2): [start, end) character offsets into the context; -1 off-context
    tok_offsets: np.ndarray  # int64, windows + 1
    context_start: np.ndarray  # int32 per window: position of the first context token (segment B starts here)
    example: np.ndarray  # int64 per window: its example id
    ex_offsets: np.ndarray  # int64, examples + 1
    start_positions: np.ndarray  # int64 per window: answer start token, 0 (CLS) when the window lacks the answer
    end_positions: np.ndarray
    train_windows: np.ndarray  # int64: the windows used for training, grouped per example
    train_offsets: np.ndarray  # int64, examples + 1

    FIELDS = ("ids", "char_offsets", "tok_offsets", "context_start", "example", "ex_offsets", "start_positions",
              "end_positions", "train_windows", "train_offsets")

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.tok_offsets)

    def windows_of(self, examples: np.ndarray, training: bool) -> np.ndarray:
        """Window ids of the given examples (the training selection, or all windows)."""
        flat, offsets = (self.train_windows, self.train_offsets) if training else (None, self.ex_offsets)
        starts, ends = offsets[examples], offsets[examples + 1]
        spans = [np.arange(s, e) for s, e in zip(starts, ends)]
        idx = np.concatenate(spans) if spans else np.zeros(0, np.int64)
        return flat[idx] if flat is not None else idx


def _answer_tokens(offsets: np.ndarray, ctx: np.ndarray, start_char: int, end_char: int) -> tuple[int, int]:
    """Start/end token of the character span [start_char, end_char) in one window, (0, 0) when not fully inside."""
    pos = np.flatnonzero(ctx)
    if pos.size == 0 or not (offsets[pos[0], 0] <= start_char and offsets[pos[-1], 1] >= end_char):
        return 0, 0
    s = pos[offsets[pos, 0] <= start_char][-1]
    after = pos[(pos >= s) & (offsets[pos, 1] >= end_char)]
    return int(s), int(after[0])


def tokenize_qa(tokenizer, questions: list[str], contexts: list[str], answers: list[tuple[str, int]],
                max_length: int, doc_stride: int, chunk: int = 1024) -> QAFeatures:
    """Tokenize (question, context) pairs into windows of max_length tokens overlapping by doc_stride tokens.

    Questions longer than the room left beside doc_stride + 1 context tokens are cut (rare; a hard limit of the
    windowing). `answers` gives each example's training answer (text, answer_start).
    """
    room = max_length - 3 - doc_stride - 1  # question tokens that still leave doc_stride + 1 context tokens
    if room < 1:
        raise UserError(f"doc_stride {doc_stride} leaves no room for the question in max_length {max_length}",
                        f"pass a doc_stride below {max(max_length - 5, 0)} or a larger max_length")
    q_enc = tokenizer([q.lstrip() for q in questions], add_special_tokens=False, return_offsets_mapping=True)
    questions = [q.lstrip() if len(o) <= room else q.lstrip()[: o[room - 1][1]]
                 for q, o in zip(questions, q_enc["offset_mapping"])]
    ids, offs, lens, cstart, example, starts, ends = [], [], [], [], [], [], []
    for base in range(0, len(questions), chunk):
        enc = tokenizer(questions[base : base + chunk], contexts[base : base + chunk], truncation="only_second",
                        max_length=max_length, stride=doc_stride, return_overflowing_tokens=True,
                        return_offsets_mapping=True, padding=False)
        for f, sample in enumerate(enc["overflow_to_sample_mapping"]):
            e = base + int(sample)
            seq = np.array([-1 if s is None else s for s in enc.sequence_ids(f)], dtype=np.int64)
            ctx = seq == 1
            o = np.asarray(enc["offset_mapping"][f], dtype=np.int64).reshape(-1, 2)
            o = np.where(ctx[:, None], o, -1)
            text, start = answers[e]
            s, t = _answer_tokens(o, ctx, start, start + len(text))
            ids.append(np.asarray(enc["input_ids"][f], dtype=np.int32))
            offs.append(o.astype(np.int32))
            lens.append(len(seq))
            first = np.flatnonzero(ctx)
            cstart.append(int(first[0]) if first.size else len(seq))
            example.append(e)
            starts.append(s)
            ends.append(t)
    example_arr = np.asarray(example, dtype=np.int64)
    starts_arr, ends_arr = np.asarray(starts, np.int64), np.asarray(ends, np.int64)
    n = len(questions)
    ex_offsets = np.concatenate([[0], np.cumsum(np.bincount(example_arr, minlength=n))]).astype(np.int64)
    train_windows, counts = [], []
    for e in range(n):
        w = np.arange(ex_offsets[e], ex_offsets[e + 1])
        has = starts_arr[w] > 0
        chosen = np.concatenate([w[has], w[~has][:1]])
        train_windows.append(np.sort(chosen))
        counts.append(len(chosen))
    return QAFeatures(
        ids=np.concatenate(ids) if ids else np.zeros(0, np.int32),
        char_offsets=np.concatenate(offs) if offs else np.zeros((0, 2), np.int32),
        tok_offsets=np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
        context_start=np.asarray(cstart, np.int32),
        example=example_arr,
        ex_offsets=ex_offsets,
        start_positions=starts_arr,
        end_positions=ends_arr,
        train_windows=np.concatenate(train_windows).astype(np.int64) if train_windows else np.zeros(0, np.int64),
        train_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
    )


def cached_tokenize_qa(tokenizer, data: QAData, split: str, max_length: int, doc_stride: int,
                       cache_dir: Path | None, tok_hash: str) -> tuple[QAFeatures, bool]:
    """tokenize_qa through an on-disk npz cache keyed by data fingerprint, split, tokenizer and window settings.

    `tok_hash` is tokenizer_hash() taken BEFORE any tokenization (calling a fast tokenizer with truncation
    settings changes its serialized form)."""
    key = hashlib.sha256(f"{_CACHE_VERSION}|{data.fingerprint}|{split}|{tok_hash}|{max_length}|"
                         f"{doc_stride}".encode()).hexdigest()[:24]
    path = cache_dir / f"qa-{key}.npz" if cache_dir else None
    if path is not None and path.exists():
        with np.load(path) as z:
            return QAFeatures(**{k: z[k] for k in QAFeatures.FIELDS}), True
    exs = data.examples(split)
    feats = tokenize_qa(tokenizer, [ex.question for ex in exs], [ex.context for ex in exs],
                        [ex.answers[0] for ex in exs], max_length, doc_stride)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}.npz")
        np.savez(tmp, **{k: getattr(feats, k) for k in QAFeatures.FIELDS})
        os.replace(tmp, path)
    return feats, False


class ExtractiveQATask(Task):
    """Extractive QA (SQuAD style) over a QAData."""

    family = "extractive_qa"
    metric_names = ("exact_match", "f1")
    primary_metric = "f1"
    OPTIONS = ("doc_stride", "n_best", "max_answer_length")
    DEFAULTS = {"doc_stride": 64, "n_best": 20, "max_answer_length": 30}  # doc_stride: min(64, max_length // 4)

    def __init__(
        self,
        data: QAData,
        model: str = "tiny",
        max_length: int = DEFAULT_MAX_LENGTH,
        cache_dir: Path | None = None,
        dropout: float | None = None,
        **options,
    ) -> None:
        unknown = sorted(set(options) - set(self.OPTIONS))
        if unknown:
            raise UserError(f"unknown option(s) for extractive QA: {', '.join(unknown)}",
                            f"use {', '.join(self.OPTIONS)}")
        given = {k: v for k, v in options.items() if v is not None}
        # Without an explicit doc_stride, the default 64 is capped at a quarter of max_length (short windows).
        opts = {**self.DEFAULTS, "doc_stride": min(self.DEFAULTS["doc_stride"], max(max_length // 4, 0)), **given}
        for k, low in (("doc_stride", 0), ("n_best", 1), ("max_answer_length", 1)):
            if not isinstance(opts[k], (int, np.integer)) or isinstance(opts[k], bool) or opts[k] < low:
                raise UserError(f"{k} must be an integer >= {low} (got {opts[k]!r})",
                                f"pass e.g. {k}={self.DEFAULTS[k]}")
        self.doc_stride, self.n_best, self.max_answer_length = (int(opts[k]) for k in self.OPTIONS)
        self.name = data.name
        self.data = data
        self.num_labels = 2  # start and end logits
        self.max_length = max_length
        self.dropout = dropout
        self.source = resolve_model(model)
        cache = Path(cache_dir) if cache_dir else None
        # The tiny model's WordPiece vocabulary is trained on the train questions and (distinct) contexts.
        tok_texts = [ex.question for ex in data.train_examples] + sorted({ex.context for ex in data.train_examples})
        self.tokenizer = load_tokenizer(self.source, tok_texts, cache)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        # Segment ids (question 0, context 1) for BERT-like models; the tiny model is a BERT with 2 segment types.
        input_names = getattr(self.tokenizer, "model_input_names", [])
        self.use_token_types = self.source.is_tiny or "token_type_ids" in input_names
        tok_hash = tokenizer_hash(self.tokenizer)
        self.features: dict[str, QAFeatures] = {}
        self.cache_hits: dict[str, bool] = {}
        for split in ("train", "test"):
            self.features[split], self.cache_hits[split] = cached_tokenize_qa(
                self.tokenizer, data, split, max_length, self.doc_stride, cache, tok_hash)
        self.labels = {"train": np.asarray(data.train_labels, np.int64), "test": np.asarray(data.test_labels, np.int64)}
        self.golds = {s: [[t for t, _ in ex.answers] for ex in data.examples(s)] for s in ("train", "test")}

    def base_model(self, seed: int) -> torch.nn.Module:
        from transformers import AutoModelForQuestionAnswering

        return build_model(self.source, AutoModelForQuestionAnswering, self.tokenizer, self.max_length, seed,
                           dropout=self.dropout)

    def feature_batch(self, split: str, windows: np.ndarray) -> dict[str, torch.Tensor]:
        """A padded batch of windows: input_ids, attention_mask, token_type_ids (when the model uses them),
        start_positions, end_positions."""
        f = self.features[split]
        starts, ends = f.tok_offsets[windows], f.tok_offsets[windows + 1]
        lens = ends - starts
        width = int(lens.max()) if len(lens) else 0
        cols = np.arange(width)
        mask = cols[None, :] < lens[:, None]
        gather = np.where(mask, starts[:, None] + cols[None, :], 0)
        out = {
            "input_ids": torch.from_numpy(np.where(mask, f.ids[gather], self.pad_id).astype(np.int64)),
            "attention_mask": torch.from_numpy(mask.astype(np.int64)),
        }
        if self.use_token_types:
            types = mask & (cols[None, :] >= f.context_start[windows][:, None])
            out["token_type_ids"] = torch.from_numpy(types.astype(np.int64))
        out["start_positions"] = torch.from_numpy(f.start_positions[windows])
        out["end_positions"] = torch.from_numpy(f.end_positions[windows])
        return out

    def batch(self, split: str, indices: np.ndarray) -> dict[str, torch.Tensor]:
        """The windows of the given EXAMPLE ids: on train the training selection (answer windows + at most one
        other per example), on test every window."""
        windows = self.features[split].windows_of(np.asarray(indices, dtype=np.int64), training=split == "train")
        return self.feature_batch(split, windows)

    @torch.no_grad()
    def logits(self, model: torch.nn.Module, split: str, device: torch.device, batch_size: int = 128
               ) -> tuple[np.ndarray, np.ndarray]:
        """Start and end logits of every token of every window, flat like QAFeatures.ids (float32)."""
        was_training = model.training
        model.eval()
        f = self.features[split]
        start_flat = np.zeros(len(f.ids), np.float32)
        end_flat = np.zeros(len(f.ids), np.float32)
        order = self.sorted_eval_order(f.lengths)
        for b in range(0, len(order), batch_size):
            w = order[b : b + batch_size]
            batch = self.feature_batch(split, w)
            inputs = {k: v.to(device) for k, v in batch.items() if k not in ("start_positions", "end_positions")}
            out = model(**inputs)
            s_log, e_log = out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()
            for row, win in enumerate(w):
                a, z = f.tok_offsets[win], f.tok_offsets[win + 1]
                start_flat[a:z] = s_log[row, : z - a]
                end_flat[a:z] = e_log[row, : z - a]
        model.train(was_training)
        return start_flat, end_flat

    def decode(self, split: str, start_flat: np.ndarray, end_flat: np.ndarray) -> list[str]:
        """Answer string per example: best n-best span over all its windows, mapped to context characters."""
        f = self.features[split]
        preds = []
        for e, ex in enumerate(self.data.examples(split)):
            windows = []
            for win in range(f.ex_offsets[e], f.ex_offsets[e + 1]):
                a, z = f.tok_offsets[win], f.tok_offsets[win + 1]
                windows.append((start_flat[a:z], end_flat[a:z], f.char_offsets[a:z]))
            preds.append(decode_example(ex.context, windows, self.n_best, self.max_answer_length))
        return preds

    def predict(self, model: torch.nn.Module, split: str, device: torch.device, batch_size: int = 128) -> list[str]:
        """The predicted answer text of every example of the split, in example order."""
        return self.decode(split, *self.logits(model, split, device, batch_size))

    def metrics(self, predictions: list[str], split: str, indices: np.ndarray | None = None) -> dict[str, float]:
        """SQuAD exact match and token F1 as fractions in [0, 1], max over each example's gold answers."""
        golds = self.golds[split]
        if indices is not None:
            idx = np.asarray(indices, dtype=np.int64)
            predictions, golds = [predictions[int(i)] for i in idx], [golds[int(i)] for i in idx]
        return squad_scores(list(predictions), golds)
