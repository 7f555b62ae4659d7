"""Example-level DP-SGD (Abadi et al. 2016) for a client's local steps, and its accounting.

Every local step computes one gradient per example, clips each to L2 norm C (over all trainable parameters
jointly), sums them, adds Gaussian noise N(0, (sigma*C)^2) per coordinate and divides by the expected batch
size; the client's optimizer (SGD/AdamW) then steps on that gradient. Per-example gradients are vectorised
with torch.func (functional_call + vmap + grad) over the task adapter's own loss, one example as a batch of 1.

Two things make vmap work on Hugging Face models:
- attention runs as "eager" (prepare_model): SDPA runs but is ~40x slower under vmap on CPU;
- transformers' mask helpers skip building a mask after *reading* it (`padding_mask.all()`), which vmap cannot
  do; while the vmapped function runs they are told they are being traced, so they always build the mask
  (only a shortcut is lost; causal and padding masks stay exact).
Dropout draws a different mask per example (vmap randomness="different", from torch's seeded global RNG), as
the non-private batch does. The input word-embedding matrix, when it is not tied to another weight, is not
expanded per example (B x vocab x hidden): the gradient w.r.t. each example's embedded tokens is taken instead
and scattered into the rows of its token ids, which gives the same per-example gradient, norm and clipped sum.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch

from ..errors import UserError
from ..tasks.base import Task

# Families whose batches hold one row per example (an example is a row of the batch).
SUPPORTED_FAMILIES = ("text_classification", "sequence_tagging", "seq2seq", "language_modeling")
ACCOUNTANT = "opacus.accountants.RDPAccountant"
MECHANISM = "DP-SGD (per-example clipping, Gaussian noise on the sum, expected-batch-size denominator)"
SAMPLING_NOTE = ("each local epoch visits the client's examples in shuffled fixed-size batches; they are accounted "
                 "as Poisson sampling at rate batch_size/n_k (common practice, as in opacus and TF Privacy)")


@dataclass
class ExampleDP:
    """DP-SGD settings: per-example clip norm C and noise multiplier sigma (noise std sigma*C on the sum)."""

    clip: float
    noise_multiplier: float = 0.0


def check_family(task: Task) -> None:
    """Raise a UserError for other families: in extractive QA one example is several rows (context windows),
    so clipping rows would not bound an example's influence; other families are untested."""
    if task.family not in SUPPORTED_FAMILIES:
        raise UserError(f"--dp-sgd-clip supports {', '.join(SUPPORTED_FAMILIES)} tasks, not {task.family}",
                        "use client-level --dp-clip for this task")


def prepare_model(model: torch.nn.Module) -> torch.nn.Module:
    """Switch the model's attention to "eager" (fast under vmap); a no-op when it already is."""
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "_attn_implementation", "eager") != "eager":
        if hasattr(model, "set_attn_implementation"):
            model.set_attn_implementation("eager")
        else:  # older transformers read the field at forward time
            config._attn_implementation = "eager"
    return model


@contextlib.contextmanager
def vmap_safe_masks() -> Iterator[None]:
    """Make transformers' mask helpers build masks without reading their values (which vmap cannot do)."""
    try:
        from transformers import masking_utils
    except ImportError:  # older transformers: eager masks are built without data-dependent checks
        yield
        return
    if not hasattr(masking_utils, "is_tracing"):
        yield
        return
    original = masking_utils.is_tracing
    masking_utils.is_tracing = lambda *args, **kwargs: True
    try:
        yield
    finally:
        masking_utils.is_tracing = original


def clip_factors(norms: torch.Tensor, clip: float) -> torch.Tensor:
    """min(1, C / norm) per example (opacus's form, C / (norm + 1e-6)): gradients under C are left as they are."""
    return (clip / (norms + 1e-6)).clamp(max=1.0)


