"""The epoch loop shared by training, the oracle and every unlearning method."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Iterable, Protocol, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from ..data import Split
from ..errors import DivergedError, SftcError
from . import accel as accel_mod
from .accel import Accel, StepPlan
from .context import Batch, PlannedBatch, RunContext
from .data_parallel import DataParallel
from .device import Stopwatch, resolve_device
from .inference import predict_logits

NAN_CHECK_EVERY = 20  # steps between checks of the running loss (a check syncs the device)


@dataclass
class Recipe:
    """Optimisation settings of one run. The defaults are the paper's training recipe (section 5.2:
    Adam, lr 1e-3, cosine annealing, batch 64); unlearning runs use ``scheduler="constant"`` so that
    the model after epoch e of a 4-epoch run is the model of an e-epoch run (see README)."""

    epochs: int = 30
    lr: float = 1e-3
    batch_size: int = 64
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9
    scheduler: str = "cosine"
    augment: bool = False
    seed: int = 0
    device: str = "auto"
    accel: Accel = field(default_factory=Accel)  # measured speed choices; Accel.plain(): none

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


class Method(Protocol):
    """The contract the engine runs (implemented by :class:`sftc.methods.base.UnlearningMethod`)."""

    name: str
    needs_original: bool

    def setup(self, ctx: RunContext) -> None: ...

    def plan(self, ctx: RunContext, epoch: int) -> Iterable[PlannedBatch]: ...

    def loss(self, ctx: RunContext, batch: Batch, logits: torch.Tensor) -> torch.Tensor: ...


@dataclass
class History:
    """Per-epoch rows (epoch 0 = the starting model when accuracies are tracked) and timings.

    ``seconds`` is the wall time of the method itself (setup and optimisation), without the
    accuracy tracking that the caller asked for. ``accel`` records the speed choices the run made
    and what was measured to make them (``train``: the step; ``inference``: frozen models' passes;
    see :mod:`sftc.engine.accel`)."""

    rows: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    setup_seconds: float = 0.0
    accel: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _optimizer(params: list[nn.Parameter], recipe: Recipe,
               fused: bool = False) -> torch.optim.Optimizer:
    """The recipe's optimizer; ``fused``: PyTorch's single-kernel implementation (same update)."""
    extra = {"fused": True} if fused else {}
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum,
                               weight_decay=recipe.weight_decay, **extra)
    return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay, **extra)


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
        fresh_model: Callable[[int], nn.Module] | None = None) -> tuple[nn.Module, History]:
    """Run ``method`` on ``model`` for ``recipe.epochs`` epochs and return the result and history.

    The model passed in is not modified: the run works on a copy. ``track`` names subsets
    (retain/forget/val/test/train) whose accuracy is recorded before the first and after every
    epoch; ``on_epoch_end(epoch, model, row)`` is called after each epoch (outside the timing)
    with the model being trained, as the run's speed choices left it (its layout, and modules
    whose class :mod:`sftc.engine.rewrites` or the linear convolutions switched: the same values;
    its state dict and pickling are unchanged);
    ``fresh_model(seed)`` builds a newly initialised model of the same architecture (retrain, EU-k).

    Inside :func:`sftc.distributed.data_parallel` the run is spread over the job's ranks (DDP;
    :mod:`sftc.engine.data_parallel`): every rank must make the same call, and every rank
    returns the same model.
    """
    import copy

    recipe.validate()
    device = resolve_device(recipe.device)
    parallel = DataParallel.for_run(recipe.batch_size, device, recipe.seed)
    if parallel is not None:  # a measured choice could differ between ranks (the caller's
        recipe = replace(recipe, accel=recipe.accel.without_measuring())   # recipe untouched)
    torch.manual_seed(recipe.seed)
    if device.type == "cuda":
        split.data.to(device)
    student = copy.deepcopy(model).to(device)
    ctx = RunContext(model=student, split=split, device=device, batch_size=recipe.batch_size,
                     augment=recipe.augment, generator=torch.Generator().manual_seed(recipe.seed),
                     epochs=recipe.epochs, fresh_model=fresh_model, accel=recipe.accel,
                     parallel=parallel)
    history = History()
    clock = Stopwatch(device)
    label = desc or getattr(method, "name", "run")

    with clock:
        if getattr(method, "needs_original", False):
            ctx.original = ctx.frozen_copy(student)
        method.setup(ctx)
    history.setup_seconds = clock.total
    student = ctx.model.to(device)
    params = [p for p in student.parameters() if p.requires_grad]
    if not params:
        raise SftcError(f"{label}: no trainable parameters are left (all layers frozen?)")
    with clock:
        step = _tune_step(ctx, recipe, params)
        optimizer = _optimizer(params, recipe, fused=step.fused_optimizer)
        trial = accel_mod.LayoutTrial(student, optimizer, step, device) \
            if step.channels_last is None else None
        if parallel is not None:
            parallel.wrap(student, ctx.frozen)
    if track:
        history.rows.append({"epoch": 0, **track_accuracies(student, split, track, device,
                                                            parallel)})
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(recipe.epochs, 1))
                 if recipe.scheduler == "cosine" else None)

    for epoch in range(1, recipe.epochs + 1):
        ctx.epoch = epoch
        lr = optimizer.param_groups[0]["lr"]
        with clock:
            planned = list(method.plan(ctx, epoch))
            loss_sum, steps = _run_epoch(method, ctx, planned, optimizer, recipe, epoch,
                                         progress, label, step, trial)
            if scheduler is not None:
                scheduler.step()
        row = {"epoch": epoch, "loss": loss_sum / max(steps, 1), "lr": lr, "steps": steps,
               "seconds": clock.total}
        if track:
            row.update(track_accuracies(student, split, track, device, parallel))
        history.rows.append(row)
        if on_epoch_end is not None:
            on_epoch_end(epoch, student, row)
    if trial is not None:
        trial.finish()  # a run shorter than the trial decides on what it timed
    history.seconds = clock.total
    history.accel = {"train": step.record(), "inference": ctx.accel_log}
    if parallel is not None:
        history.accel["data_parallel"] = parallel.record()
        parallel.unwrap(student)
    accel_mod.restore(student)
    student.eval()
    return student, history


def _tune_step(ctx: RunContext, recipe: Recipe, params: list[nn.Parameter]) -> StepPlan:
    """Measure (or recall) the step's speed choices on a real batch and apply them to the model."""
    model, data = ctx.model, ctx.split.data
    # retain samples: every method may read them (FT, CF-k, EU-k and retrain never load forget)
    probe = ctx.split.retain[:recipe.batch_size]
    if len(probe) < 2:
        return StepPlan(autocast=recipe.accel.autocast)
    x, _ = data.batch(probe, ctx.device)
    steps = recipe.epochs * math.ceil(len(ctx.split.train) / recipe.batch_size)
    plan = accel_mod.tune_training(
        model, x, recipe.accel, lambda p, fused: _optimizer(p, recipe, fused),
        recipe.optimizer, ctx.device, measure=steps >= accel_mod.MIN_STEPS_TO_MEASURE)
    accel_mod.apply_training(model, x, plan)
    return plan


