"""Several models of one architecture trained from scratch as one computation (issue 23).

The audit's reference models are K trainings of the same recipe on the same subset that differ
only by their seeds. On a GPU a small model at batch 64 leaves most of the device idle, so
:func:`train_group` trains G of them at once: their parameters and buffers (batch norm's running
statistics included) are stacked along a new first dimension and one step runs
``torch.func.vmap`` over ``torch.func.functional_call`` (PyTorch turns the stacked convolutions
into one grouped convolution). Each model keeps what the one-at-a-time path
(:func:`sftc.engine.run`) gives it:

* its initialisation: the modules the caller built (``create_model(..., seed=s)``), stacked;
* its data order: its own :class:`~sftc.engine.context.RunContext` with the generator seeded as
  the loop seeds it, and the method's own ``plan`` (the same batches, in the same order); with
  augmentation, its own random stream (the loop's global stream after ``manual_seed(seed)``);
* its updates: the loss is the sum of the models' losses, so each model's gradient is its own;
  Adam/SGD and the cosine schedule are elementwise and the same for all, so ``torch.optim`` on
  the stacked tensors updates each model exactly as its own optimizer would;
* the NaN guard: the running losses are read every ``NAN_CHECK_EVERY`` steps, and a model whose
  loss is non-finite stops the group with the loop's one-line error.

The results equal the one-at-a-time path's up to float rounding (grouped convolutions sum in
another order); they are deterministic for a given group size, slot, device and thread count,
which is why a cache keys a batched model by its group (:mod:`sftc.bench.cache`).

:func:`batch_refusal` says why a model cannot be trained this way (its forward pass draws random
numbers, e.g. dropout: vmap would draw other masks; ``vmap`` cannot run it; streamed data); the
caller then trains one at a time and records why.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from ..data import Split
from ..data.images import ImageData
from ..errors import DivergedError, SftcError
from . import measure
from .tuning import autocast_context, fused_supported
from .context import Batch, RunContext
from .device import Stopwatch, resolve_device
from .loop import NAN_CHECK_EVERY, History, Method, Recipe, optimizer_for

#: Group size of the batched path by device type; a device type not listed trains one at a time.
#: A rule that reads no clock (docs/performance.md, "The audit's reference models trained
#: together", has the figures behind it): on this project's CPU batched training was measured
#: slower than one at a time, so the CPU is not listed.
GROUP_SIZE = {"cuda": 8}

_REFUSALS: dict[tuple, str | None] = {}


def default_group_size(device: str | torch.device = "auto") -> int:
    """How many models the batched path trains together on ``device`` (1: one at a time)."""
    return GROUP_SIZE.get(resolve_device(device).type, 1)


@dataclass
class Stacked:
    """The parameters and buffers of G models, stacked along a first dimension of size G, and
    a parameter-less copy of the architecture to call them with."""

    params: dict[str, torch.Tensor]
    buffers: dict[str, torch.Tensor]
    base: nn.Module
    count: int = 0
    names: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, models: list[nn.Module]) -> "Stacked":
        params, buffers = stack_module_state(models)   # copies: the models are not changed
        base = copy.deepcopy(models[0]).to("meta")
        return cls(params, buffers, base, len(models), list(params))

    def unstack_into(self, models: list[nn.Module]) -> None:
        """Copy model ``k``'s slice of every stacked tensor into ``models[k]``."""
        with torch.no_grad():
            for k, model in enumerate(models):
                for name, p in model.named_parameters():
                    p.copy_(self.params[name][k])
                for name, b in model.named_buffers():
                    b.copy_(self.buffers[name][k])


def _rng_states(device: torch.device) -> list[torch.Tensor]:
    states = [torch.get_rng_state()]
    if device.type == "cuda":
        states.append(torch.cuda.get_rng_state(device))
    return states


