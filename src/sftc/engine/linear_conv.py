"""Convolutions with a 1x1 output computed as matrix products.

A convolution whose output is 1x1 (ResNet-18's last stage on 28x28 and 32x32 inputs, EfficientNet's
pointwise convolutions on its last feature map) computed as one matrix product over the input
taps that meet real pixels; the taps that only ever meet zero padding (8 of 9 for a padded 3x3
kernel on a 1x1 input) are skipped. Exact as arithmetic: the skipped products are zeros (the
float sums run in another order, so results agree up to rounding). Where it is taken is decided
by :mod:`sftc.engine.rule` (or measured: :mod:`sftc.engine.measure`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class LinearConvPlan:
    """How a convolution with a 1x1 output on ``size`` inputs becomes a matrix product: the input
    rows/columns ``[0, rows)``/``[0, cols)`` meet the kernel taps starting at ``(top, left)``."""

    size: tuple[int, int]
    rows: int
    cols: int
    top: int
    left: int


def linear_conv_plan(conv: nn.Conv2d, size: tuple[int, int]) -> LinearConvPlan | None:
    """The plan for ``conv`` on inputs of spatial ``size``, or None when it does not apply
    (output larger than 1x1, groups, dilation, non-zero padding modes or string paddings)."""
    if type(conv) is not nn.Conv2d or conv.groups != 1 or conv.dilation != (1, 1):
        return None
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        return None
    (h, w), (kh, kw), (ph, pw), (sh, sw) = size, conv.kernel_size, conv.padding, conv.stride
    out_h = (h + 2 * ph - kh) // sh + 1
    out_w = (w + 2 * pw - kw) // sw + 1
    if (out_h, out_w) != (1, 1):
        return None
    rows, cols = min(h, kh - ph), min(w, kw - pw)  # input pixels the single output reads
    if rows <= 0 or cols <= 0:
        return None
    return LinearConvPlan((h, w), rows, cols, ph, pw)


class _LinearConv(torch.autograd.Function):
    """A convolution with a 1x1 output as a matrix product over its live taps, returned as
    ``[n, out_channels]``. The weight's gradient is written straight into one zero tensor laid
    out like the weight (autograd's slice backward would build it in two steps, and in the
    contiguous layout)."""

    @staticmethod
    def forward(ctx, x, weight, bias, plan: LinearConvPlan):
        n = x.shape[0]
        used = x if (plan.rows, plan.cols) == plan.size else x[:, :, :plan.rows, :plan.cols]
        x2 = used.reshape(n, -1)
        w2 = weight[:, :, plan.top:plan.top + plan.rows,
                    plan.left:plan.left + plan.cols].reshape(weight.shape[0], -1)
        out = F.linear(x2, w2, bias)
        ctx.save_for_backward(x2, w2, weight)
        ctx.plan, ctx.x_shape, ctx.x_dtype = plan, x.shape, x.dtype
        ctx.has_bias = bias is not None
        return out  # [n, out_channels]: the 1x1 view is taken outside (see LinearConv2d)

    @staticmethod
    def backward(ctx, grad_out):
        x2, w2, weight = ctx.saved_tensors
        plan = ctx.plan
        g = grad_out.reshape(grad_out.shape[0], -1)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            gx = (g.to(w2.dtype) @ w2).view(ctx.x_shape[0], ctx.x_shape[1], plan.rows, plan.cols)
            if (plan.rows, plan.cols) != plan.size:
                full = gx.new_zeros(ctx.x_shape)
                full[:, :, :plan.rows, :plan.cols] = gx
                gx = full
            grad_x = gx.to(ctx.x_dtype)
        if ctx.needs_input_grad[1]:
            grad_w = torch.zeros_like(weight)
            grad_w[:, :, plan.top:plan.top + plan.rows, plan.left:plan.left + plan.cols] = \
                (g.t().to(x2.dtype) @ x2).view(weight.shape[0], weight.shape[1], plan.rows,
                                                plan.cols)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = g.sum(0)
        return grad_x, grad_w, grad_b, None


class LinearConv2d(nn.Conv2d):
    """A ``nn.Conv2d`` computed as :class:`_LinearConv` on inputs of its plan's size (the module's
    class is switched, so that the model still pickles and copies)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        plan: LinearConvPlan = self._sftc_linear_plan
        if tuple(x.shape[-2:]) != plan.size or x.dim() != 4:
            return super().forward(x)  # another input size: the ordinary convolution
        if torch.is_autocast_enabled(x.device.type):  # let autocast cast the product's operands
            weight = self.weight[:, :, plan.top:plan.top + plan.rows,
                                 plan.left:plan.left + plan.cols]
            used = x if (plan.rows, plan.cols) == plan.size else x[:, :, :plan.rows, :plan.cols]
            out = F.linear(used.reshape(x.shape[0], -1), weight.reshape(weight.shape[0], -1),
                           self.bias)
            return out.view(x.shape[0], -1, 1, 1)
        # The view is taken here, outside the autograd function, so that an in-place op after it
        # (EfficientNet's squeeze-excitation: SiLU(inplace=True)) is an ordinary view+inplace.
        return _LinearConv.apply(x, self.weight, self.bias, plan).view(x.shape[0], -1, 1, 1)


def patch_linear_conv(conv: nn.Conv2d, plan: LinearConvPlan) -> None:
    conv._sftc_linear_plan = plan
    conv.__class__ = LinearConv2d


def unpatch_linear_convs(model: nn.Module) -> None:
    for module in model.modules():
        if type(module) is LinearConv2d:
            module.__class__ = nn.Conv2d
            del module.__dict__["_sftc_linear_plan"]


def conv_input_sizes(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """Input shape of every ``nn.Conv2d`` of ``model`` on a batch shaped like ``x`` (one eval-mode
    forward of two rows without gradients; modules called more than once are left out). The
    model's modes are restored."""
    rows = x.shape[0]
    x = x[:2]
    shapes: dict[str, list] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_pre_hook(
                lambda mod, args, name=name: shapes.setdefault(name, []).append(
                    tuple(args[0].shape))))
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
        for module, mode in modes.items():
            module.training = mode
    return {name: (rows, *s[0][1:]) for name, s in shapes.items() if len(s) == 1}


def linear_conv_candidates(model: nn.Module,
                           x: torch.Tensor) -> dict[str, tuple[LinearConvPlan, tuple]]:
    """The convolutions of ``model`` with a 1x1 output on batches shaped like ``x``: their plans
    and input shapes."""
    modules = dict(model.named_modules())
    out = {}
    for name, shape in conv_input_sizes(model, x).items():
        plan = linear_conv_plan(modules[name], tuple(shape[-2:]))
        if plan is not None:
            out[name] = (plan, shape)
    return out


def has_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())