def _run_epoch(method: Method, ctx: RunContext, planned: list[PlannedBatch],
               optimizer: torch.optim.Optimizer, recipe: Recipe, epoch: int, progress: bool,
               label: str, step_plan: StepPlan | None = None,
               trial: accel_mod.LayoutTrial | None = None) -> tuple[float, int]:
    model, device, data = ctx.model, ctx.device, ctx.split.data
    model.train()
    for module in ctx.frozen:
        module.eval()  # frozen layers keep their batch-norm statistics too
    running = torch.zeros((), device=device)
    step_plan = step_plan or StepPlan()
    trial = trial if trial is not None and not trial.done else None
    layout = torch.channels_last if step_plan.channels_last else None
    autocast = accel_mod.autocast_context(Accel(autocast=step_plan.autocast), device)
    bar = tqdm(planned, desc=f"{label} epoch {epoch}/{recipe.epochs}", unit="batch",
               disable=not progress, leave=False, dynamic_ncols=True)
    # the data source loads the planned batches in order (in memory, or streamed by workers)
    loaded = data.batches([plan.index for plan in planned], device, augment=recipe.augment,
                          train=True)
    for step, (plan, (x, y)) in enumerate(zip(bar, loaded), 1):
        if trial is not None:  # the first steps of a run also time the two memory layouts
            trial.before_step()
            layout = trial.memory_format
        index = plan.index.to(device, non_blocking=True)
        if layout is not None and x.dim() == 4:
            x = x.contiguous(memory_format=layout)
        flag = plan.flag.to(device, non_blocking=True) if plan.flag is not None else None
        n_forget = int(plan.flag.sum()) if plan.flag is not None else 0
        batch = Batch(x, y, index, flag, plan.phase, n_forget)
        with autocast:
            logits = model(x) if ctx.parallel is None else ctx.parallel.forward(x)
            loss = method.loss(ctx, batch, logits)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if trial is not None:
            trial.after_step(len(plan.index))
            if trial.done:
                layout = torch.channels_last if step_plan.channels_last else None
                trial = None
        running += loss.detach()
        if step % NAN_CHECK_EVERY == 0 or step == len(planned):
            total = float(running)
            if not math.isfinite(total):
                raise DivergedError(f"{label}: the loss became non-finite in epoch {epoch} (by step "
                                    f"{step}); lower the learning rate (--lr) and try again")
            if progress:
                bar.set_postfix(loss=f"{total / step:.4f}")
    bar.close()
    return float(running), len(planned)
