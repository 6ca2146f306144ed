"""Bad-Teaching (Chundawat et al., AAAI 2023): a competent and an incompetent teacher."""
from __future__ import annotations

import torch

from ..engine import Batch, RunContext
from .base import Hyper, UnlearningMethod, positive, seed_range, union_with_flags
from .losses import kl_to_target
from .registry import register_method


@register_method
class BadTeaching(UnlearningMethod):
    """Bad-Teaching, BD (Chundawat, Tarun, Mandal, Kankanhalli: Can Bad Teaching Induce
    Forgetting? Unlearning in Deep Networks Using an Incompetent Teacher, AAAI 2023; baseline of
    the SFTC paper, section 5.3).

    Over the shuffled pseudo-labelled union of retain (b = 0) and forget (b = 1) samples, minimise
    KL(target ‖ student) with temperature τ averaged over the batch, where the target is the
    softmax of the frozen original model (the competent teacher) for retain samples and of a
    randomly initialised model of the same architecture (the incompetent teacher) for forget
    samples. No cross-entropy term.

    Hyperparameters:
        tau: KL temperature τ, default 1 (the SFTC paper keeps every KL temperature at one,
            section 5.5; the Bad-Teaching code also uses 1, the SFTC authors' code defaults to 4).
        init_seed: seed of the incompetent teacher's random initialisation, default 0.

    Both teachers are frozen, so without augmentation their outputs are computed once in setup:
    the original model on the retain samples only and the incompetent teacher on the forget
    samples only (each teacher's output on the other set is never read, so it is never computed).

    Differences from the authors' code: the loss is averaged per sample ("batchmean", as the SFTC
    authors' ``custom_kl_loss`` does; the Bad-Teaching code's default element-wise mean divides it
    by the number of classes too); the whole retain set is used, as the SFTC paper describes (the
    Bad-Teaching notebooks distil on a random subset of it); the incompetent teacher uses the
    architecture's own initialisation when the model is named (otherwise every module's
    ``reset_parameters``).

    Example::

        result = sftc.unlearn(model, split, method="bad-teaching", epochs=1, lr=1e-4,
                              model_name="resnet18")
    """

    name = "bad-teaching"
    label = "BD"
    summary = "KL to the original model (retain) and to a random model (forget)"
    paper = ("Chundawat et al., Can Bad Teaching Induce Forgetting? Unlearning in Deep Networks "
             "Using an Incompetent Teacher, AAAI 2023")
    hparams = {
        "tau": Hyper(1.0, float, "KL temperature τ", positive),
        "init_seed": Hyper(0, int, "seed of the incompetent teacher's random initialisation", seed_range),
    }
    needs_original = True

    def setup(self, ctx: RunContext) -> None:
        incompetent = ctx.frozen_copy(ctx.new_model(self.init_seed))
        self.good = ctx.frozen_outputs(ctx.original, ctx.split.retain)
        self.bad = ctx.frozen_outputs(incompetent, ctx.split.forget)
        self.index, self.flag = union_with_flags(ctx)

    def plan(self, ctx: RunContext, epoch: int):
        return ctx.shuffled_batches(self.index, self.flag, phase="union")

    def loss(self, ctx: RunContext, batch: Batch, logits: torch.Tensor) -> torch.Tensor:
        n = len(batch.index)
        if batch.n_forget == 0:
            target = self.good(batch.x, batch.index)
        elif batch.n_forget == n:
            target = self.bad(batch.x, batch.index)
        else:  # each teacher on its own rows only (a table holds only its own samples)
            is_forget = batch.flag.bool()
            target = torch.empty(logits.shape, dtype=torch.float32, device=logits.device)
            target[~is_forget] = self.good(batch.x[~is_forget], batch.index[~is_forget])
            target[is_forget] = self.bad(batch.x[is_forget], batch.index[is_forget])
        return kl_to_target(logits, target, self.tau)
