"""SCRUB (Kurmanji et al., NeurIPS 2023): alternating max-steps on forget, min-steps on retain."""
from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from ..engine import Batch, RunContext
from .base import Hyper, UnlearningMethod, non_negative_int, positive
from .losses import kl_to_target
from .registry import register_method


def non_negative(value) -> str | None:
    return None if value >= 0 else "must be 0 or more"


@register_method
class SCRUB(UnlearningMethod):
    """SCRUB (Kurmanji, Triantafillou, Triantafillou: Towards Unbounded Machine Unlearning,
    NeurIPS 2023; baseline of the SFTC paper, section 5.3).

    The student starts as the original model, which also serves as the frozen teacher. Each epoch
    ``e`` (counted from 1) with ``e <= msteps`` first makes a max-step pass over the shuffled
    forget set, minimising ``-τ²·KL(teacher ‖ student)`` (moving away from the teacher on forget
    samples), and then a min-step pass over the shuffled retain set, minimising
    ``γ·CE + α·τ²·KL(teacher ‖ student)``. Later epochs make the min-step pass only.

    Hyperparameters (defaults: the SCRUB authors' published setting, their notebooks' ``args``):
        msteps: number of leading epochs with a max-step pass, default 2.
        alpha: weight α of the KL term of the min-step, default 0.001.
        gamma: weight γ of the cross-entropy of the min-step, default 0.99.
        tau: distillation temperature τ, default 4 (the SCRUB code's ``kd_T``). The SFTC paper
            states a KL temperature of one for every method (section 5.5); pass ``tau=1`` to
            follow it.

    KL terms are Hinton's distillation loss as in the SCRUB code: batch-mean KL of the
    temperature-scaled distributions, times τ². The teacher is frozen, so without augmentation its
    outputs are computed once in setup, on the forget samples only when a max-step will run and on
    the retain samples only when α > 0.

    Differences from the authors' code: the run's recipe (optimizer, learning rate, batch size,
    epochs) applies to both passes, as in the SFTC paper, where the SCRUB code uses SGD with its own
    learning-rate decay and smaller forget batches; epochs are counted from 1, so max-steps run in
    exactly ``msteps`` epochs (the SCRUB script's ``epoch <= msteps`` over 0-based epochs runs one
    more); the unused options of the SCRUB code (``beta`` for other distillation losses, label
    ``smoothing`` and the SWA model, which starts after epoch 10) are left out. The SFTC authors'
    own SCRUB uses γ = α = 1 and runs a max-step pass every epoch.

    Example::

        result = sftc.unlearn(model, split, method="scrub", epochs=3, lr=5e-4, msteps=2)
    """

    name = "scrub"
    label = "SCRUB"
    summary = "Max-steps from the teacher on forget, then min-steps on retain"
    paper = "Kurmanji et al., Towards Unbounded Machine Unlearning, NeurIPS 2023"
    hparams = {
        "msteps": Hyper(2, int, "number of leading epochs with a max-step pass over the forget set",
                        non_negative_int),
        "alpha": Hyper(0.001, float, "weight α of the KL term in the min-step", non_negative),
        "gamma": Hyper(0.99, float, "weight γ of the cross-entropy in the min-step", non_negative),
        "tau": Hyper(4.0, float, "distillation temperature τ (kd_T)", positive),
    }
    needs_original = True

    def setup(self, ctx: RunContext) -> None:
        split = ctx.split
        maximises = min(self.msteps, ctx.epochs) > 0 and len(split.forget) > 0
        needed = [part for part, used in ((split.forget, maximises), (split.retain, self.alpha > 0))
                  if used]
        index = torch.cat(needed) if needed else None
        self.teacher = ctx.frozen_outputs(ctx.original, index) if needed else None

    def plan(self, ctx: RunContext, epoch: int):
        retain = ctx.shuffled_batches(ctx.split.retain, phase="min")
        if epoch <= self.msteps:
            return itertools.chain(ctx.shuffled_batches(ctx.split.forget, phase="max"), retain)
        return retain

    def loss(self, ctx: RunContext, batch: Batch, logits: torch.Tensor) -> torch.Tensor:
        scale = self.tau ** 2
        if batch.phase == "max":
            return -scale * kl_to_target(logits, self.teacher(batch.x, batch.index), self.tau)
        loss = self.gamma * F.cross_entropy(logits, batch.y)
        if self.alpha > 0:
            teacher = self.teacher(batch.x, batch.index)
            loss = loss + self.alpha * scale * kl_to_target(logits, teacher, self.tau)
        return loss
