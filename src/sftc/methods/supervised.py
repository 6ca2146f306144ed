"""Plain supervised training: the original model (on train) and the retrain oracle (on retain)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..engine import Batch, RunContext
from .base import Hyper, UnlearningMethod
from .registry import register


class Supervised(UnlearningMethod):
    """Cross-entropy over one subset of the split (``train`` or ``retain``), shuffled each epoch."""

    name = "supervised"
    sees_forget = True
    subset = "train"

    def plan(self, ctx: RunContext, epoch: int):
        return ctx.shuffled_batches(ctx.split.indices(self.subset))

    def loss(self, ctx: RunContext, batch: Batch, logits: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, batch.y)


class TrainOriginal(Supervised):
    """Train the original model M on D = D_r ∪ D_f (paper, section 5.2)."""

    name = "train"
    subset = "train"


@register
class Retrain(Supervised):
    """Retrain-from-scratch oracle M_R (paper, section 5.3): a freshly initialised model of the same
    architecture trained on the retain set only, with the original model's recipe (Adam, lr 1e-3,
    cosine annealing, batch 64, the same number of epochs). Never reads a forget sample.

    Hyperparameters:
        init_seed: seed of the fresh initialisation (default 0).
    """

    name = "retrain"
    label = "RT"
    summary = "Retrain from scratch on the retain set (the oracle)"
    paper = "the exact-unlearning reference used throughout the literature"
    hparams = {"init_seed": Hyper(0, int, "seed of the fresh initialisation")}
    sees_forget = False
    subset = "retain"

    def setup(self, ctx: RunContext) -> None:
        ctx.model = ctx.new_model(self.init_seed)

