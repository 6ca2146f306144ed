"""The optimisation step the epoch loop is handed (in the style of ignite's step factories): the
loop loads each planned batch and calls ``step(batch)``; what one step does is decided once, by
the factory its caller picked, never by branches inside the loop.

* :func:`plain_step`: forward, the method's loss, backward, the optimizer's update;
* :func:`tuned_step`: the same with the run's speed choices (:class:`~sftc.engine.tuning.StepPlan`):
  the batch in the model's memory layout, bfloat16 autocast over forward and loss when asked;
* :func:`data_parallel_step`: the tuned step over the ranks of a job
  (:class:`~sftc.engine.data_parallel.DataParallel`: this rank's rows forwarded, every rank's
  logits gathered, the global batch's loss).

Each returns a callable ``step(batch) -> loss`` (the loss detached, for the running sum).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import torch
from torch import nn

from .context import Batch, Method, RunContext
from .tuning import StepPlan, autocast_context

if TYPE_CHECKING:
    from .data_parallel import DataParallel

Step = Callable[[Batch], torch.Tensor]


def _step(method: "Method", ctx: RunContext, optimizer: torch.optim.Optimizer,
          forward: Callable[[torch.Tensor], torch.Tensor],
          prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
          autocast: str = "off") -> Step:
    device = ctx.device

    def step(batch: Batch) -> torch.Tensor:
        if prepare is not None:
            batch.x = prepare(batch.x)
        with autocast_context(autocast, device):
            loss = method.loss(ctx, batch, forward(batch.x))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()
    return step


def _layout(plan: StepPlan) -> Callable[[torch.Tensor], torch.Tensor] | None:
    if not plan.channels_last:
        return None
    return lambda x: x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def plain_step(method: "Method", ctx: RunContext, optimizer: torch.optim.Optimizer) -> Step:
    """Forward the batch through ``ctx.model``, the method's loss, backward, update."""
    model: nn.Module = ctx.model
    return _step(method, ctx, optimizer, model)


def tuned_step(method: "Method", ctx: RunContext, optimizer: torch.optim.Optimizer,
               plan: StepPlan) -> Step:
    """:func:`plain_step` with the plan's batch layout and autocast."""
    return _step(method, ctx, optimizer, ctx.model, _layout(plan), plan.autocast)


def data_parallel_step(method: "Method", ctx: RunContext, optimizer: torch.optim.Optimizer,
                       plan: StepPlan, parallel: "DataParallel") -> Step:
    """:func:`tuned_step` over the job's ranks: the logits of the whole batch come from
    ``parallel.forward`` (this rank's rows with gradients, the others' gathered)."""
    return _step(method, ctx, optimizer, parallel.forward, _layout(plan), plan.autocast)


def make_step(method: "Method", ctx: RunContext, optimizer: torch.optim.Optimizer,
              plan: StepPlan, parallel: "DataParallel | None" = None) -> Step:
    """The step factory for this run: data-parallel across ranks, tuned when the plan changes
    what a step does, else plain."""
    if parallel is not None:
        return data_parallel_step(method, ctx, optimizer, plan, parallel)
    if plan.tuned:
        return tuned_step(method, ctx, optimizer, plan)
    return plain_step(method, ctx, optimizer)
