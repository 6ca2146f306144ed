"""Exact rewrites of a model's execution: the same values and gradients, bit for bit, with less
work on the CPU. Applied by patching module instances (never the caller's own model: the engine
trains a copy and builds inference copies), and undone by :func:`unpatch`. A module with hooks is
left as it is (a hook would see what a rewrite changes).

* ``relu_pool``: a ``ReLU`` directly followed by a ``MaxPool2d`` in an ``nn.Sequential`` runs
  after the pool instead (max-pool, then ReLU on the pooled map). ReLU is monotone, so the max of
  the ReLUs is the ReLU of the max, the pool picks the same element (ties included: both orders
  keep the first maximum, and a window whose maximum is not positive gets a zero gradient either
  way), and the ReLU and its backward touch a quarter of the elements (a 2x2 pool). The small
  CNN's first stage works at full resolution, where this is about 3 % of a training step.
* ``mean_pool``: an ``AdaptiveAvgPool2d`` to 1x1 (global average pooling) computed as the mean it
  is (PyTorch's own fast path) with a backward that writes its gradient as a real tensor in the
  input's memory layout. Autograd's mean backward hands the layer before it an *expanded* gradient
  (stride 0), and ReLU's backward on an expanded gradient in channels-last layout takes a slow
  path in PyTorch: ~2.0 ms against ~0.05 ms for the small CNN's last stage at batch 64 on the
  development CPU (about 5 % of its training step). The gradient's values are the same numbers.
"""
from __future__ import annotations

import types

import torch
import torch.nn.functional as F
from torch import nn

MARK = "_sftc_rewrite"


def _identity(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return x


def _pool_then_relu(self: nn.MaxPool2d, x: torch.Tensor) -> torch.Tensor:
    return F.relu(type(self).forward(self, x), inplace=True)  # the pool's output is its own


class _GlobalMean(torch.autograd.Function):
    """Mean over the last two dimensions, keepdim; the gradient comes back materialised in the
    input's memory layout (see the module docstring)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.shape = x.shape
        ctx.layout = torch.channels_last if (
            x.dim() == 4 and not x.is_contiguous()
            and x.is_contiguous(memory_format=torch.channels_last)) else torch.contiguous_format
        return x.mean((-1, -2), keepdim=True)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        count = ctx.shape[-1] * ctx.shape[-2]
        return (grad / count).expand(ctx.shape).contiguous(memory_format=ctx.layout)


def _global_mean(self: nn.AdaptiveAvgPool2d, x: torch.Tensor) -> torch.Tensor:
    if x.dim() not in (3, 4) or x.shape[-1] * x.shape[-2] == 0:
        return type(self).forward(self, x)
    return _GlobalMean.apply(x)


def _patch(module: nn.Module, forward, kind: str) -> None:
    module.forward = types.MethodType(forward, module)
    setattr(module, MARK, kind)


def _is_global_pool(module: nn.Module) -> bool:
    return type(module) is nn.AdaptiveAvgPool2d and module.output_size in (1, (1, 1), [1, 1])


def _hooked(module: nn.Module) -> bool:
    """A hook on the module would see what the rewrite changes (a ReLU's output)."""
    return bool(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
                or module._backward_pre_hooks)


def relu_pool_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(ReLU, MaxPool2d) names that are adjacent in an ``nn.Sequential`` whose forward is
    ``nn.Sequential``'s own, each module used once in the model and without hooks, the pool
    without indices."""
    uses: dict[int, int] = {}
    for _, module in model.named_modules(remove_duplicate=False):
        uses[id(module)] = uses.get(id(module), 0) + 1
    pairs = []
    for name, seq in model.named_modules():
        if not isinstance(seq, nn.Sequential) or type(seq).forward is not nn.Sequential.forward:
            continue
        children = list(seq._modules.items())
        for (a, relu), (b, pool) in zip(children, children[1:]):
            if type(relu) is nn.ReLU and type(pool) is nn.MaxPool2d and not pool.return_indices \
                    and uses[id(relu)] == 1 and uses[id(pool)] == 1 \
                    and not _hooked(relu) and not _hooked(pool) \
                    and MARK not in relu.__dict__ and MARK not in pool.__dict__:
                prefix = f"{name}." if name else ""
                pairs.append((prefix + a, prefix + b))
    return pairs


def apply(model: nn.Module) -> list[str]:
    """Patch ``model``'s modules with the rewrites; returns what was rewritten (names and kinds,
    for the run's record)."""
    done = []
    modules = dict(model.named_modules())
    for relu_name, pool_name in relu_pool_pairs(model):
        _patch(modules[relu_name], _identity, "relu_pool")
        _patch(modules[pool_name], _pool_then_relu, "relu_pool")
        done.append(f"relu_pool:{relu_name}>{pool_name}")
    for name, module in modules.items():
        if _is_global_pool(module) and MARK not in module.__dict__ and not _hooked(module):
            _patch(module, _global_mean, "mean_pool")
            done.append(f"mean_pool:{name}")
    return done


def unpatch(model: nn.Module) -> None:
    """Undo :func:`apply`."""
    for module in model.modules():
        if MARK in module.__dict__:
            del module.__dict__["forward"]
            del module.__dict__[MARK]
