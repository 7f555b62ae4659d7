"""Sequence tagging (NER) adapter: word tags aligned to subwords, AutoModelForTokenClassification, seqeval F1.

Alignment: each word's tag goes on its first subtoken; later subtokens and special tokens get -100 (ignored by
the loss). Words cut off by max_length truncation (or that tokenize to nothing) get no prediction from the model;
they are predicted "O", so their gold entities count as misses and the metrics stay over all words.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from ..data.tagging import NO_ENTITY, SequenceTaggingData
from ..errors import UserError
from .base import Task
from .models import build_model, load_tokenizer, resolve_model, tokenizer_hash
from .tagging_metrics import METRIC_NAMES, entity_scores
from .tokenized import TokenizedSplit

IGNORE = -100


class AlignedSplit:
    """Ragged subtoken ids plus, per subtoken, the label id (-100 if none) and the word index (-1 if none)."""

    def __init__(self, ids: np.ndarray, labels: np.ndarray, words: np.ndarray, offsets: np.ndarray) -> None:
        self.tokens = TokenizedSplit(ids.astype(np.int32), offsets)
        self.label_rows = TokenizedSplit(labels.astype(np.int32), offsets)
        self.words = words.astype(np.int32)
        self.offsets = offsets

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def lengths(self) -> np.ndarray:
        return self.tokens.lengths

    def word_index(self, i: int) -> np.ndarray:
        return self.words[self.offsets[i] : self.offsets[i + 1]]


def align_labels(word_ids: list[int | None], word_tags: list[int]) -> tuple[list[int], list[int]]:
    """(labels, first-subtoken word index) per subtoken: the word's tag id on its first subtoken, -100 elsewhere."""
    labels, words, prev = [], [], None
    for w in word_ids:
        if w is None or w == prev:
            labels.append(IGNORE)
            words.append(-1)
        else:
            labels.append(word_tags[w])
            words.append(w)
        prev = w
    return labels, words


def tokenize_aligned(tokenizer, tokens: list[list[str]], tag_ids: list[list[int]], max_length: int,
                     chunk: int = 1024) -> AlignedSplit:
    """Tokenize pre-split words once (truncation, no padding) and align word tags to subtokens."""
    ids, labels, words, lengths = [], [], [], []
    for start in range(0, len(tokens), chunk):
        enc = tokenizer(tokens[start : start + chunk], is_split_into_words=True, truncation=True,
                        max_length=max_length, padding=False)
        for j, row in enumerate(enc["input_ids"]):
            lab, wrd = align_labels(enc.word_ids(j), tag_ids[start + j])
            ids.append(np.asarray(row, np.int32))
            labels.append(np.asarray(lab, np.int32))
            words.append(np.asarray(wrd, np.int32))
            lengths.append(len(row))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)

    def cat(parts):
        return np.concatenate(parts) if parts else np.zeros(0, np.int32)

    return AlignedSplit(cat(ids), cat(labels), cat(words), offsets)


def _cached_aligned(tokenizer, tokens, tag_ids, max_length, cache_dir: Path | None, key: str) -> tuple[AlignedSplit, bool]:
    path = cache_dir / f"tag-{key}.npz" if cache_dir else None
    if path is not None and path.exists():
        with np.load(path) as z:
            return AlignedSplit(z["ids"], z["labels"], z["words"], z["offsets"]), True
    split = tokenize_aligned(tokenizer, tokens, tag_ids, max_length)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}.npz")
        np.savez(tmp, ids=split.tokens.ids, labels=split.label_rows.ids, words=split.words, offsets=split.offsets)
        os.replace(tmp, path)
    return split, False


def _word_tokenizer(tokenizer, source):
    """A fast tokenizer that accepts pre-split words (byte-level BPE ones need add_prefix_space=True)."""
    if not getattr(tokenizer, "is_fast", False):
        raise UserError(f"model '{source.name}' has no fast tokenizer, which tagging needs for word alignment",
                        "pick a model with a fast (Rust) tokenizer, 'minilm' or 'tiny'")
    try:
        tokenizer([["probe", "words"]], is_split_into_words=True)
        return tokenizer
    except Exception:  # noqa: BLE001 - e.g. RoBERTa/GPT-2 tokenizers without add_prefix_space
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(source.path, add_prefix_space=True)