class _Bound:
    """Calls `model` with the given parameters in place of its own (what task.loss sees as the model)."""

    def __init__(self, model: torch.nn.Module, params: dict[str, torch.Tensor]) -> None:
        self.model, self.params = model, params

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return torch.func.functional_call(self.model, self.params, args, kwargs)


def _untied_input_embedding(model: torch.nn.Module, names: dict[int, str]) -> tuple[str, torch.nn.Embedding] | None:
    """The input nn.Embedding when it is trainable, plain and its weight is used nowhere else; else None."""
    get = getattr(model, "get_input_embeddings", None)
    emb = get() if get is not None else None
    if not isinstance(emb, torch.nn.Embedding) or id(emb.weight) not in names or emb.max_norm is not None:
        return None
    uses = sum(1 for _, p in model.named_parameters(remove_duplicate=False) if p is emb.weight)
    return (names[id(emb.weight)], emb) if uses == 1 else None


class PerExampleGrads:
    """Per-example gradients of `task.loss` w.r.t. `params` (the model's trainable parameters), vectorised.

    The batch is processed in chunks whose per-example gradients take at most `max_chunk_bytes` (or
    `chunk_size` examples): it bounds memory, and on CPU mid-sized chunks were also faster than the whole
    batch (MiniLM, batch 32: 0.61 s with 16 examples a chunk vs 0.71-0.94 s at once; fresh huge buffers cost
    page faults on every step).
    """

    def __init__(self, task: Task, model: torch.nn.Module, params: list[torch.nn.Parameter], precision: str = "fp32",
                 chunk_size: int | None = None, max_chunk_bytes: int = 2**29) -> None:
        self.task, self.model, self.params = task, prepare_model(model), params
        self.precision = precision
        by_id = {id(p): n for n, p in model.named_parameters()}
        self.names = [by_id[id(p)] for p in params]
        found = _untied_input_embedding(model, by_id)
        self.embed_name, self.embedding = found if found else (None, None)
        per_example = sum(p.numel() * 4 for n, p in zip(self.names, params) if n != self.embed_name)
        self.chunk_size = chunk_size or max(1, max_chunk_bytes // max(1, per_example))
        argnums = (0, 1) if self.embedding is not None else 0
        grad_fn = torch.func.grad_and_value(self._loss_one, argnums=argnums)
        in_dims = (None, 0 if self.embedding is not None else None, 0)
        self._vmapped = torch.func.vmap(grad_fn, in_dims=in_dims, randomness="different")

    def _loss_one(self, params: dict[str, torch.Tensor], embeds: torch.Tensor | None,
                  example: dict[str, torch.Tensor]) -> torch.Tensor:
        from .client import autocast

        batch = {k: v.unsqueeze(0) for k, v in example.items()}
        if embeds is not None:
            del batch["input_ids"]
            batch["inputs_embeds"] = embeds.unsqueeze(0)
        device = next(iter(params.values())).device
        with autocast(device, self.precision):
            return self.task.loss(_Bound(self.model, params), batch)

    def _chunks(self, batch: dict[str, torch.Tensor]) -> Iterator[dict[str, torch.Tensor]]:
        n = len(next(iter(batch.values())))
        chunks = math.ceil(n / self.chunk_size)
        step = math.ceil(n / chunks)  # even chunks: 32 at most 11 -> 11, 11, 10
        for i in range(0, n, step):
            yield {k: v[i : i + step] for k, v in batch.items()}

    def _raw(self, batch: dict[str, torch.Tensor]):
        """(per-example grads by name, embedding-output grads [B, L, H] or None, per-example losses)."""
        params = {n: p.detach() for n, p in zip(self.names, self.params) if n != self.embed_name}
        if self.embed_name is not None:
            params_in = params
            embeds = torch.nn.functional.embedding(batch["input_ids"], self.embedding.weight.detach())
        else:
            params_in, embeds = params, None
        with vmap_safe_masks():
            grads, losses = self._vmapped(params_in, embeds, batch)
        if self.embed_name is not None:
            grads, emb_grads = grads
            ids = batch["input_ids"]
            if self.embedding.padding_idx is not None:  # nn.Embedding gives its padding row no gradient
                emb_grads = emb_grads * (ids != self.embedding.padding_idx).unsqueeze(-1).to(emb_grads.dtype)
            return grads, emb_grads, losses
        return grads, None, losses

    def _embedding_rows(self, ids: torch.Tensor, emb_grads: torch.Tensor):
        """Each example's embedding gradient as its distinct rows: (example of row, token of row, row values)."""
        vocab = self.embedding.num_embeddings
        rows_of = torch.arange(len(ids), device=ids.device).unsqueeze(1) * vocab + ids
        keys, inverse = torch.unique(rows_of.reshape(-1), return_inverse=True)
        rows = emb_grads.new_zeros(len(keys), emb_grads.shape[-1]).index_add_(
            0, inverse, emb_grads.reshape(-1, emb_grads.shape[-1]))
        return keys // vocab, keys % vocab, rows

    def clipped_sum(self, batch: dict[str, torch.Tensor], clip: float) -> tuple[list[torch.Tensor], torch.Tensor,
                                                                               torch.Tensor]:
        """Sum over examples of each gradient clipped to norm `clip`, per param; per-example norms and losses."""
        sums = [torch.zeros_like(p, dtype=torch.float32) for p in self.params]
        norms, losses = [], []
        for chunk in self._chunks(batch):
            grads, emb_grads, loss = self._raw(chunk)
            sq = sum(torch.linalg.vector_norm(g.reshape(len(g), -1).float(), dim=1).square() for g in grads.values())
            if emb_grads is not None:
                example, token, rows = self._embedding_rows(chunk["input_ids"], emb_grads.float())
                sq = sq + torch.zeros_like(sq).index_add_(0, example, rows.pow(2).sum(1))
            norm = sq.sqrt()
            factor = clip_factors(norm, clip)
            for i, name in enumerate(self.names):
                if name == self.embed_name:
                    sums[i].index_add_(0, token, rows * factor[example].unsqueeze(1))
                else:
                    sums[i].add_(torch.tensordot(factor, grads[name].float(), dims=1))
            norms.append(norm)
            losses.append(loss.detach().float())
        return sums, torch.cat(norms), torch.cat(losses)

    def flat(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """All per-example gradients as one [B, P] matrix in `params` order (dense; for tests and checks)."""
        out = []
        for chunk in self._chunks(batch):
            grads, emb_grads, _ = self._raw(chunk)
            cols = []
            for name, p in zip(self.names, self.params):
                if name == self.embed_name:
                    example, token, rows = self._embedding_rows(chunk["input_ids"], emb_grads)
                    dense = rows.new_zeros(len(emb_grads), *p.shape)
                    dense.index_put_((example, token), rows, accumulate=True)
                    cols.append(dense.reshape(len(dense), -1))
                else:
                    cols.append(grads[name].reshape(len(grads[name]), -1))
            out.append(torch.cat(cols, 1))
        return torch.cat(out)


def naive_per_example_grads(task: Task, model: torch.nn.Module, params: list[torch.nn.Parameter],
                            batch: dict[str, torch.Tensor], precision: str = "fp32") -> tuple[torch.Tensor,
                                                                                          torch.Tensor]:
    """Reference: one forward and backward per example (a Python loop); [B, P] gradients and the B losses."""
    from .client import autocast

    n = len(next(iter(batch.values())))
    device = params[0].device
    rows, losses = [], []
    for i in range(n):
        example = {k: v[i : i + 1] for k, v in batch.items()}
        with autocast(device, precision):
            loss = task.loss(model, example)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1).float()
                               for g, p in zip(grads, params)]))
        losses.append(loss.detach().float())
    return torch.stack(rows), torch.stack(losses)