def batch_refusal(models: list[nn.Module], split: Split, recipe: Recipe) -> str | None:
    """Why these models cannot be trained as one batched computation (None: they can). Decided
    on a two-sample probe, never on a clock, and remembered per architecture, input shape and
    device type."""
    device = resolve_device(recipe.device)
    if not isinstance(split.data, ImageData):
        return "the data are read through a Dataset (streamed), not held in memory"
    if len(models) < 2:
        return "a group of one model"
    first = models[0]
    if any(type(m) is not type(first) or
           [(n, p.shape) for n, p in m.named_parameters()] !=
           [(n, p.shape) for n, p in first.named_parameters()] for m in models[1:]):
        return "the models are not of one architecture"
    x, _ = split.data.batch(split.indices("train")[:2], device)
    key = (type(first).__qualname__, tuple((n, tuple(p.shape)) for n, p in
                                           first.named_parameters()), tuple(x.shape), device.type)
    if key not in _REFUSALS:
        _REFUSALS[key] = _probe(models[:2], x, device)
    return _REFUSALS[key]


def _probe(models: list[nn.Module], x: torch.Tensor, device: torch.device) -> str | None:
    """Run a training-mode forward pass alone and a batched forward and backward on copies."""
    with torch.random.fork_rng(devices=measure.rng_devices(device)):
        single = copy.deepcopy(models[0]).to(device).train()
        before = _rng_states(device)
        with torch.no_grad():
            single(x)
        after = _rng_states(device)
        if any(not torch.equal(a, b) for a, b in zip(before, after)):
            return ("its forward pass draws random numbers (dropout, stochastic depth): batched "
                    "models would draw other masks than the one-at-a-time path")
        try:
            stacked = Stacked.of([copy.deepcopy(m).to(device).train() for m in models])
            params = {n: p.detach().requires_grad_() for n, p in stacked.params.items()}
            out = vmap(lambda p, b, xs: functional_call(stacked.base, (p, b), (xs,)))(
                params, stacked.buffers, x.expand(len(models), *x.shape))
            out.float().sum().backward()
        except Exception as exc:  # noqa: BLE001 - any failure means: not batched
            line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            return f"torch.func.vmap cannot run it ({type(exc).__name__}: {line[:160]})"
    return None


def _contexts(models: list[nn.Module], seeds: list[int], split: Split, recipe: Recipe,
              device: torch.device) -> list[RunContext]:
    """One run context per model, its generator seeded as :func:`sftc.engine.run` seeds it."""
    return [RunContext(model=m, split=split, device=device, batch_size=recipe.batch_size,
                       augment=recipe.augment, generator=torch.Generator().manual_seed(s),
                       epochs=recipe.epochs, accel=recipe.accel) for m, s in zip(models, seeds)]


def _epoch_plan(method: Method, contexts: list[RunContext], epoch: int) -> list[torch.Tensor]:
    """Each step's dataset indices, ``[G, batch]``: model k's row is its own plan's batch."""
    plans = []
    for ctx in contexts:
        ctx.epoch = epoch
        plans.append(list(method.plan(ctx, epoch)))
    if any([len(p.index) for p in plan] != [len(p.index) for p in plans[0]] for plan in plans):
        raise SftcError("the models of a batched group planned batches of different sizes; "
                        "train them one at a time")
    return [torch.stack([plan[t].index for plan in plans]) for t in range(len(plans[0]))]


