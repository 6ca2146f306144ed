"""Batch normalisation over the global batch of a data-parallel run, on GPUs and on CPUs.

Under DDP each rank sees only its rows of a batch; plain batch normalisation would normalise
them with their own mean and variance (and update the running statistics from them), so a run
with N ranks would not compute what one process computes on the whole batch. PyTorch's
``nn.SyncBatchNorm`` shares the statistics over the ranks, but only for GPU tensors (and DDP
refuses it on CPU modules). :class:`GlobalBatchNorm` is the CPU counterpart (the Gloo backend):
the same arithmetic, with the per-channel sums all-reduced in float64 (as PyTorch's CPU batch
norm accumulates), forward and backward. On GPUs PyTorch's own is used.

:func:`convert` swaps every batch-norm layer of a model for one that shares its parameters and
buffers (nothing is copied, so the optimiser and the running statistics carry over), and
:func:`restore` puts the original layers back after the run.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


class _GlobalBatchNorm(torch.autograd.Function):
    """Training-mode batch norm of the rows of every rank (CPU tensors, any Gloo group)."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, eps, momentum, group):
        channels = x.shape[1]
        dims = [0] + list(range(2, x.dim()))
        local = torch.cat([x.sum(dims, dtype=torch.float64),
                           x.double().pow(2).sum(dims),
                           torch.tensor([x.numel() // max(channels, 1)], dtype=torch.float64)])
        dist.all_reduce(local, group=group)
        total, squares, count = local[:channels], local[channels:2 * channels], local[-1]
        if float(count) <= 1:
            raise ValueError("Expected more than 1 value per channel when training, got input "
                             f"size {tuple(x.shape)} over every rank")
        mean = total / count
        var = (squares / count - mean * mean).clamp(min=0.0)
        invstd = torch.rsqrt(var + eps)
        if running_mean is not None:
            with torch.no_grad():
                running_mean.mul_(1 - momentum).add_(mean.to(running_mean.dtype), alpha=momentum)
                unbiased = var * count / (count - 1)
                running_var.mul_(1 - momentum).add_(unbiased.to(running_var.dtype), alpha=momentum)
        shape = [1, channels] + [1] * (x.dim() - 2)
        mean_f, invstd_f = mean.to(x.dtype).view(shape), invstd.to(x.dtype).view(shape)
        y = (x - mean_f) * invstd_f
        if weight is not None:
            y = y * weight.view(shape) + bias.view(shape)
        ctx.save_for_backward(x, weight, mean_f, invstd_f)
        ctx.count, ctx.group, ctx.dims = count, group, dims
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight, mean, invstd = ctx.saved_tensors
        dims, channels = ctx.dims, x.shape[1]
        shape = mean.shape
        xmu = x - mean
        sum_dy = grad.sum(dims, dtype=torch.float64)
        sum_dy_xmu = (grad * xmu).sum(dims, dtype=torch.float64)
        grad_weight = grad_bias = grad_x = None
        if weight is not None and ctx.needs_input_grad[1]:
            grad_weight = (sum_dy_xmu * invstd.view(-1).double()).to(weight.dtype)
        if weight is not None and ctx.needs_input_grad[2]:
            grad_bias = sum_dy.to(weight.dtype)
        if ctx.needs_input_grad[0]:
            both = torch.cat([sum_dy, sum_dy_xmu])
            dist.all_reduce(both, group=ctx.group)
            mean_dy = (both[:channels] / ctx.count).to(x.dtype).view(shape)
            mean_dy_xmu = (both[channels:] / ctx.count).to(x.dtype).view(shape)
            scale = invstd if weight is None else invstd * weight.view(shape)
            grad_x = (grad - mean_dy - xmu * invstd * invstd * mean_dy_xmu) * scale
        return grad_x, grad_weight, grad_bias, None, None, None, None, None


class GlobalBatchNorm(_BatchNorm):
    """Batch norm whose training-mode statistics are those of every rank's rows (CPU tensors;
    PyTorch's ``nn.SyncBatchNorm`` is GPU-only, and DDP refuses it on CPU modules). In eval mode,
    or outside a process group, it is plain batch norm."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, process_group=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.process_group = process_group

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        group = self.process_group or dist.group.WORLD
        if not self.training or not dist.is_initialized() or dist.get_world_size(group) < 2:
            return super().forward(input)
        self._check_input_dim(input)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                        else self.momentum)
        running = self.track_running_stats
        return _GlobalBatchNorm.apply(input, self.weight, self.bias,
                                      self.running_mean if running else None,
                                      self.running_var if running else None,
                                      self.eps, momentum, group)


def _sync_copy(bn: _BatchNorm, group, cpu: bool) -> _BatchNorm:
    """A batch norm over the global batch sharing ``bn``'s parameters and buffers (the same
    tensors): :class:`GlobalBatchNorm` on CPUs, PyTorch's SyncBatchNorm on GPUs."""
    cls = GlobalBatchNorm if cpu else nn.SyncBatchNorm
    sync = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats, group)
    sync.weight, sync.bias = bn.weight, bn.bias
    sync.running_mean, sync.running_var = bn.running_mean, bn.running_var
    sync.num_batches_tracked = bn.num_batches_tracked
    sync.train(bn.training)
    return sync


def convert(model: nn.Module, group=None, cpu: bool = True) -> dict[nn.Module, nn.Module]:
    """Swap every batch-norm layer of ``model`` for one over the global batch of ``group``
    (``cpu``: :class:`GlobalBatchNorm`, else ``nn.SyncBatchNorm``), sharing its parameters and
    buffers. Returns {new layer: original layer} for :func:`restore`."""
    swapped: dict[nn.Module, nn.Module] = {}
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, _BatchNorm) and not isinstance(child, (nn.SyncBatchNorm,
                                                                        GlobalBatchNorm)):
                sync = _sync_copy(child, group, cpu)
                setattr(parent, name, sync)
                swapped[sync] = child
    return swapped


def restore(model: nn.Module, swapped: dict[nn.Module, nn.Module]) -> None:
    """Put back the layers :func:`convert` replaced (their tensors hold the run's updates)."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if child in swapped:
                setattr(parent, name, swapped[child])
