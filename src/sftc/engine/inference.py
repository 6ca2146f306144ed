"""Forward passes without gradients: logits of a model on a subset, and cached teacher outputs."""
from __future__ import annotations

import time

import torch
from torch import nn

from ..data.protocol import Source
from ..errors import SftcError
from .inference_model import InferenceModel
from .options import Accel


@torch.no_grad()
def predict_logits(model: nn.Module, data: Source, index: torch.Tensor, device: torch.device,
                   batch_size: int = 512, accel: Accel | None = None,
                   record: dict | None = None) -> torch.Tensor:
    """Logits ``[len(index), C]`` of ``model`` (in eval mode) on the samples at ``index``, read
    through the data source (in memory, or streamed by its DataLoader workers).

    With ``accel`` the pass runs on an inference-only copy (batch norm folded into convolutions,
    the rule's layout and batch size: :class:`sftc.engine.inference_model.InferenceModel`),
    equal to the plain pass up to float rounding, and ``record`` (a dict) receives its choices.
    ``model`` is never changed."""
    if len(index) == 0:
        return torch.empty(0, data.num_classes, device=device)
    if accel is not None:
        fast = InferenceModel(model, data.batch(index[:2], device)[0], accel, device,
                              rows=len(index))
        out = fast.predict(lambda idx: data.batch(idx, device)[0], index, data.num_classes,
                           batches=lambda chunks: (x for x, _ in data.batches(chunks, device)))
        if record is not None:
            record.update(fast.record)
            record["trial_seconds"] = fast.trial_seconds
        return out
    was_training = model.training
    model.eval()
    chunks = [index[start:start + batch_size] for start in range(0, len(index), batch_size)]
    outputs = [model(x).float() for x, _ in data.batches(chunks, device)]
    model.train(was_training)
    return torch.cat(outputs)


class FrozenOutputs:
    """Outputs of a frozen model (the teacher), computed once per sample and looked up per batch.

    A frozen model's output on an un-augmented sample never changes, so the engine computes it
    once for the samples a method will ask about (``indices``) instead of every epoch (DESIGN.md,
    "teacher outputs on retain samples ... computed once"); in a data-parallel run
    (``parallel``) each rank computes a slice and all share the table. With augmentation on,
    every call runs the model on the batch as it is. Either way the model runs as an
    inference-only copy (:class:`sftc.engine.inference_model.InferenceModel`: batch norm folded
    into the convolutions, the rule's layout and batch size); ``record`` says what was chosen,
    and ``trial_seconds`` how long measure mode's trial took (0 under the rule).
    """

    def __init__(self, model: nn.Module, data: Source, indices: torch.Tensor | None,
                 device: torch.device, cache: bool, accel: Accel | None = None, parallel=None):
        started = time.perf_counter()
        self.cached = cache and indices is not None
        self._table: torch.Tensor | None = None
        self._row: torch.Tensor | None = None
        self.model: InferenceModel | None = None
        self.record: dict = {}
        accel = accel or Accel()
        if self.cached:
            indices = indices.to(device)
            if parallel is not None:  # each rank a slice, shared: computed once
                self._table = parallel.predict(indices, lambda idx: predict_logits(
                    model, data, idx, device, accel=accel, record=self.record))
            else:
                self._table = predict_logits(model, data, indices, device, accel=accel,
                                             record=self.record)
            self._row = torch.full((len(data),), -1, dtype=torch.long, device=device)
            self._row[indices] = torch.arange(len(indices), device=device)
        else:
            probe = indices if indices is not None and len(indices) else \
                torch.arange(min(len(data), 2))
            self.model = InferenceModel(model, data.batch(probe[:2], device)[0], accel, device)
            self.record = self.model.record
            self.record["trial_seconds"] = self.model.trial_seconds
        self.trial_seconds = self.record.pop("trial_seconds", 0.0)
        self.record["rows"] = len(indices) if self.cached else 0
        self.record["seconds"] = round(time.perf_counter() - started - self.trial_seconds, 3)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Logits for the batch. Cached: a table lookup, refused for a sample outside
        ``indices`` (it was never computed); uncached: a forward pass on ``x`` as given."""
        if self.cached:
            rows = self._row[index]
            if rows.device.type == "cpu":
                if bool((rows < 0).any()):
                    missing = int((rows < 0).sum())
                    raise SftcError(f"a frozen model's outputs were asked for {missing} sample(s) "
                                    "they were not computed on; pass every index the loss reads "
                                    "to ctx.frozen_outputs(model, indices)")
            else:   # no host sync in the step: the device asserts it
                torch._assert_async((rows >= 0).all(), "frozen outputs asked for a sample they "
                                                       "were not computed on")
            return self._table[rows]
        return self.model(x)
