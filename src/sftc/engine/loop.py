"""The epoch loop shared by training, the oracle and every unlearning method.

:func:`run` prepares a run (a copy of the model on the device, the method's setup, the speed
choices of :mod:`sftc.engine.tuning`, the optimizer, the ranks of a data-parallel job when asked
for) and hands the epoch loop a step (:mod:`sftc.engine.steps`); the loop only loads the planned
batches, calls the step, guards against a diverged loss, times and records.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from ..data import Split
from ..errors import DivergedError, SftcError
from ..recipes import TRAIN_EPOCHS, TRAIN_LR
from . import tuning
from .context import Batch, Method, PlannedBatch, RunContext
from .data_parallel import DataParallel
from .device import Stopwatch, import_lazy_torch, resolve_device
from .inference import predict_logits
from .numerics import numerics_identity
from .options import Accel
from .steps import Step, make_step
from .tuning import StepPlan

if TYPE_CHECKING:
    from .process_group import Job

NAN_CHECK_EVERY = 20  # steps between checks of the running loss (a check syncs the device)


@dataclass
class Recipe:
    """Optimisation settings of one run. The defaults are the paper's training recipe (section 5.2:
    Adam, lr 1e-3, cosine annealing, batch 64); unlearning runs use ``scheduler="constant"`` so that
    the model after epoch e of a 4-epoch run is the model of an e-epoch run (see README)."""

    epochs: int = TRAIN_EPOCHS
    lr: float = TRAIN_LR
    batch_size: int = 64
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9
    scheduler: str = "cosine"
    augment: bool = False
    seed: int = 0
    device: str = "auto"
    accel: Accel = field(default_factory=Accel)  # speed choices (the rule); Accel.plain(): none

    def validate(self) -> None:
        if self.epochs < 0:
            raise SftcError(f"--epochs must be 0 or more, got {self.epochs}")
        if not 0 <= self.seed < 2 ** 32:
            raise SftcError(f"--seed must be a whole number 0 .. {2 ** 32 - 1}, got {self.seed}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise SftcError(f"--lr must be a positive number, got {self.lr}")
        if self.batch_size < 1:
            raise SftcError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.optimizer not in ("adam", "sgd"):
            raise SftcError(f"unknown optimizer {self.optimizer!r}; use adam or sgd")
        if self.scheduler not in ("cosine", "constant"):
            raise SftcError(f"unknown scheduler {self.scheduler!r}; use cosine or constant")
        if isinstance(self.accel, dict):
            self.accel = Accel(**self.accel)
        self.accel.validate()


@dataclass
class History:
    """Per-epoch rows (epoch 0 = the starting model when accuracies are tracked) and timings.

    ``seconds`` is the wall time of the method itself (setup and optimisation), without the
    accuracy tracking that the caller asked for and without measure mode's trials. ``accel``
    records the speed choices the run made and how (``train``: the step; ``inference``: frozen
    models' passes; ``trial_seconds``: the trials' time, measure mode only; see
    :mod:`sftc.engine.rule` and :mod:`sftc.engine.tuning`)."""

    rows: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    setup_seconds: float = 0.0
    accel: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def optimizer_for(params: list[nn.Parameter], recipe: Recipe,
                  fused: bool = False) -> torch.optim.Optimizer:
    """The recipe's optimizer; ``fused``: PyTorch's single-kernel implementation (same update)."""
    extra = {"fused": True} if fused else {}
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum,
                               weight_decay=recipe.weight_decay, **extra)
    return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay, **extra)


StepFactory = Callable[..., Step]


def track_accuracies(model: nn.Module, split: Split, subsets: Sequence[str],
                     device: torch.device, parallel: DataParallel | None = None) -> dict:
    """Accuracy on each named subset (with ``parallel``: each rank scores a slice, shared)."""
    out = {}
    for name in subsets:
        index = split.indices(name).to(device)
        if len(index) == 0:
            continue
        if parallel is not None:
            logits = parallel.predict(index, lambda idx: predict_logits(model, split.data, idx,
                                                                        device))
        else:
            logits = predict_logits(model, split.data, index, device)
        labels = split.data.labels[index.to(split.data.labels.device)].to(device)
        out[f"acc_{name}"] = float((logits.argmax(1) == labels).float().mean())
    return out


def run(method: Method, model: nn.Module, split: Split, recipe: Recipe, *,
        track: Sequence[str] = (), progress: bool = True, desc: str | None = None,
        on_epoch_end: Callable[[int, nn.Module, dict], None] | None = None,
        fresh_model: Callable[[int], nn.Module] | None = None, parallel: "Job | None" = None,
        step_factory: StepFactory | None = None) -> tuple[nn.Module, History]:
    """Run ``method`` on ``model`` for ``recipe.epochs`` epochs and return the result and history.

    The model passed in is not modified: the run works on a copy. ``track`` names subsets
    (retain/forget/val/test/train) whose accuracy is recorded before the first and after every
    epoch; ``on_epoch_end(epoch, model, row)`` is called after each epoch (outside the timing)
    with the model being trained, as the run's speed choices left it (its layout, and modules
    whose class :mod:`sftc.engine.rewrites` or the linear convolutions switched: the same values;
    its state dict and pickling are unchanged);
    ``fresh_model(seed)`` builds a newly initialised model of the same architecture (retrain, EU-k).

    ``parallel``: a job of several ranks (:func:`sftc.engine.process_group.job`) spreads the run
    over them (DDP; :mod:`sftc.engine.data_parallel`): every rank must make the same call, and
    every rank returns the same model. ``step_factory(method, ctx, optimizer, plan, parallel)``
    builds the optimisation step (default :func:`sftc.engine.steps.make_step`).
    """
    recipe.validate()
    device = resolve_device(recipe.device)
    import_lazy_torch()   # a one-off of the process, before any clock runs
    ranks = DataParallel.for_run(parallel, recipe.batch_size, device, recipe.seed)
    ctx = _context(model, split, recipe, device, fresh_model, ranks)
    label = desc or getattr(method, "name", "run")
    history, clock = History(), Stopwatch(device)
    with clock:
        if getattr(method, "needs_original", False):
            ctx.original = ctx.frozen_copy(ctx.model)
        method.setup(ctx)
    history.setup_seconds = clock.total - ctx.trial_seconds
    with clock:
        optimizer, plan, step = _prepare(method, ctx, recipe, label, step_factory)
    if track:
        history.rows.append({"epoch": 0, **track_accuracies(ctx.model, split, track, device,
                                                            ranks)})
    _epochs(method, ctx, recipe, optimizer, step, clock, history, track, progress, label,
            on_epoch_end)
    history.seconds = clock.total - ctx.trial_seconds
    history.accel = _accel_record(ctx, plan)
    if ranks is not None:
        ranks.unwrap(ctx.model)
    tuning.restore(ctx.model)
    ctx.model.eval()
    return ctx.model, history


def _context(model: nn.Module, split: Split, recipe: Recipe, device: torch.device,
             fresh_model, ranks: DataParallel | None) -> RunContext:
    """The run's state: a copy of ``model`` on the device, the recipe's generator and options
    (in a data-parallel run measure mode gives way to the rule, which every rank shares)."""
    import copy

    accel, notes = recipe.accel, []
    if ranks is not None and accel.measuring:
        accel = replace(accel, mode="rule")
        notes.append("measure mode is not used across ranks (a timing could decide differently "
                     "on each): the rule decided")
    torch.manual_seed(recipe.seed)
    if device.type == "cuda":
        split.data.to(device)
    return RunContext(model=copy.deepcopy(model).to(device), split=split, device=device,
                      batch_size=recipe.batch_size, augment=recipe.augment,
                      generator=torch.Generator().manual_seed(recipe.seed), epochs=recipe.epochs,
                      fresh_model=fresh_model, accel=accel, parallel=ranks, accel_notes=notes)


def _prepare(method: Method, ctx: RunContext, recipe: Recipe, label: str,
             step_factory: StepFactory | None) -> tuple[torch.optim.Optimizer, StepPlan, Step]:
    """The speed choices applied to the model, the optimizer, the ranks' wrapping and the step."""
    ctx.model = ctx.model.to(ctx.device)
    params = [p for p in ctx.model.parameters() if p.requires_grad]
    if not params:
        raise SftcError(f"{label}: no trainable parameters are left (all layers frozen?)")
    plan = _plan_step(ctx, recipe)
    ctx.trial_seconds += plan.seconds
    tuning.apply_training(ctx.model, plan)
    optimizer = optimizer_for(params, recipe, fused=plan.fused_optimizer)
    if ctx.parallel is not None:
        ctx.parallel.wrap(ctx.model, ctx.frozen)
    step = (step_factory or make_step)(method, ctx, optimizer, plan, ctx.parallel)
    return optimizer, plan, step


