"""Exact rewrites of a model's execution: the same values and gradients with less work on the
CPU. Applied to module instances (never the caller's own model: the engine trains a copy and
builds inference copies) by switching their class to a subclass defined here, so that a rewritten
model still pickles, copies and loads its state dict as before; :func:`unpatch` switches back.

* ``relu_pool``: a ``ReLU`` whose only consumer is a ``MaxPool2d`` runs after the pool instead
  (max-pool, then ReLU on the pooled map). ReLU is monotone, so the max of the ReLUs is the ReLU
  of the max, the pool picks the same element (ties included: both orders keep the first maximum,
  and a window whose maximum is not positive gets a zero gradient either way), and the ReLU and
  its backward touch a quarter of the elements (a 2x2 pool). The small CNN's first stage works at
  full resolution, where this is about 3 % of a training step.
* ``mean_pool``: an ``AdaptiveAvgPool2d`` to 1x1 (global average pooling) whose input is the
  output of a ``ReLU`` it alone consumes, with a backward that hands the ReLU its gradient as a
  real tensor in the input's memory layout. Autograd's own mean backward hands it an *expanded*
  gradient (stride 0), and ReLU's backward on an expanded gradient in channels-last layout takes
  a slow path in PyTorch: ~2.0 ms against ~0.05 ms for the small CNN's last stage at batch 64 on
  the development CPU (about 5 % of its training step). It is only taken after a ReLU: other
  backward kernels (batch norm's) sum a materialised gradient in another order.

What "the same" means: every value and gradient is equal as a number (``torch.equal``); the one
bit that can differ is the sign of a zero (a window ``[-1, -0.0]`` pools to +0.0 after ReLU and
to -0.0 before it), which no later sum, product or gradient turns into a different number.

Where they apply is read from a ``torch.fx`` trace of the model, so that a module used twice, a
ReLU whose output is read elsewhere (a feature tap, a skip connection), or an in-place ReLU whose
input something else also reads are left alone; a model that does not trace is not rewritten,
and neither is a module with hooks (a hook would see what the rewrite changes).
"""
from __future__ import annotations

from collections import Counter

import torch
import torch.nn.functional as F
from torch import nn

#: Layers whose output is a new tensor nothing else holds: an in-place ReLU after one of them has
#: no side effect a rewrite could lose.
FRESH_OUTPUT = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d,
                nn.BatchNorm3d, nn.GroupNorm, nn.LayerNorm)


class _GlobalMean(torch.autograd.Function):
    """PyTorch's global average pooling; the gradient comes back materialised in the input's
    memory layout (see the module docstring)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x, 1)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        (x,) = inputs
        ctx.shape = x.shape
        try:
            channels_last = x.dim() == 4 and not x.is_contiguous() \
                and x.is_contiguous(memory_format=torch.channels_last)
        except RuntimeError:  # torch.func.vmap answers for the contiguous layout only
            channels_last = False
        ctx.layout = torch.channels_last if channels_last else torch.contiguous_format

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        expanded = (grad / (ctx.shape[-1] * ctx.shape[-2])).expand(ctx.shape)
        try:
            return expanded.contiguous(memory_format=ctx.layout)
        except RuntimeError:  # torch.func.vmap materialises the contiguous layout only
            return expanded.contiguous()

    @staticmethod
    def jvp(ctx, x_tangent: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x_tangent, 1)


class RunsInThePool(nn.ReLU):
    """The ReLU of a ``relu_pool`` pair: its work is done by the :class:`PoolThenReLU` after it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class PoolThenReLU(nn.MaxPool2d):
    """Max-pool, then the ReLU that came before it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(super().forward(x), inplace=True)  # the pool's output is its own


class GlobalMeanPool(nn.AdaptiveAvgPool2d):
    """Global average pooling with the gradient in the input's layout."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() not in (3, 4) or x.shape[-1] * x.shape[-2] == 0:
            return super().forward(x)
        return _GlobalMean.apply(x)


ORIGINAL = {RunsInThePool: nn.ReLU, PoolThenReLU: nn.MaxPool2d,
            GlobalMeanPool: nn.AdaptiveAvgPool2d}


def is_rewritten(module: nn.Module) -> bool:
    return type(module) in ORIGINAL


def _hooked(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
                or module._backward_pre_hooks)


def _trace(model: nn.Module):
    try:
        return torch.fx.symbolic_trace(model)
    except Exception:  # noqa: BLE001 - a model that does not trace is not rewritten
        return None


def find(model: nn.Module) -> list[tuple[str, ...]]:
    """The rewrites that apply to ``model``: ``("relu_pool", relu, pool)`` and
    ``("mean_pool", pool)`` with module names (see the module docstring for the conditions)."""
    graph = _trace(model)
    if graph is None:
        return []
    modules = dict(model.named_modules())
    nodes = list(graph.graph.nodes)
    calls = Counter(n.target for n in nodes if n.op == "call_module")

    def module(node):
        return modules.get(node.target) if isinstance(node, torch.fx.Node) and \
            node.op == "call_module" else None

    def called_once_plainly(node, kind) -> bool:
        m = module(node)
        return type(m) is kind and calls[node.target] == 1 and not _hooked(m) \
            and len(node.args) == 1 and not node.kwargs

    found = []
    for node in nodes:
        if not called_once_plainly(node, nn.ReLU) or len(node.users) != 1:
            continue
        user = next(iter(node.users))
        if user.args[:1] != (node,):
            continue
        source = node.args[0]
        fresh = not module(node).inplace or (
            isinstance(module(source), FRESH_OUTPUT) and len(source.users) == 1
            and not _hooked(module(source)))
        if called_once_plainly(user, nn.MaxPool2d) and not module(user).return_indices and fresh:
            found.append(("relu_pool", node.target, user.target))
        elif called_once_plainly(user, nn.AdaptiveAvgPool2d) \
                and module(user).output_size in (1, (1, 1), [1, 1]):
            found.append(("mean_pool", user.target))
    return found


def apply(model: nn.Module) -> list[str]:
    """Rewrite ``model``'s modules in place; returns what was rewritten (for the run's record)."""
    if any(is_rewritten(m) for m in model.modules()):
        return []
    modules = dict(model.named_modules())
    done = []
    for kind, *names in find(model):
        if kind == "relu_pool":
            modules[names[0]].__class__ = RunsInThePool
            modules[names[1]].__class__ = PoolThenReLU
            done.append(f"relu_pool:{names[0]}>{names[1]}")
        else:
            modules[names[0]].__class__ = GlobalMeanPool
            done.append(f"mean_pool:{names[0]}")
    return done


def unpatch(model: nn.Module) -> None:
    """Undo :func:`apply`."""
    for module in model.modules():
        if is_rewritten(module):
            module.__class__ = ORIGINAL[type(module)]