class SequenceTaggingTask(Task):
    """Token classification over a SequenceTaggingData; metrics are entity-level (seqeval) plus word accuracy."""

    family = "sequence_tagging"
    metric_names = METRIC_NAMES
    primary_metric = "f1"
    OPTIONS: tuple[str, ...] = ()

    def __init__(
        self,
        data: SequenceTaggingData,
        model: str = "tiny",
        max_length: int = 128,
        cache_dir: Path | None = None,
        dropout: float | None = None,
        **options,
    ) -> None:
        if options:
            raise UserError(f"unknown option{'s' if len(options) > 1 else ''} for sequence tagging: "
                            f"{', '.join(sorted(options))}", "tag_scheme is a data option (pass it to the loader)")
        self.name = data.name
        self.data = data
        self.tag_names = list(data.tag_names)
        self.num_labels = len(self.tag_names)
        self.scheme = data.tag_scheme
        self.max_length = max_length
        self.dropout = dropout
        self.source = resolve_model(model)
        self.tokenizer = _word_tokenizer(load_tokenizer(self.source, data.train_texts, cache_dir), self.source)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        tag_index = {t: i for i, t in enumerate(self.tag_names)}
        tok_hash = tokenizer_hash(self.tokenizer)
        self.gold = {"train": data.train_tags, "test": data.test_tags}
        self.splits: dict[str, AlignedSplit] = {}
        self.cache_hits: dict[str, bool] = {}
        for split, tokens in (("train", data.train_tokens), ("test", data.test_tokens)):
            tag_ids = [[tag_index[t] for t in s] for s in self.gold[split]]
            key = hashlib.sha256(f"{data.fingerprint}|{split}|{tok_hash}|{max_length}|tag".encode()).hexdigest()[:24]
            self.splits[split], self.cache_hits[split] = _cached_aligned(
                self.tokenizer, tokens, tag_ids, max_length, cache_dir, key)
        self.labels = {"train": np.asarray(data.train_labels, np.int64), "test": np.asarray(data.test_labels, np.int64)}

    def base_model(self, seed: int) -> torch.nn.Module:
        from transformers import AutoModelForTokenClassification

        return build_model(
            self.source,
            AutoModelForTokenClassification,
            self.tokenizer,
            self.max_length,
            seed,
            dropout=self.dropout,
            num_labels=self.num_labels,
            id2label=dict(enumerate(self.tag_names)),
            label2id={t: i for i, t in enumerate(self.tag_names)},
        )

    def batch(self, split: str, indices: np.ndarray) -> dict[str, torch.Tensor]:
        idx = np.asarray(indices)
        s = self.splits[split]
        input_ids, mask = s.tokens.pad_batch(idx, self.pad_id)
        labels, _ = s.label_rows.pad_batch(idx, IGNORE)
        return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}

    @torch.no_grad()
    def predict(self, model: torch.nn.Module, split: str, device: torch.device, batch_size: int = 128) -> list[list[str]]:
        """Word-level tags per example, in example order; words the model never saw (truncated) are "O"."""
        was_training = model.training
        model.eval()
        s = self.splits[split]
        order = self.sorted_eval_order(s.lengths)
        preds: list[list[str] | None] = [None] * len(order)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            b = self.batch(split, idx)
            logits = model(input_ids=b["input_ids"].to(device), attention_mask=b["attention_mask"].to(device)).logits
            best = logits.argmax(-1).cpu().numpy()
            for row, i in enumerate(idx):
                tags = [NO_ENTITY] * len(self.gold[split][i])
                words = s.word_index(int(i))
                pos = np.flatnonzero(words >= 0)
                for p, w in zip(pos, words[pos]):
                    tags[int(w)] = self.tag_names[int(best[row, p])]
                preds[int(i)] = tags
        model.train(was_training)
        return preds  # type: ignore[return-value]

    def metrics(self, predictions: list[list[str]], split: str, indices: np.ndarray | None = None) -> dict[str, float]:
        gold = self.gold[split]
        if indices is not None:
            ids = [int(i) for i in np.asarray(indices).reshape(-1)]
            predictions, gold = [predictions[i] for i in ids], [gold[i] for i in ids]
        return entity_scores(gold, predictions, self.scheme)
