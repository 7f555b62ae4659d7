"""Language modelling adapter: next-token prediction with AutoModelForCausalLM; perplexity and next-token accuracy.

Every example is one text (a sentence, a post, a line of a corpus), tokenized once and cached like the other
families. The model predicts each token from the ones before it; padding is masked out of the loss.
Perplexity over a set of examples is exp(total token NLL / total predicted tokens), so per-client perplexity
weighs each client's tokens, not its examples. The tiny model is a 2-layer GPT-2 built from a config (random
init, seeded) over a WordPiece tokenizer trained on the training texts ([CLS] starts and [SEP] ends a text);
a BERT-family checkpoint (e.g. minilm) becomes a causal decoder (is_decoder=True, its LM head transform
freshly initialised); any other name is loaded with AutoModelForCausalLM.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data import TextClassificationData
from ..errors import UserError
from .base import Task
from .models import load_tokenizer, resolve_model, tokenizer_hash, train_wordpiece_tokenizer
from .tokenized import cache_key, cached_tokenize

# The tiny model's vocabulary: characters plus the ~1000 most frequent words. With the classification size
# (4000) almost every training word was one token while unseen test words were spelled out in characters the
# model had hardly been trained to predict: on SST-2 test perplexity rose as training perplexity fell.
TINY_VOCAB = 1024
BERT_TYPES = ("bert", "roberta", "xlm-roberta", "electra", "camembert")
# columns of LanguageModelingTask.predict: summed token NLL, predicted tokens, correct top-1 next tokens
NLL, TOKENS, CORRECT = 0, 1, 2


def lm_metrics(stats: np.ndarray) -> dict[str, float]:
    """Perplexity and next-token accuracy of per-example (NLL sum, tokens, correct) rows, pooled over tokens."""
    tokens = float(stats[:, TOKENS].sum()) if len(stats) else 0.0
    if tokens == 0:
        return {"perplexity": float("nan"), "token_accuracy": float("nan")}
    mean_nll = float(stats[:, NLL].sum()) / tokens
    return {"perplexity": math.exp(min(mean_nll, 700.0)), "token_accuracy": float(stats[:, CORRECT].sum()) / tokens}


def tiny_gpt2_config(vocab_size: int, max_length: int, tokenizer, dropout: float = 0.1):
    """A 2-layer GPT-2 config of the same width as the tiny BERT (64 hidden, 2 heads) for CPU tests and smoke runs."""
    from transformers import GPT2Config

    return GPT2Config(vocab_size=vocab_size, n_positions=max(64, max_length + 2), n_embd=64, n_layer=2, n_head=2,
                      n_inner=128, resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
                      bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
                      pad_token_id=tokenizer.pad_token_id)


class LanguageModelingTask(Task):
    """Causal language modelling over the texts of a TextClassificationData (its labels feed label skew only)."""

    family = "language_modeling"
    metric_names = ("perplexity", "token_accuracy")
    primary_metric = "perplexity"

    def __init__(
        self,
        data: TextClassificationData,
        model: str = "tiny",
        max_length: int = 64,
        cache_dir: Path | None = None,
        dropout: float | None = None,
    ) -> None:
        if max_length < 2:
            raise UserError(f"language modelling needs --max-length of at least 2 (got {max_length})",
                            "pass e.g. --max-length 64")
        self.name = data.name
        self.data = data
        self.max_length = max_length
        self.dropout = dropout
        self.source = resolve_model(model)
        if self.source.is_tiny:
            self.tokenizer = train_wordpiece_tokenizer(data.train_texts, vocab_size=TINY_VOCAB, cache_dir=cache_dir)
        else:
            self.tokenizer = load_tokenizer(self.source, [], cache_dir)
        if self.tokenizer.pad_token_id is None:  # GPT-2 style tokenizers: pad positions are masked anyway
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.pad_id = int(self.tokenizer.pad_token_id)
        tok_hash = tokenizer_hash(self.tokenizer)
        self.splits, self.cache_hits = {}, {}
        for split, texts in (("train", data.train_texts), ("test", data.test_texts)):
            key = cache_key(data.fingerprint, f"{split}|lm", tok_hash, max_length)
            self.splits[split], self.cache_hits[split] = cached_tokenize(self.tokenizer, texts, max_length, cache_dir, key)
            if (self.splits[split].lengths < 2).all():
                raise UserError(f"every {split} text of '{data.name}' is shorter than 2 tokens",
                                "check --text-column: language modelling needs texts to predict")
        self.labels = {"train": np.asarray(data.train_labels, np.int64), "test": np.asarray(data.test_labels, np.int64)}

    def base_model(self, seed: int) -> torch.nn.Module:
        from transformers import AutoConfig, AutoModelForCausalLM

        torch.manual_seed(seed)
        if self.source.is_tiny:
            cfg = tiny_gpt2_config(len(self.tokenizer), self.max_length, self.tokenizer,
                                   dropout=0.1 if self.dropout is None else self.dropout)
            return AutoModelForCausalLM.from_config(cfg)
        try:
            config = AutoConfig.from_pretrained(self.source.path)
            extra = {"is_decoder": True} if config.model_type in BERT_TYPES else {}
            model = AutoModelForCausalLM.from_pretrained(self.source.path, **extra)
        except Exception as exc:  # noqa: BLE001 - any hub/file failure is a user-facing problem
            raise UserError(f"could not load model '{self.source.name}' as a causal language model "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})",
                            "pass a causal LM (e.g. gpt2, distilgpt2), a BERT-family folder, 'minilm' or 'tiny' "
                            "to --model") from exc
        if self.dropout is not None:
            for m in model.modules():
                if isinstance(m, torch.nn.Dropout):
                    m.p = self.dropout
        return model

    def batch(self, split: str, indices: np.ndarray) -> dict[str, torch.Tensor]:
        input_ids, mask = self.splits[split].pad_batch(np.asarray(indices), self.pad_id)
        return {"input_ids": input_ids, "attention_mask": mask, "labels": input_ids.masked_fill(mask == 0, -100)}

    @torch.no_grad()
    def _token_stats(self, model: torch.nn.Module, split: str, idx: np.ndarray, device: torch.device) -> np.ndarray:
        """(NLL sum, predicted tokens, correct top-1) per example of one batch."""
        b = self.batch(split, idx)
        ids, mask = b["input_ids"].to(device), b["attention_mask"].to(device)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        target, valid = ids[:, 1:], mask[:, 1:].bool()
        nll = F.cross_entropy(logits.transpose(1, 2), target, reduction="none").masked_fill(~valid, 0.0)
        correct = (logits.argmax(-1) == target) & valid
        out = torch.stack([nll.sum(1).double(), valid.sum(1).double(), correct.sum(1).double()], dim=1)
        return out.cpu().numpy()

    @torch.no_grad()
    def predict(self, model: torch.nn.Module, split: str, device: torch.device, batch_size: int = 128) -> np.ndarray:
        """Per example: summed next-token NLL, number of predicted tokens, number predicted right (top-1)."""
        was_training = model.training
        model.eval()
        order = self.sorted_eval_order(self.splits[split].lengths)
        stats = np.zeros((len(order), 3), dtype=np.float64)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            stats[idx] = self._token_stats(model, split, idx, device)
        model.train(was_training)
        return stats

    def metrics(self, predictions: np.ndarray, split: str, indices: np.ndarray | None = None) -> dict[str, float]:
        return lm_metrics(predictions if indices is None else predictions[indices])

    @torch.no_grad()
    def example_losses(self, model: torch.nn.Module, split: str, ids: np.ndarray, device: torch.device,
                       batch_size: int = 64) -> np.ndarray:
        """Mean next-token NLL of each example (what a loss-threshold membership attack scores)."""
        was_training = model.training
        model.eval()
        out = np.zeros(len(ids), dtype=np.float64)
        for start in range(0, len(ids), batch_size):
            stats = self._token_stats(model, split, np.asarray(ids[start : start + batch_size]), device)
            out[start : start + batch_size] = stats[:, NLL] / np.maximum(stats[:, TOKENS], 1.0)
        model.train(was_training)
        return out