def _plan_step(ctx: RunContext, recipe: Recipe) -> StepPlan:
    """The step's speed choices, decided on a real batch of retain samples (every method may
    read them: FT, CF-k, EU-k and retrain never load forget samples)."""
    probe = ctx.split.retain[:recipe.batch_size]
    if len(probe) < 2:
        return StepPlan(autocast=ctx.accel.autocast, decided_by="plain",
                        note="fewer than two retain samples to decide on")
    x, _ = ctx.split.data.batch(probe, ctx.device)
    steps = recipe.epochs * math.ceil(len(ctx.split.train) / recipe.batch_size)
    return tuning.plan_training(ctx.model, x, ctx.accel, lambda p, fused: optimizer_for(
        p, recipe, fused), recipe.optimizer, ctx.device, steps)


def _accel_record(ctx: RunContext, plan: StepPlan) -> dict:
    record = {"mode": ctx.accel.mode, "train": plan.record(), "inference": ctx.accel_log,
              "numerics": numerics_identity(ctx.device, ctx.accel)}
    if ctx.accel.measuring or ctx.trial_seconds:
        record["trial_seconds"] = round(ctx.trial_seconds, 3)
    if ctx.accel_notes:
        record["notes"] = list(ctx.accel_notes)
    if ctx.parallel is not None:
        record["data_parallel"] = ctx.parallel.record()
    return record


