"""Ghost clipping (Li et al. 2022, after Goodfellow 2015): DP-SGD's per-example gradient norms without
materialising per-example gradients, for models built of Linear, LayerNorm and Embedding layers.

One batched forward records each layer's input; a first backward (activation gradients only, no weight
gradients) gives each layer's output gradient, from which every example's squared gradient norm is
computed layer by layer:
- Linear weight, inputs a_t and output gradients g_t over positions t: ||sum_t g_t a_t^T||^2 =
  sum_{t,t'} (a_t . a_t')(g_t . g_t') (the T x T Gram form, or the explicit d_out x d_in product when smaller);
  bias: ||sum_t g_t||^2;
- LayerNorm: weight sum_t g_t * xhat_t, bias sum_t g_t (xhat: the normalised input);
- Embedding: the rows of the example's distinct token ids, each the sum of its positions' gradients.
A second backward of sum_b c_b * loss_b, c_b = min(1, C / norm_b), then gives the sum of clipped
per-example gradients directly. Cost: one forward and about 1.5 backwards more than a plain step, instead of
B per-example gradients the size of the model.

Used for text classification (per-example loss = cross-entropy of the example) when every trainable parameter
sits in one of those layers and none is shared between layers; other models use the torch.func engine
(dp_sgd.PerExampleGrads), which gives the same result.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..tasks.base import Task
from .dp_sgd import PerExampleGrads, clip_factors

SUPPORTED = (torch.nn.Linear, torch.nn.LayerNorm, torch.nn.Embedding)


def ghost_supported(task: Task, model: torch.nn.Module, params: list[torch.nn.Parameter]) -> bool:
    """Whether ghost clipping applies: classification, only supported layers own parameters, no sharing."""
    if task.family != "text_classification" or getattr(getattr(model, "config", None), "problem_type",
                                                           None) not in (None, "single_label_classification"):
        return False
    wanted = {id(p) for p in params}
    owned: list[int] = []
    for module in model.modules():
        own = [p for p in module.parameters(recurse=False) if id(p) in wanted]
        if not own:
            continue
        if not isinstance(module, SUPPORTED) or (isinstance(module, torch.nn.Embedding) and module.max_norm):
            return False
        owned += [id(p) for p in own]
    return sorted(owned) == sorted(wanted) and len(set(owned)) == len(owned)


class GhostClipping:
    """Sum of per-example clipped gradients of a classification loss, by ghost norms and a reweighted backward."""

    def __init__(self, task: Task, model: torch.nn.Module, params: list[torch.nn.Parameter],
                 precision: str = "fp32") -> None:
        self.task, self.model, self.params, self.precision = task, model, params, precision
        wanted = {id(p) for p in params}
        self.layers = [m for m in model.modules() if any(id(p) in wanted for p in m.parameters(recurse=False))]
        self._records: list[tuple[torch.nn.Module, torch.Tensor, torch.Tensor]] = []
        self._recording, self._batch = False, 0
        self._unsupported: str | None = None  # why the batched norms would be wrong (then: the torch.func engine)
        self._fallback = None

    def _hook(self, module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
        if not (self._recording and isinstance(output, torch.Tensor) and output.requires_grad):
            return None
        x, n = inputs[0].detach(), self._batch
        if output.shape[0] == 1 and n > 1:
            # a layer run once for the whole batch and broadcast later (BERT's position embeddings): an expanded
            # view has the per-example gradients (the broadcast's values are unchanged)
            output, x = output.expand(n, *output.shape[1:]), x.expand(n, *x.shape[1:])
        elif output.shape[0] != n:
            self._unsupported = f"{type(module).__name__} output of batch size {output.shape[0]}, not {n}"
        self._records.append((module, x, output))
        return output

    def _forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-example losses of one batched forward, recording every parameterised layer's input and output."""
        from .client import autocast

        handles = [m.register_forward_hook(self._hook) for m in self.layers]
        self._records, self._recording = [], True
        self._batch = len(batch["input_ids"])
        try:
            device = next(iter(batch.values())).device
            with autocast(device, self.precision):
                logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            return F.cross_entropy(logits.float(), batch["labels"], reduction="none")
        finally:
            self._recording = False
            for h in handles:
                h.remove()

    @staticmethod
    def _sq_norms(module: torch.nn.Module, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Each example's squared gradient norm over this layer's parameters, from its input x and output grad g."""
        n = g.shape[0]
        if isinstance(module, torch.nn.Embedding):
            ids = x.reshape(n, -1)
            gr = g.reshape(n, ids.shape[1], -1).float()
            if module.padding_idx is not None:
                gr = gr * (ids != module.padding_idx).unsqueeze(-1)
            keys, inverse = torch.unique((torch.arange(n, device=ids.device).unsqueeze(1) * module.num_embeddings
                                          + ids).reshape(-1), return_inverse=True)
            rows = gr.new_zeros(len(keys), gr.shape[-1]).index_add_(0, inverse, gr.reshape(-1, gr.shape[-1]))
            return gr.new_zeros(n).index_add_(0, keys // module.num_embeddings, rows.pow(2).sum(1))
        a = x.reshape(n, -1, x.shape[-1]).float()
        gr = g.reshape(n, -1, g.shape[-1]).float()
        if isinstance(module, torch.nn.LayerNorm):
            xhat = F.layer_norm(a, module.normalized_shape, eps=module.eps)
            sq = torch.zeros(n, device=g.device)
            if module.weight is not None:
                sq = sq + (gr * xhat).sum(1).pow(2).sum(1)
            if module.bias is not None:
                sq = sq + gr.sum(1).pow(2).sum(1)
            return sq
        steps, d_in, d_out = a.shape[1], a.shape[2], gr.shape[2]
        if steps * steps <= d_in * d_out:
            sq = (torch.bmm(a, a.transpose(1, 2)) * torch.bmm(gr, gr.transpose(1, 2))).sum((1, 2))
        else:
            sq = torch.bmm(gr.transpose(1, 2), a).pow(2).sum((1, 2))
        if module.bias is not None:
            sq = sq + gr.sum(1).pow(2).sum(1)
        return sq

    def clipped_sum(self, batch: dict[str, torch.Tensor], clip: float) -> tuple[list[torch.Tensor], torch.Tensor,
                                                                               torch.Tensor]:
        """(sum over examples of each gradient clipped to norm `clip`, per param; per-example norms; losses)."""
        if self._fallback is not None:
            return self._fallback.clipped_sum(batch, clip)
        losses = self._forward(batch)
        layers = [id(m) for m, _, _ in self._records]
        if len(set(layers)) != len(layers):  # a layer applied twice: its per-example gradient sums two terms
            self._unsupported = "a layer is applied more than once per forward"
        if self._unsupported is not None:
            self._records = []
            self._fallback = PerExampleGrads(self.task, self.model, self.params, self.precision)
            return self._fallback.clipped_sum(batch, clip)
        outputs = [out for _, _, out in self._records]
        grads = torch.autograd.grad(losses.sum(), outputs, retain_graph=True, allow_unused=True)
        sq = torch.zeros(len(losses), device=losses.device)
        for (module, x, _), g in zip(self._records, grads):
            if g is not None:
                sq = sq + self._sq_norms(module, x, g)
        norms = sq.sqrt()
        factors = clip_factors(norms, clip).detach()
        sums = torch.autograd.grad((losses * factors).sum(), self.params, allow_unused=True)
        self._records = []
        return ([torch.zeros_like(p) if g is None else g.float() for g, p in zip(sums, self.params)], norms.detach(),
                losses.detach())


def make_engine(task: Task, model: torch.nn.Module, params: list[torch.nn.Parameter], precision: str = "fp32"):
    """The fastest exact per-example clipping engine for this model: ghost clipping where it applies, else
    per-example gradients vectorised with torch.func."""
    if ghost_supported(task, model, params):
        return GhostClipping(task, model, params, precision)
    return PerExampleGrads(task, model, params, precision)