def naive_clipped_sum(task: Task, model: torch.nn.Module, params: list[torch.nn.Parameter],
                      batch: dict[str, torch.Tensor], clip: float, precision: str = "fp32") -> tuple[
                          list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """The loop version of PerExampleGrads.clipped_sum (the benchmark's and the tests' anchor)."""
    grads, losses = naive_per_example_grads(task, model, params, batch, precision)
    norms = torch.linalg.vector_norm(grads, dim=1)
    total = clip_factors(norms, clip) @ grads
    out, offset = [], 0
    for p in params:
        out.append(total[offset : offset + p.numel()].view_as(p))
        offset += p.numel()
    return out, norms, losses


def noise_generator(seed: int, step: int) -> torch.Generator:
    """The CPU generator of one step's noise: the same for the same (client seed, step)."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(np.random.SeedSequence([seed, step, 0xE5]).generate_state(1)[0]))
    return gen


def private_grads(sums: list[torch.Tensor], dp: ExampleDP, expected_batch: int,
                  generator: torch.Generator) -> list[torch.Tensor]:
    """(sum of clipped gradients + N(0, (sigma*C)^2)) / expected batch size, per parameter."""
    std = dp.noise_multiplier * dp.clip
    out = []
    for s in sums:
        g = s.clone()
        if std > 0:
            g.add_(torch.randn(s.shape, generator=generator, dtype=torch.float32).to(s.device), alpha=std)
        out.append(g.div_(expected_batch))
    return out


def dp_sgd_step(engine: PerExampleGrads | None, task: Task, model: torch.nn.Module,
                params: list[torch.nn.Parameter], batch: dict[str, torch.Tensor], dp: ExampleDP,
                expected_batch: int, generator: torch.Generator, precision: str = "fp32") -> torch.Tensor:
    """Write the private gradient into each param's .grad (engine None: the naive loop); return the mean loss."""
    if engine is not None:
        sums, _, losses = engine.clipped_sum(batch, dp.clip)
    else:
        sums, _, losses = naive_clipped_sum(task, model, params, batch, dp.clip, precision)
    for p, g in zip(params, private_grads(sums, dp, expected_batch, generator)):
        p.grad = g.to(p.dtype)
    return losses.mean()


# ------------------------------------------------------------------------------------------------ accounting
def example_level_epsilon(noise_multiplier: float, history: dict[int, int], batch_size: int, delta: float) -> float:
    """epsilon of one client's DP-SGD steps by opacus's RDP accountant; `history` maps n_k -> steps taken.

    A client holding n_k examples steps at sampling rate q = min(1, batch_size / n_k); with continual data n_k
    changes over rounds, and every (q, steps) pair is one entry of the accountant's history.
    """
    if not history:
        return 0.0
    if noise_multiplier <= 0:
        return math.inf
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    for n, steps in sorted(history.items()):
        accountant.history.append((noise_multiplier, min(1.0, batch_size / n), steps))
    return float(accountant.get_epsilon(delta=delta))


def example_privacy_record(clip: float, noise_multiplier: float, delta: float, batch_size: int,
                           client_steps: dict[int, dict[int, int]]) -> dict[str, Any]:
    """The result's block for example-level DP: the worst client's epsilon (every example's guarantee)."""
    cache: dict[tuple, float] = {}
    eps = []
    for history in client_steps.values():
        key = tuple(sorted(history.items()))
        if key not in cache:
            cache[key] = example_level_epsilon(noise_multiplier, history, batch_size, delta)
        eps.append(cache[key])
    steps = [sum(h.values()) for h in client_steps.values()]
    return {"level": "example", "mechanism": MECHANISM, "clip": clip, "noise_multiplier": noise_multiplier,
            "delta": delta, "batch_size": batch_size,
            "epsilon": max(eps) if eps else 0.0, "epsilon_median": float(np.median(eps)) if eps else 0.0,
            "clients_trained": len(eps), "max_local_steps": max(steps) if steps else 0,
            "accountant": ACCOUNTANT, "note": SAMPLING_NOTE}
