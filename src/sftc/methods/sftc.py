"""SFTC: Selective Fine-tuning and Targeted Confusion (Perifanis et al., EICC 2024, section 4)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..engine import Batch, RunContext
from .base import Hyper, UnlearningMethod, in_unit_interval, positive, union_with_flags
from .registry import register_method

MAX_DRAWS = 32  # U(0.5, 1) draws per row; their sum (>= 16) exceeds any gap below |N(0,1)| = 16


def biased_random_logits(targets: torch.Tensor, num_classes: int, c: float,
                         n_relabel: int | None = None,
                         eligible: torch.Tensor | None = None) -> torch.Tensor:
    """The biased random output generator M_b of section 4, vectorised over the batch.

    Each row starts as |N(0, 1)| per class. With ``c = 1`` it stays fully random. Otherwise a
    fraction ``c`` of the rows (``n_relabel`` of them, at least one when ``0 < c < 1``, as the
    authors' code does) is relabelled to uniformly random classes, and each row is biased toward
    its (possibly new) label by adding U(0.5, 1) to that class until it is the largest. The
    additions are drawn at once and the first cumulative sum that crosses the gap is taken, which
    is the same distribution as the authors' per-sample ``while`` loop.

    ``eligible`` (bool per row) restricts relabelling to those rows, so that a whole mixed batch
    can be generated at once without a device sync; ``n_relabel`` then counts eligible rows.
    """
    n, device = targets.shape[0], targets.device
    out = torch.randn(n, num_classes, device=device).abs()
    if c >= 1.0 or n == 0:
        return out
    targets = targets.clone()
    if c > 0.0:
        k = n_relabel if n_relabel is not None else max(int(n * c), 1)
        scores = torch.rand(n, device=device)
        if eligible is not None:
            scores = torch.where(eligible, scores, torch.full_like(scores, 2.0))
        chosen = scores.topk(min(k, n), largest=False).indices
        targets[chosen] = torch.randint(0, num_classes, (len(chosen),), device=device)
    column = targets.unsqueeze(1)
    current = out.gather(1, column).squeeze(1)
    others = out.scatter(1, column, float("-inf")).max(1).values
    gap = others - current  # must add strictly more than this to make the label the largest
    draws = torch.empty(n, MAX_DRAWS, device=device).uniform_(0.5, 1.0).cumsum(1)
    first = (draws > gap.unsqueeze(1)).float().argmax(1, keepdim=True)
    added = torch.where(gap >= 0, draws.gather(1, first).squeeze(1), torch.zeros_like(gap))
    return out.scatter_add(1, column, added.unsqueeze(1))


def sftc_loss(student_logits: torch.Tensor, labels: torch.Tensor, flag: torch.Tensor,
              teacher_logits: torch.Tensor, generator_logits: torch.Tensor,
              tau: float = 1.0) -> torch.Tensor:
    """L_SFTC = CE_r + KL (Eq. 3).

    CE_r (Eq. 1) is the mean cross-entropy over the retain rows (b = 0) of the batch (0 if none).
    KL (Eq. 2) is KL(target || student) with temperature ``tau`` averaged over the whole batch,
    where the target is softmax(teacher / tau) for b = 0 rows and softmax(generator / tau) for
    b = 1 rows. Rows of ``teacher_logits`` with b = 1 and of ``generator_logits`` with b = 0 are
    ignored.
    """
    is_forget = flag.bool()
    retain_weight = (~is_forget).float()
    ce = F.cross_entropy(student_logits, labels, reduction="none")
    ce_retain = (ce * retain_weight).sum() / retain_weight.sum().clamp(min=1.0)
    target_logits = torch.where(is_forget.unsqueeze(1), generator_logits, teacher_logits)
    target = F.softmax(target_logits / tau, dim=1)
    kl = F.kl_div(F.log_softmax(student_logits / tau, dim=1), target, reduction="batchmean")
    return ce_retain + kl


@register_method
class SFTC(UnlearningMethod):
    """SFTC (Perifanis, Karypidis, Komodakis, Efraimidis; EICC 2024).

    Over the shuffled pseudo-labelled union of retain (b = 0) and forget (b = 1) samples, minimise
    cross-entropy on the retain samples plus KL to the frozen original model on retain samples
    and to the biased random generator on forget samples (Eq. 1-3).

    Hyperparameters:
        tau: KL temperature τ, default 1 (the paper's text; the authors' code defaults to 4).
        c: confusion fraction in [0, 1], default 0 (bias every forget sample toward its label).

    The teacher's outputs on retain samples are computed once in ``setup`` when no augmentation is
    applied, and the teacher never runs on forget samples (their targets come from the generator).

    Example::

        result = sftc.unlearn(model, split, method="sftc", epochs=3, lr=5e-4, c=0.0)
    """

    name = "sftc"
    label = "SFTC"
    summary = "Selective fine-tuning + targeted confusion with a biased random generator (ours)"
    paper = "Perifanis et al., SFTC: Machine Unlearning via Selective Fine-tuning and Targeted Confusion, EICC 2024"
    hparams = {
        "tau": Hyper(1.0, float, "KL temperature τ", positive),
        "c": Hyper(0.0, float, "confusion fraction: share of forget samples relabelled at random",
                   in_unit_interval),
    }
    needs_original = True

    def setup(self, ctx: RunContext) -> None:
        self.teacher = ctx.frozen_outputs(ctx.original, ctx.split.retain)
        self.index, self.flag = union_with_flags(ctx)
        self.targets = None
        if self.teacher.cached:
            # Retain targets softmax(teacher / τ) never change: computed once, rows by dataset index.
            device, n = ctx.device, len(ctx.data)
            retain = ctx.split.retain.to(device)
            self.labels = ctx.data.labels.to(device)
            self.targets = torch.zeros(n, ctx.num_classes, device=device)
            self.targets[retain] = F.softmax(self.teacher(None, retain) / self.tau, dim=1)
            self.is_retain = torch.zeros(n, device=device)
            self.is_retain[retain] = 1.0

    def plan(self, ctx: RunContext, epoch: int):
        batches = list(ctx.shuffled_batches(self.index, self.flag, phase="union"))
        if self.targets is not None:
            self._prepare_epoch(ctx, batches)
        return batches

    def _prepare_epoch(self, ctx: RunContext, batches) -> None:
        """Draw this epoch's generator targets for every forget sample at once and fold Eq. 1-2
        into per-sample coefficients, so that a batch's loss is one weighted log-softmax sum.

        Every forget sample appears once per epoch, so one draw per sample per epoch is the same
        distribution as the authors' per-batch draws; with 0 < c < 1 the relabelled samples are
        still chosen per batch: max(int(c * forget rows in the batch), 1) of them.
        """
        device, c = ctx.device, self.c
        counts = [int(b.flag.sum()) for b in batches]
        forget = torch.cat([b.index[b.flag == 1] for b in batches]).to(device)
        if len(forget):
            targets = self.labels[forget].clone()
            if 0 < c < 1:
                targets = _relabel_per_batch(targets, counts, c, ctx.num_classes)
            generated = biased_random_logits(targets, ctx.num_classes, 1.0 if c >= 1 else 0.0)
            self.targets[forget] = F.softmax(generated / self.tau, dim=1)
        sizes = torch.tensor([len(b.index) for b in batches], dtype=torch.float32)
        retain_sizes = sizes - torch.tensor(counts, dtype=torch.float32)
        order = torch.cat([b.index for b in batches]).to(device)
        per_row = lambda v: torch.repeat_interleave(v, sizes.long()).to(device)  # noqa: E731
        self.kl_weight = torch.zeros(len(ctx.data), device=device)
        self.ce_weight = torch.zeros(len(ctx.data), device=device)
        self.kl_weight[order] = 1.0 / per_row(sizes)
        self.ce_weight[order] = self.is_retain[order] / per_row(retain_sizes.clamp(min=1.0))
        # Σ t·log t per row, scaled: the constant part of the KL, so the loss value is the KL itself
        self.kl_const = self.kl_weight * torch.xlogy(self.targets, self.targets).sum(1)
        if self.tau == 1.0:  # CE and KL share log p: fold both into one soft target per row
            self.combined = self.kl_weight.unsqueeze(1) * self.targets
            self.combined.scatter_add_(1, self.labels.unsqueeze(1), self.ce_weight.unsqueeze(1))

    def loss(self, ctx: RunContext, batch: Batch, logits: torch.Tensor) -> torch.Tensor:
        if self.targets is not None:
            return self._fused_loss(batch, logits)
        return self._loss_with_live_teacher(ctx, batch, logits)

    def _fused_loss(self, batch: Batch, logits: torch.Tensor) -> torch.Tensor:
        """Eq. 3 from the epoch's precomputed targets: CE_r + KL =
        -Σ_i ce_w_i·log p_i[y_i] + Σ_i kl_w_i·(Σ_c t_ic·log t_ic - Σ_c t_ic·log p^τ_ic)."""
        index = batch.index
        if self.tau == 1.0:
            log_p = F.log_softmax(logits, dim=1)
            return self.kl_const[index].sum() - (self.combined[index] * log_p).sum()
        log_p_tau = F.log_softmax(logits / self.tau, dim=1)
        kl = self.kl_const[index].sum() - (self.kl_weight[index].unsqueeze(1)
                                           * self.targets[index] * log_p_tau).sum()
        log_p = F.log_softmax(logits, dim=1)
        ce = -(self.ce_weight[index] * log_p.gather(1, batch.y.unsqueeze(1)).squeeze(1)).sum()
        return ce + kl

    def _loss_with_live_teacher(self, ctx: RunContext, batch: Batch,
                                logits: torch.Tensor) -> torch.Tensor:
        """With augmentation the teacher runs on each batch as augmented (retain rows only) and
        the generator draws per batch, as in the authors' code."""
        is_forget = batch.flag.bool()
        n_retain = len(batch.index) - batch.n_forget
        teacher = torch.zeros_like(logits, dtype=torch.float32)
        if n_retain:
            teacher[~is_forget] = self.teacher(batch.x[~is_forget], batch.index[~is_forget])
        if batch.n_forget:
            k = max(int(batch.n_forget * self.c), 1) if 0 < self.c < 1 else 0
            generated = biased_random_logits(batch.y, ctx.num_classes, self.c, k, eligible=is_forget)
        else:
            generated = teacher
        return sftc_loss(logits, batch.y, batch.flag, teacher, generated, self.tau)


def _relabel_per_batch(labels: torch.Tensor, counts: list[int], c: float,
                       num_classes: int) -> torch.Tensor:
    """Relabel max(int(c·n_b), 1) uniformly chosen forget samples of every batch b (of n_b forget
    samples; ``labels`` lists the epoch's forget samples batch by batch) to random classes."""
    device = labels.device
    sizes = torch.tensor(counts, device=device)
    keep = sizes > 0
    sizes, k = sizes[keep], torch.tensor([max(int(n * c), 1) for n in counts if n], device=device)
    batch_of = torch.repeat_interleave(torch.arange(len(sizes), device=device), sizes)
    order = torch.argsort(batch_of + torch.rand(len(labels), device=device))  # shuffled in batch
    starts = torch.cumsum(sizes, 0) - sizes
    rank = torch.arange(len(labels), device=device) - torch.repeat_interleave(starts, sizes)
    chosen = order[rank < torch.repeat_interleave(k, sizes)]
    labels = labels.clone()
    labels[chosen] = torch.randint(0, num_classes, (len(chosen),), device=device)
    return labels
