"""Sequence-to-sequence adapter (summarisation, headlines, dialogue): AutoModelForSeq2SeqLM, teacher-forced
training, evaluation by generation (greedy or beam search), ROUGE-1/2/L F-measure.

Models: "tiny" is a random-init BART (d_model 64, 2+2 layers, 2 heads, ffn 128) with a WordPiece tokenizer
trained locally on the training sources and targets ([CLS] starts the decoder, [SEP] ends a target); any other
name is a pretrained encoder-decoder (BART, T5, ... : a hub name or a local folder) loaded with
AutoModelForSeq2SeqLM and its own tokenizer. An encoder-only BERT-family model ('minilm', bert-base-uncased, ...)
becomes a warm-started encoder-decoder (EncoderDecoderModel, "bert2bert", Rothe et al. 2020): encoder and decoder
start from its weights, the decoder's cross-attention from random; targets and generation then follow the tiny
model's convention ([CLS] starts, [SEP] ends). T5-family models get the prefix of their config
(task_specific_params.summarization.prefix, else "summarize: ") unless `source_prefix` is given ("" = none).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.seq2seq import Seq2SeqData
from ..errors import UserError
from .base import Task
from .models import load_tokenizer, resolve_model, tokenizer_hash, train_wordpiece_tokenizer
from .seq2seq_metrics import ROUGE_TYPES, rouge
from .tokenized import cache_key, cached_tokenize

T5_TYPES = ("t5", "mt5", "umt5", "longt5", "byt5")
BERT2BERT_TYPES = ("bert", "roberta", "electra")  # encoder-only families EncoderDecoderModel can warm-start
DEFAULT_T5_PREFIX = "summarize: "


def tiny_bart_config(vocab_size: int, max_positions: int, pad_id: int, start_id: int, eos_id: int,
                     dropout: float = 0.1):
    """A small BART config (d_model 64, 2 encoder + 2 decoder layers, 2 heads, ffn 128) for CPU tests."""
    from transformers import BartConfig

    return BartConfig(
        vocab_size=vocab_size,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_position_embeddings=max_positions,
        dropout=dropout,
        attention_dropout=0.0,
        activation_dropout=0.0,
        pad_token_id=pad_id,
        bos_token_id=start_id,
        eos_token_id=eos_id,
        decoder_start_token_id=start_id,
        forced_bos_token_id=None,
        forced_eos_token_id=None,
        scale_embedding=True,
    )


class _TargetEncoder:
    """Tokenizer-like callable for targets, so targets go through the same cached, ragged tokenization.

    Pretrained models: `tokenizer(text_target=...)` (the model's own target handling, e.g. T5 appends </s>).
    Tiny model: the target word pieces followed by [SEP]; the decoder start [CLS] is added by the model's
    right shift of the labels, so it is not part of the labels.
    """

    def __init__(self, tokenizer, tiny: bool) -> None:
        self.tokenizer, self.tiny = tokenizer, tiny

    def __call__(self, texts: list[str], truncation: bool = True, max_length: int = 64, padding: bool = False):
        if not self.tiny:
            return self.tokenizer(text_target=texts, truncation=truncation, max_length=max_length, padding=False)
        enc = self.tokenizer(texts, add_special_tokens=False, truncation=truncation, max_length=max_length - 1,
                             padding=False)
        eos = self.tokenizer.sep_token_id
        return {"input_ids": [list(ids) + [eos] for ids in enc["input_ids"]]}


class Seq2SeqTask(Task):
    """Conditional generation over a Seq2SeqData; metrics are ROUGE F-measures as fractions 0..1."""

    family = "seq2seq"
    metric_names = ROUGE_TYPES
    primary_metric = "rougeL"
    OPTIONS = ("source_prefix", "num_beams", "max_new_tokens", "max_target_length", "no_repeat_ngram_size",
               "decoder_layers")
    DEFAULTS: dict[str, Any] = {"source_prefix": None, "num_beams": 1, "max_new_tokens": 32, "max_target_length": 64,
                                "no_repeat_ngram_size": None, "decoder_layers": None}

    def __init__(
        self,
        data: Seq2SeqData,
        model: str = "tiny",
        max_length: int = 128,
        cache_dir: Path | None = None,
        dropout: float | None = None,
        **options: Any,
    ) -> None:
        unknown = sorted(set(options) - set(self.OPTIONS))
        if unknown:
            raise UserError(f"unknown seq2seq option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}",
                            f"use only: {', '.join(self.OPTIONS)}")
        opts = {**self.DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
        for key in ("num_beams", "max_new_tokens", "max_target_length"):
            value = opts[key]
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise UserError(f"seq2seq option {key} must be a positive whole number, got {value!r}",
                                f"pass e.g. {key}={self.DEFAULTS[key]}")
        if opts["max_target_length"] < 2:
            raise UserError("seq2seq option max_target_length must be at least 2 (one token plus the end token)",
                            "pass e.g. max_target_length=64")
        self.name = data.name
        self.data = data
        self.num_labels = len(data.label_names)
        self.max_length = max_length
        self.dropout = dropout
        self.num_beams = int(opts["num_beams"])
        self.no_repeat_ngram_size = int(opts["no_repeat_ngram_size"] or 0)
        self.decoder_layers = None if opts["decoder_layers"] is None else int(opts["decoder_layers"])
        self.max_new_tokens = int(opts["max_new_tokens"])
        self.max_target_length = int(opts["max_target_length"])
        self.source = resolve_model(model)
        if self.source.is_tiny:
            self.tokenizer = train_wordpiece_tokenizer(list(data.train_texts) + list(data.train_targets),
                                                       cache_dir=cache_dir)
            self.model_type = "bart"
        else:
            self.tokenizer = load_tokenizer(self.source, [], cache_dir)
            self.model_type = self._check_pretrained_config()
        if self.decoder_layers is not None:
            layers = getattr(getattr(self, "_pretrained_config", None), "num_hidden_layers", 0)
            if self.model_type != "bert2bert":
                raise UserError(f"--decoder-layers applies to a BERT-family model warm-started as an encoder-decoder, "
                                f"not to model '{self.source.name}'", "leave out --decoder-layers, or use --model minilm")
            if not 1 <= self.decoder_layers <= layers:
                raise UserError(f"--decoder-layers {self.decoder_layers}: model '{self.source.name}' has {layers} "
                                "layers", f"pass --decoder-layers 1 to {layers}")
        prefix = opts["source_prefix"]
        if prefix is None:
            prefix = self._default_prefix()
        self.source_prefix = str(prefix)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        tok_hash = tokenizer_hash(self.tokenizer)
        targets = _TargetEncoder(self.tokenizer, self.wordpiece_targets)
        mode = "tiny" if self.wordpiece_targets else "pretrained"
        self.splits, self.targets, self.cache_hits = {}, {}, {}
        for split, sources, golds in (("train", data.train_texts, data.train_targets),
                                      ("test", data.test_texts, data.test_targets)):
            texts = [self.source_prefix + s for s in sources] if self.source_prefix else list(sources)
            key = cache_key(data.fingerprint, f"{split}|seq2seq-source|{self.source_prefix}", tok_hash, max_length)
            self.splits[split], hit_src = cached_tokenize(self.tokenizer, texts, max_length, cache_dir, key)
            key = cache_key(data.fingerprint, f"{split}|seq2seq-target|{mode}", tok_hash, self.max_target_length)
            self.targets[split], hit_tgt = cached_tokenize(targets, list(golds), self.max_target_length, cache_dir,
                                                           key)
            self.cache_hits[split] = hit_src and hit_tgt
        self.references = {"train": list(data.train_targets), "test": list(data.test_targets)}
        self.labels = {"train": np.asarray(data.train_labels, np.int64), "test": np.asarray(data.test_labels, np.int64)}

    # ------------------------------------------------------------------------------------------- model
    def _check_pretrained_config(self) -> str:
        from transformers import AutoConfig

        try:
            cfg = AutoConfig.from_pretrained(self.source.path)
        except Exception as exc:  # noqa: BLE001 - any hub/file failure is a user-facing problem
            raise UserError(f"could not load the config of model '{self.source.name}' ({type(exc).__name__})",
                            "pass a local model folder or 'tiny' to --model") from exc
        if cfg.model_type in BERT2BERT_TYPES:
            self._pretrained_config = cfg
            return "bert2bert"
        if not getattr(cfg, "is_encoder_decoder", False):
            raise UserError(f"model '{self.source.name}' ({cfg.model_type}) is not an encoder-decoder model",
                            "use a BART or T5 family model (e.g. facebook/bart-base, t5-small), a BERT-family encoder "
                            "(warm-started encoder-decoder, e.g. minilm) or 'tiny' for seq2seq")
        self._pretrained_config = cfg
        return str(cfg.model_type)

    @property
    def wordpiece_targets(self) -> bool:
        """Targets as word pieces + [SEP], decoder started by [CLS] (tiny BART and bert2bert)."""
        return self.source.is_tiny or self.model_type == "bert2bert"

    def _bert2bert(self) -> torch.nn.Module:
        from transformers import EncoderDecoderModel
        from transformers.utils import logging as hf_logging

        tok = self.tokenizer
        level = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the fresh cross-attention weights are reported as missing, by design
        try:
            # decoder_num_hidden_layers: the decoder loads the first N of the checkpoint's layers
            extra = {} if self.decoder_layers is None else {"decoder_num_hidden_layers": self.decoder_layers}
            model = EncoderDecoderModel.from_encoder_decoder_pretrained(self.source.path, self.source.path, **extra)
        finally:
            hf_logging.set_verbosity(level)
        for cfg in (model.config, model.generation_config):
            cfg.decoder_start_token_id = tok.cls_token_id
            cfg.pad_token_id = self.pad_id
            cfg.eos_token_id = tok.sep_token_id
        model.generation_config.bos_token_id = tok.cls_token_id
        if self.dropout is not None:
            for sub in (model.encoder, model.decoder):
                for m in sub.modules():
                    if isinstance(m, torch.nn.Dropout):
                        m.p = self.dropout
        return model

    def _default_prefix(self) -> str:
        if self.model_type not in T5_TYPES:
            return ""
        params = getattr(self._pretrained_config, "task_specific_params", None) or {}
        return str((params.get("summarization") or {}).get("prefix", DEFAULT_T5_PREFIX))

    def base_model(self, seed: int) -> torch.nn.Module:
        from transformers import AutoModelForSeq2SeqLM

        torch.manual_seed(seed)
        if self.source.is_tiny:
            tok = self.tokenizer
            positions = max(self.max_length, self.max_target_length + 1, self.max_new_tokens + 1)
            cfg = tiny_bart_config(len(tok), positions, self.pad_id, tok.cls_token_id, tok.sep_token_id,
                                   dropout=0.1 if self.dropout is None else self.dropout)
            return AutoModelForSeq2SeqLM.from_config(cfg)
        if self.model_type == "bert2bert":
            return self._bert2bert()
        extra = {}
        if self.dropout is not None:
            for key in ("dropout", "dropout_rate"):  # BART family, T5 family
                if hasattr(self._pretrained_config, key):
                    extra[key] = self.dropout
        try:
            return AutoModelForSeq2SeqLM.from_pretrained(self.source.path, **extra)
        except Exception as exc:  # noqa: BLE001
            raise UserError(
                f"could not load model '{self.source.name}' ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})",
                "pass a local encoder-decoder model folder or 'tiny' to --model",
            ) from exc

    # ------------------------------------------------------------------------------------------- data
    def batch(self, split: str, indices: np.ndarray) -> dict[str, torch.Tensor]:
        """Dynamically padded sources and labels (target ids, padding -100; the model shifts them right)."""
        idx = np.asarray(indices)
        input_ids, mask = self.splits[split].pad_batch(idx, self.pad_id)
        labels, label_mask = self.targets[split].pad_batch(idx, self.pad_id)
        labels = labels.masked_fill(label_mask == 0, -100)
        return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}

    # ------------------------------------------------------------------------------------------- eval
    def _generation_kwargs(self, model: torch.nn.Module) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"num_beams": self.num_beams, "max_new_tokens": self.max_new_tokens,
                                  "do_sample": False, "early_stopping": self.num_beams > 1}
        if self.no_repeat_ngram_size:  # e.g. 3 as BART-CNN's generation config: no n-gram twice in one output
            kwargs["no_repeat_ngram_size"] = self.no_repeat_ngram_size
        if self.wordpiece_targets:  # the decoder may only emit words and [SEP], never [PAD]/[UNK]/[CLS]/[MASK]
            tok = self.tokenizer
            kwargs["suppress_tokens"] = [tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.mask_token_id]
        min_length = getattr(model.generation_config, "min_length", 0) or 0
        if min_length > self.max_new_tokens:  # e.g. bart-large-cnn's min_length 56 cannot hold under a short cap
            kwargs["min_length"] = 0
        return kwargs

    @torch.no_grad()
    def predict(self, model: torch.nn.Module, split: str, device: torch.device, batch_size: int = 128) -> list[str]:
        """Generated text per example (greedy, or beam search with num_beams > 1), in example order."""
        was_training = model.training
        model.eval()
        order = self.sorted_eval_order(self.splits[split].lengths)
        preds: list[str] = [""] * len(order)
        kwargs = self._generation_kwargs(model)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            input_ids, mask = self.splits[split].pad_batch(idx, self.pad_id)
            out = model.generate(input_ids=input_ids.to(device), attention_mask=mask.to(device), **kwargs)
            texts = self.tokenizer.batch_decode(out.cpu(), skip_special_tokens=True, clean_up_tokenization_spaces=True)
            for i, text in zip(idx, texts):
                preds[int(i)] = text.strip()
        model.train(was_training)
        return preds

    def metrics(self, predictions: list[str], split: str, indices: np.ndarray | None = None) -> dict[str, float]:
        """Mean ROUGE-1/2/L F-measure (fractions 0..1) against the untruncated reference targets."""
        refs = self.references[split]
        if len(predictions) != len(refs):
            raise ValueError(f"{len(predictions)} predictions for the {len(refs)} examples of split '{split}'")
        if indices is not None:
            idx = np.asarray(indices, dtype=np.int64).reshape(-1)
            predictions, refs = [predictions[i] for i in idx], [refs[i] for i in idx]
        return rouge(predictions, refs)
