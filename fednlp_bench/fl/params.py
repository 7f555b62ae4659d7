"""One flat vector behind all trainable parameters: O(1) model copies and vector aggregation."""
from __future__ import annotations

import torch


class FlatParams:
    """Re-points every trainable parameter of `model` at a slice of one flat tensor.

    Loading global weights is then a single `copy_`, reading them a single `clone`,
    whatever the number of clients. Call after the model is on its device.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.params = [p for p in model.parameters() if p.requires_grad]
        total = sum(p.numel() for p in self.params)
        first = self.params[0]
        self.flat = torch.empty(total, dtype=first.dtype, device=first.device)
        self.views: list[torch.Tensor] = []
        offset = 0
        with torch.no_grad():
            for p in self.params:
                n = p.numel()
                view = self.flat[offset : offset + n].view_as(p)
                view.copy_(p.data)
                p.data = view
                self.views.append(view)
                offset += n

    @property
    def numel(self) -> int:
        return self.flat.numel()

    @property
    def nbytes(self) -> int:
        return self.flat.numel() * self.flat.element_size()

    def get(self) -> torch.Tensor:
        """A copy of the current weights as one vector."""
        return self.flat.detach().clone()

    def set_(self, vector: torch.Tensor) -> None:
        """Load weights from a vector, in place."""
        with torch.no_grad():
            self.flat.copy_(vector)

    def split(self, vector: torch.Tensor) -> list[torch.Tensor]:
        """Views of `vector` shaped like each parameter."""
        out, offset = [], 0
        for p in self.params:
            n = p.numel()
            out.append(vector[offset : offset + n].view_as(p))
            offset += n
        return out
