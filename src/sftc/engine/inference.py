"""Forward passes without gradients: logits of a model on a subset, and cached teacher outputs."""
from __future__ import annotations

import torch
from torch import nn

from ..data.source import Source


@torch.no_grad()
def predict_logits(model: nn.Module, data: Source, index: torch.Tensor, device: torch.device,
                   batch_size: int = 512) -> torch.Tensor:
    """Logits ``[len(index), C]`` of ``model`` (in eval mode) on the samples at ``index``."""
    was_training = model.training
    model.eval()
    chunks = [index[start:start + batch_size] for start in range(0, len(index), batch_size)]
    outputs = [model(x).float() for x, _ in data.batches(chunks, device)]
    model.train(was_training)
    if not outputs:
        return torch.empty(0, data.num_classes, device=device)
    return torch.cat(outputs)


class FrozenOutputs:
    """Outputs of a frozen model (the teacher), computed once per sample and looked up per batch.

    A frozen model's output on an un-augmented sample never changes, so the engine computes it
    once for the samples a method will ask about (``indices``) instead of every epoch (DESIGN.md,
    "teacher outputs on retain samples ... computed once"). With augmentation on, every call runs
    the model on the batch as it is.
    """

    def __init__(self, model: nn.Module, data: Source, indices: torch.Tensor | None,
                 device: torch.device, cache: bool, batch_size: int = 512):
        self.model = model
        self.cached = cache and indices is not None
        self._table: torch.Tensor | None = None
        self._row: torch.Tensor | None = None
        if self.cached:
            indices = indices.to(device)
            self._table = predict_logits(model, data, indices, device, batch_size)
            self._row = torch.full((len(data),), -1, dtype=torch.long, device=device)
            self._row[indices] = torch.arange(len(indices), device=device)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Logits for the batch. Cached: a table lookup (rows outside ``indices`` read row 0 and
        must be masked by the caller); uncached: a forward pass on ``x`` as given."""
        if self.cached:
            return self._table[self._row[index].clamp(min=0)]
        self.model.eval()
        return self.model(x).float()