def _epochs(method: Method, ctx: RunContext, recipe: Recipe, optimizer: torch.optim.Optimizer,
            step: Step, clock: Stopwatch, history: History, track: Sequence[str],
            progress: bool, label: str, on_epoch_end) -> None:
    """Every epoch: the method's plan, the steps, the scheduler; a row of the history each."""
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(recipe.epochs, 1))
                 if recipe.scheduler == "cosine" else None)
    for epoch in range(1, recipe.epochs + 1):
        ctx.epoch = epoch
        lr = optimizer.param_groups[0]["lr"]
        with clock:
            planned = list(method.plan(ctx, epoch))
            loss_sum, steps = run_epoch(ctx, planned, step, recipe, epoch, progress, label)
            if scheduler is not None:
                scheduler.step()
        row = {"epoch": epoch, "loss": loss_sum / max(steps, 1), "lr": lr, "steps": steps,
               "seconds": clock.total - ctx.trial_seconds}
        if track:
            row.update(track_accuracies(ctx.model, ctx.split, track, ctx.device, ctx.parallel))
        history.rows.append(row)
        if on_epoch_end is not None:
            on_epoch_end(epoch, ctx.model, row)


def run_epoch(ctx: RunContext, planned: list[PlannedBatch], step: Step, recipe: Recipe,
              epoch: int, progress: bool, label: str) -> tuple[float, int]:
    """One epoch of ``planned`` batches through ``step``; the summed loss and the step count."""
    model, device, data = ctx.model, ctx.device, ctx.split.data
    model.train()
    for module in ctx.frozen:
        module.eval()  # frozen layers keep their batch-norm statistics too
    running = torch.zeros((), device=device)
    bar = tqdm(planned, desc=f"{label} epoch {epoch}/{recipe.epochs}", unit="batch",
               disable=not progress, leave=False, dynamic_ncols=True)
    # the data source loads the planned batches in order (in memory, or streamed by workers)
    loaded = data.batches([plan.index for plan in planned], device, augment=recipe.augment,
                          train=True)
    for n, (plan, (x, y)) in enumerate(zip(bar, loaded), 1):
        flag = plan.flag.to(device, non_blocking=True) if plan.flag is not None else None
        n_forget = int(plan.flag.sum()) if plan.flag is not None else 0
        running += step(Batch(x, y, plan.index.to(device, non_blocking=True), flag, plan.phase,
                              n_forget))
        if n % NAN_CHECK_EVERY == 0 or n == len(planned):
            total = float(running)
            if not math.isfinite(total):
                raise DivergedError(f"{label}: the loss became non-finite in epoch {epoch} (by step "
                                    f"{n}); lower the learning rate (--lr) and try again")
            if progress:
                bar.set_postfix(loss=f"{total / n:.4f}")
    bar.close()
    return float(running), len(planned)
