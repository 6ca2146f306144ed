"""NegGrad+ and NegGrad: gradient ascent on the forget set, with or without retain fine-tuning."""
from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F

from ..engine import Batch, PlannedBatch, RunContext
from .base import Hyper, UnlearningMethod, positive
from .registry import register_method


class RetainStream:
    """An endless stream of retain batches: successive shuffles of the retain set, cut into
    full-size batches, so that consecutive draws never repeat a sample until every retain sample
    has been drawn once (the authors' persistent ``retain_iterator``, restarted when exhausted)."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self.retain = ctx.split.retain
        self.buffer = torch.empty(0, dtype=torch.long)

    def take(self, n: int) -> torch.Tensor:
        n = min(n, len(self.retain))
        while len(self.buffer) < n:
            self.buffer = torch.cat([self.buffer, self.retain[self.ctx.permutation(len(self.retain))]])
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out


@register_method
class NegGradPlus(UnlearningMethod):
    """NegGrad+ ("advanced NegGrad"; Choi & Na, Towards Machine Unlearning Benchmarks: Forgetting
    the Personal Identities in Facial Recognition Systems, arXiv:2311.02240, 2023, after Golatkar et
    al., CVPR 2020; the SFTC paper's baseline NG+, section 5.3, refs. [3, 8]).

    An epoch is one pass over the shuffled forget set. Each forget batch is paired with a fresh
    retain batch of the run's batch size, drawn from a retain stream that carries over between
    epochs and reshuffles when exhausted, so no two steps see the same retain batch. The loss is

        CE(retain batch) - forget_weight * CE(forget batch)

    i.e. fine-tuning on the retain set while maximising the error on the forget set.

    Hyperparameters:
        forget_weight: weight of the (negated) forget term, default 1 (the plain difference, as in
            the authors' code). Kurmanji et al. write it as a convex combination α·CE_r − (1−α)·CE_f;
            ``forget_weight`` = (1−α)/α with the learning rate scaled by α gives theirs.

    Differences from the authors' code (``neg_grad.py``): the retain and forget batches go through
    the model in one forward pass (so, in train mode, batch-norm statistics are those of the
    combined batch, not of each half separately); the engine's single forward per step is what the
    method contract provides, and it is cheaper.

    Example::

        result = sftc.unlearn(model, split, method="neggrad+", epochs=2, lr=1e-4)
    """

    name = "neggrad+"
    label = "NG+"
    summary = "CE on a fresh retain batch minus CE on each forget batch"
    paper = ("Choi & Na, Towards Machine Unlearning Benchmarks, arXiv:2311.02240, 2023 "
             "(\"advanced NegGrad\"); Golatkar et al., CVPR 2020")
    hparams = {"forget_weight": Hyper(1.0, float, "weight of the negated forget cross-entropy",
                                      positive)}
    uses_retain = True

    def setup(self, ctx: RunContext) -> None:
        self.stream = RetainStream(ctx) if self.uses_retain and len(ctx.split.retain) else None

    def plan(self, ctx: RunContext, epoch: int) -> Iterator[PlannedBatch]:
        for forget in ctx.shuffled_batches(ctx.split.forget, phase="forget"):
            if self.stream is None:
                yield PlannedBatch(forget.index, torch.ones(len(forget.index), dtype=torch.long),
                                   "forget")
                continue
            retain = self.stream.take(ctx.batch_size)
            # retain rows first, then forget rows: the loss slices instead of masking
            yield PlannedBatch(torch.cat([retain, forget.index]),
                               torch.cat([torch.zeros(len(retain), dtype=torch.long),
                                          torch.ones(len(forget.index), dtype=torch.long)]),
                               "paired")

    def loss(self, ctx: RunContext, batch: Batch, logits: torch.Tensor) -> torch.Tensor:
        n_retain = len(batch.index) - batch.n_forget
        forget_ce = F.cross_entropy(logits[n_retain:], batch.y[n_retain:])
        if n_retain == 0:
            return -self.forget_weight * forget_ce
        return F.cross_entropy(logits[:n_retain], batch.y[:n_retain]) - self.forget_weight * forget_ce


@register_method
class NegGrad(NegGradPlus):
    """NegGrad: gradient ascent on the forget set only (Golatkar et al., Eternal Sunshine of the
    Spotless Net, CVPR 2020; the authors' ``neg_grad.py`` with ``advanced_neg_grad=False``).

    An epoch is one pass over the shuffled forget set; the loss of a batch is
    ``-forget_weight * CE(forget batch)``. The retain set is never read. Not a row of the SFTC
    paper's Table 1; offered because it is the ablation of NegGrad+ without its retain term.

    Hyperparameters:
        forget_weight: scale of the negated cross-entropy, default 1.

    Differences from the authors' code: none in the optimisation.

    Example::

        result = sftc.unlearn(model, split, method="neggrad", epochs=1, lr=1e-5)
    """

    name = "neggrad"
    label = "NG"
    summary = "Gradient ascent on the forget set only"
    paper = "Golatkar et al., Eternal Sunshine of the Spotless Net, CVPR 2020"
    hparams = {"forget_weight": Hyper(1.0, float, "scale of the negated forget cross-entropy",
                                      positive)}
    uses_retain = False
