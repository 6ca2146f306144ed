"""Plain supervised training: the original model (on train) and the retrain oracle (on retain)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..engine import Batch, RunContext
from ..recipes import TRAIN_EPOCHS, TRAIN_LR
from .base import Hyper, UnlearningMethod, seed_range


class Supervised(UnlearningMethod):
    """Cross-entropy over one subset of the split (``train`` or ``retain``), shuffled each epoch."""

    name = "supervised"
    sees_forget = True
    subset = "train"

    def plan(self, ctx: RunContext, epoch: int):
        return ctx.shuffled_batches(ctx.split.indices(self.subset))

    def loss(self, ctx: RunContext, batch: Batch, logits: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, batch.y)


class Training(Supervised):
    """Supervised training with the paper's recipe by default (section 5.2: 30 epochs, Adam at
    1e-3, cosine annealing): the original model's and the oracle's, not fine-tuning's."""

    name = "training"
    default_epochs = TRAIN_EPOCHS
    default_lr = TRAIN_LR
    default_scheduler = "cosine"


class TrainOriginal(Training):
    """Train the original model M on D = D_r ∪ D_f (paper, section 5.2)."""

    name = "train"
    subset = "train"


class TrainOnRetain(Training):
    """Train a given (fresh) model on D_r only: the oracle's training, without re-initialising."""

    name = "train-on-retain"
    subset = "retain"


class Retrain(Training):  # registered last in methods/__init__.py (the oracle closes the list)
    """Retrain-from-scratch oracle, RT (the SFTC paper, section 5.3; the exact-unlearning reference
    of the literature, e.g. Bourtoule et al., IEEE S&P 2021).

    A freshly initialised model of the same architecture (the input model's weights are discarded)
    trained with cross-entropy on the retain set only, each epoch one pass over the shuffled retain
    set. Never reads a forget sample. It is meant to be run with the original model's recipe
    (section 5.2: Adam, lr 1e-3, cosine annealing, batch 64, the same number of epochs): its
    ``default_epochs``, ``default_lr`` and ``default_scheduler`` say so, and :func:`sftc.api.unlearn`
    uses them for whatever the caller leaves out (30 epochs, lr 1e-3, cosine);
    :func:`sftc.retrain` / ``sftc train --subset retain`` use the same recipe. ``fresh_start``
    marks it as the oracle: the benchmark makes it the RT reference row, not a ranked method.

    Hyperparameters:
        init_seed: seed of the fresh initialisation, default 0. The architecture's own
            initialisation is used when the model is named (``model_name``); otherwise every
            module's ``reset_parameters``.

    Differences from the authors' code: none in the optimisation (their training script without
    the forget samples; data augmentation only when the run asks for it).

    Example::

        oracle = sftc.unlearn(model, split, method="retrain", epochs=30, lr=1e-3,
                              model_name="resnet18")
    """

    name = "retrain"
    label = "RT"
    summary = "Retrain from scratch on the retain set (the oracle)"
    paper = "retrain from scratch without the forget set (the oracle of Perifanis et al., EICC 2024, 5.3)"
    hparams = {"init_seed": Hyper(0, int, "seed of the fresh initialisation", seed_range)}
    sees_forget = False
    fresh_start = True
    subset = "retain"

    def setup(self, ctx: RunContext) -> None:
        ctx.model = ctx.new_model(self.init_seed)

