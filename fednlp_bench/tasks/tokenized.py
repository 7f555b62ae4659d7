"""Tokenized splits: ragged token ids stored flat with offsets, cached on disk, padded per batch."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


@dataclass
class TokenizedSplit:
    """Token ids of every example of a split, ragged: example i is ids[offsets[i]:offsets[i+1]]."""

    ids: np.ndarray  # int32, all examples concatenated
    offsets: np.ndarray  # int64, len = n + 1

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def pad_batch(self, indices: np.ndarray, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Dynamic padding: (input_ids, attention_mask) padded to the longest example of the batch."""
        starts, ends = self.offsets[indices], self.offsets[indices + 1]
        lens = ends - starts
        width = int(lens.max())
        cols = np.arange(width)
        mask = cols[None, :] < lens[:, None]
        gather = np.where(mask, starts[:, None] + cols[None, :], 0)
        batch = np.where(mask, self.ids[gather], pad_id)
        return torch.from_numpy(batch.astype(np.int64)), torch.from_numpy(mask.astype(np.int64))


def tokenize_texts(tokenizer, texts: list[str], max_length: int, chunk: int = 2048) -> TokenizedSplit:
    """Tokenize once with truncation (no padding); returns the ragged split."""
    pieces: list[np.ndarray] = []
    for start in range(0, len(texts), chunk):
        enc = tokenizer(texts[start : start + chunk], truncation=True, max_length=max_length, padding=False)
        pieces.extend(np.asarray(x, dtype=np.int32) for x in enc["input_ids"])
    lengths = np.array([len(p) for p in pieces], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = np.concatenate(pieces) if pieces else np.zeros(0, np.int32)
    return TokenizedSplit(ids, offsets)


def cache_key(data_fingerprint: str, split: str, tok_hash: str, max_length: int) -> str:
    return hashlib.sha256(f"{data_fingerprint}|{split}|{tok_hash}|{max_length}".encode()).hexdigest()[:24]


def cached_tokenize(
    tokenizer, texts: list[str], max_length: int, cache_dir: Path | None, key: str
) -> tuple[TokenizedSplit, bool]:
    """Tokenize through an on-disk cache (npz, written atomically). Returns (split, was_cached)."""
    path = cache_dir / f"tok-{key}.npz" if cache_dir else None
    if path is not None and path.exists():
        with np.load(path) as z:
            return TokenizedSplit(z["ids"], z["offsets"]), True
    split = tokenize_texts(tokenizer, texts, max_length)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}.npz")
        np.savez(tmp, ids=split.ids, offsets=split.offsets)
        os.replace(tmp, path)
    return split, False