def _load(split: Split, index: torch.Tensor, device: torch.device, augment: bool,
          streams: list[torch.Generator]) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``[G, B, ...]`` and labels ``[G, B]``. Without augmentation one gather for all
    models (each sample is converted alone: the same values); with it, each model's own crops
    and flips from its own stream."""
    data = split.data
    if not augment:
        x, y = data.batch(index.reshape(-1), device)
        return x.view(*index.shape, *x.shape[1:]), y.view(index.shape)
    loaded = [data.batch(row, device, augment=True, generator=g) for row, g in zip(index, streams)]
    return torch.stack([x for x, _ in loaded]), torch.stack([y for _, y in loaded])


def train_group(method: Method, models: list[nn.Module], seeds: list[int], split: Split,
                recipe: Recipe, *, label: str = "train") -> list[tuple[nn.Module, History]]:
    """Train ``models`` (freshly built, ``models[k]`` initialised with ``seeds[k]``) as one
    computation with ``method``'s plan and loss (a supervised loss ``vmap`` can run), as
    :func:`sftc.engine.run` would train each with ``recipe`` and ``seed=seeds[k]``. Returns each
    model (in eval mode, on the device) with its history; ``models`` are not changed. Call
    :func:`batch_refusal` first."""
    recipe.validate()
    device = resolve_device(recipe.device)
    if device.type == "cuda":
        split.data.to(device)
    clock = Stopwatch(device)
    with clock:
        trained = [copy.deepcopy(m).to(device) for m in models]
        stacked = Stacked.of(trained)
        params = [p.detach().requires_grad_() for p in stacked.params.values()]
        stacked.params = dict(zip(stacked.names, params))
        fused = fused_supported(params, device)   # elementwise either way
        optimizer = optimizer_for(params, recipe, fused=fused)
        contexts = _contexts(trained, seeds, split, recipe, device)
        streams = [torch.Generator().manual_seed(s) for s in seeds]   # the loop's global stream
    setup = clock.total
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(recipe.epochs, 1))
                 if recipe.scheduler == "cosine" else None)
    step_loss = _step_loss(method, contexts[0], stacked)
    histories = [History(setup_seconds=setup) for _ in models]
    for epoch in range(1, recipe.epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        with clock:
            plan = _epoch_plan(method, contexts, epoch)
            totals = _run_epoch(step_loss, stacked, plan, optimizer, split, recipe, streams,
                                device, f"{label} epoch {epoch}/{recipe.epochs}", seeds)
            if scheduler is not None:
                scheduler.step()
        for history, total in zip(histories, totals):
            history.rows.append({"epoch": epoch, "loss": total / max(len(plan), 1), "lr": lr,
                                 "steps": len(plan), "seconds": clock.total})
    stacked.unstack_into(trained)
    record = {"batched": {"models": len(models), "vmap": True, "fused_optimizer": fused,
                          "autocast": recipe.accel.autocast}}
    for k, (model, history) in enumerate(zip(trained, histories)):
        model.eval()
        history.seconds = clock.total
        history.accel = {"train": {**record, "slot": k}}
    return list(zip(trained, histories))


def _step_loss(method: Method, ctx: RunContext, stacked: Stacked):
    """``losses(x, y, index) -> [G]``: each model's loss on its own batch, under vmap."""
    base = stacked.base

    def one(p, b, x, y, index):
        logits = functional_call(base, (p, b), (x,))
        return method.loss(ctx, Batch(x, y, index, None, "train"), logits)

    batched = vmap(one)
    return lambda x, y, index: batched(stacked.params, stacked.buffers, x, y, index)


def _run_epoch(step_loss, stacked: Stacked, plan: list[torch.Tensor], optimizer, split: Split,
               recipe: Recipe, streams: list[torch.Generator], device: torch.device, label: str,
               seeds: list[int]) -> list[float]:
    """One epoch of the group; returns each model's summed loss."""
    stacked.base.train()
    running = torch.zeros(stacked.count, device=device)
    autocast = autocast_context(recipe.accel.autocast, device)
    for step, index in enumerate(plan, 1):
        x, y = _load(split, index, device, recipe.augment, streams)
        index = index.to(device, non_blocking=True)
        with autocast:
            losses = step_loss(x, y, index)
        optimizer.zero_grad(set_to_none=True)
        losses.float().sum().backward()
        optimizer.step()
        running += losses.detach().float()
        if step % NAN_CHECK_EVERY == 0 or step == len(plan):
            bad = [s for s, v in zip(seeds, running.tolist()) if not math.isfinite(v)]
            if bad:
                raise DivergedError(f"{label}: the loss of the model of seed {bad[0]} (batched "
                                    f"with {len(seeds) - 1} others) became non-finite by step "
                                    f"{step}; lower the learning rate (--lr) and try again")
    return running.tolist()
