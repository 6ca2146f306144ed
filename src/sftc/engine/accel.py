"""Measured speed choices of a run: each optimisation is taken only where a quick measurement on
this model, input shape, device and thread count shows that it pays, and each gives the plain
path's results up to float rounding.

Training step (:func:`tune_training`, applied to the model being trained):

* ``channels_last``: the model's 4-D weights and every batch in NHWC memory layout. Whether it is
  faster depends on the model, input size and device (the small CNN's step is about 1.5x faster
  on the development machine's CPU), so both layouts are timed on the run's own first steps
  (:class:`LayoutTrial`: real steps, nothing thrown away).
* ``linear_convs``: a convolution whose output is 1x1 (ResNet-18's last stage on 28x28 inputs)
  computed as one matrix product over the input taps that meet real pixels; the taps that only
  ever meet zero padding (8 of 9 there) are skipped. Exact: the skipped products are zeros. Timed
  per convolution, forward and backward.
* ``fused_optimizer``: PyTorch's fused Adam/SGD kernel (one pass over the parameters) instead of
  the per-tensor ``foreach`` implementation; timed on copies of the parameters.
* ``exact_rewrites``: :mod:`sftc.engine.rewrites` (a ReLU moved after the max-pool that alone
  reads it; global average pooling after a ReLU with a gradient in the input's layout). The same
  values and gradients with less work, so not measured: on unless switched off.

Inference (:class:`InferenceModel`, used for frozen teachers' one-off passes): an eval copy with
batch normalisation folded into the preceding convolutions (``torch.fx``'s conv/BN fusion), the
linear convolutions and exact rewrites above, ``torch.inference_mode``, and the layout and batch
size that run fastest on the first chunks of the real pass (no throw-away work).

Every decision is cached per process, keyed by the architecture (parameter names, shapes and
which ones train), input shape, dtype, device and thread count, and recorded in the run's history
(``History.accel``). ``Accel`` switches force each choice on or off; the environment variable
``SFTC_ACCEL=off`` turns every automatic choice off (the plain path).

``autocast="bf16"`` (off by default) runs the forward pass and the loss under bfloat16 autocast;
it changes results beyond float rounding (docs/performance.md measures how much). CUDA-graph
capture of the step is not implemented: no GPU was available to measure it.
"""
from __future__ import annotations

import contextlib
import copy
import os
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SftcError
from . import rewrites
from .device import synchronize

SWITCHES = ("auto", "on", "off")
MIN_STEPS_TO_MEASURE = 20   # a shorter run takes only cached (or forced) choices
MIN_ROWS_TO_MEASURE = 512   # likewise for an inference pass over fewer samples


@dataclass
class Accel:
    """Speed options of a run (see the module docstring). ``auto``: measured; ``on``/``off``:
    forced. ``inference_batch`` 0 means measured. ``autocast``: ``off`` or ``bf16``.
    ``exact_rewrites`` needs no measurement: ``auto`` and ``on`` both apply them."""

    channels_last: str = "auto"
    linear_convs: str = "auto"
    fused_optimizer: str = "auto"
    fold_bn: str = "auto"
    inference_batch: int = 0
    autocast: str = "off"
    exact_rewrites: str = "auto"

    def validate(self) -> None:
        for name in ("channels_last", "linear_convs", "fused_optimizer", "fold_bn",
                     "exact_rewrites"):
            if getattr(self, name) not in SWITCHES:
                raise SftcError(f"accel {name} must be one of {', '.join(SWITCHES)}; "
                                f"got {getattr(self, name)!r}")
        if self.autocast not in ("off", "bf16"):
            raise SftcError(f"accel autocast must be off or bf16; got {self.autocast!r}")
        if self.inference_batch < 0:
            raise SftcError(f"accel inference_batch must be 0 (measured) or positive; "
                            f"got {self.inference_batch}")

    def without_measuring(self) -> "Accel":
        """Every measured ``auto`` as ``off`` (forced choices and the exact rewrites, which need
        no measurement, stay): for runs too short to pay for a measurement, and for ranks that
        must not decide differently."""
        off = lambda v: "off" if v == "auto" else v  # noqa: E731
        return Accel(off(self.channels_last), off(self.linear_convs), off(self.fused_optimizer),
                     off(self.fold_bn), self.inference_batch, self.autocast, self.exact_rewrites)

    @classmethod
    def plain(cls) -> "Accel":
        """Every optimisation off: the reference path."""
        return cls("off", "off", "off", "off", 0, "off", "off")

    def effective(self) -> "Accel":
        """The options with ``SFTC_ACCEL=off`` applied (every ``auto`` becomes ``off``)."""
        if os.environ.get("SFTC_ACCEL", "").lower() not in ("off", "0", "plain"):
            return self
        rewrites_ = "off" if self.exact_rewrites == "auto" else self.exact_rewrites
        return replace(self.without_measuring(), exact_rewrites=rewrites_)


_CACHE: dict[tuple, dict] = {}


def clear_cache() -> None:
    """Forget every measured decision of this process (the next run measures again)."""
    _CACHE.clear()


def _key(kind: str, model: nn.Module, x: torch.Tensor, extra=()) -> tuple:
    params = tuple((n, tuple(p.shape), p.requires_grad) for n, p in model.named_parameters())
    return (kind, type(model).__qualname__, params, tuple(x.shape), str(x.dtype), str(x.device),
            torch.get_num_threads(), *extra)


def _rng_devices(device: torch.device) -> list[int]:
    """The CUDA devices whose random streams a measurement must leave alone (CPU: none)."""
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def _race(candidates: dict[str, Callable[[], object]], device: torch.device,
          rounds: int = 2) -> dict[str, float]:
    """Best-of-``rounds`` seconds per candidate after one warm-up call each, interleaved so that
    other load on the machine hits every candidate alike."""
    for fn in candidates.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            times[name].append(_timed(fn, device))
    return {name: min(values) for name, values in times.items()}


# ----------------------------------------------------------------------------------------------
# Convolutions with a 1x1 output as matrix products


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
    """A convolution with a 1x1 output as a matrix product over its live taps. The weight's
    gradient is written straight into one zero tensor laid out like the weight (autograd's slice
    backward would build it in two steps, and in the contiguous layout)."""

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
        return out.view(n, -1, 1, 1)

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
        return _LinearConv.apply(x, self.weight, self.bias, plan)


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


def _choose_linear_convs(model: nn.Module, candidates: dict[str, tuple[LinearConvPlan, tuple]],
                         device: torch.device, backward: bool,
                         fmt: torch.memory_format) -> tuple[list[str], dict]:
    """Time each candidate convolution alone, ordinary against matrix product."""
    chosen, timings = [], {}
    modules = dict(model.named_modules())
    for name, (plan, shape) in candidates.items():
        conv = copy.deepcopy(modules[name]).to(memory_format=fmt)
        linear = copy.deepcopy(conv)
        patch_linear_conv(linear, plan)
        x = torch.randn(shape, device=device).contiguous(memory_format=fmt)
        x.requires_grad_(backward)

        def run(module=None):
            out = module(x)
            if backward:
                out.sum().backward()
        t = _race({"conv": lambda: run(conv), "linear": lambda: run(linear)}, device, rounds=2)
        timings[name] = {k: round(v * 1e3, 3) for k, v in t.items()}
        if t["linear"] < t["conv"]:
            chosen.append(name)
    return chosen, timings


def has_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


# ----------------------------------------------------------------------------------------------
# Training step


@dataclass
class StepPlan:
    """The training-step choices of a run, and what was measured to make them."""

    channels_last: bool | None = False  # None: measured on the first steps (LayoutTrial)
    linear_convs: list[str] = field(default_factory=list)
    fused_optimizer: bool = False
    autocast: str = "off"
    exact_rewrites: bool = False
    rewritten: list[str] = field(default_factory=list)  # what apply_training patched
    measured: dict = field(default_factory=dict)
    cached: bool = False
    seconds: float = 0.0
    key: tuple | None = field(default=None, repr=False)
    conv_plans: dict | None = field(default=None, repr=False)

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def record(self) -> dict:
        return {"channels_last": self.channels_last, "linear_convs": list(self.linear_convs),
                "fused_optimizer": self.fused_optimizer, "autocast": self.autocast,
                "exact_rewrites": list(self.rewritten), "cached": self.cached,
                "tuning_seconds": round(self.seconds, 3), "measured_ms": self.measured}


def fused_supported(params: list[torch.Tensor], device: torch.device) -> bool:
    return (device.type in ("cpu", "cuda") and bool(params)
            and all(p.dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16)
                    for p in params))


def autocast_context(accel: Accel, device: torch.device):
    """bfloat16 autocast over the forward pass and loss when ``accel.autocast == "bf16"``."""
    if accel.autocast == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def tune_training(model: nn.Module, x: torch.Tensor, accel: Accel,
                  make_optimizer: Callable[[list, bool], torch.optim.Optimizer],
                  optimizer_name: str, device: torch.device, measure: bool = True) -> StepPlan:
    """Decide the training-step options for ``model`` on batches shaped like ``x``.

    Convolutions with a 1x1 output are timed one by one (forward and backward, on copies) and the
    optimizer's step on copies of the trainable parameters; the memory layout is left undecided
    (``channels_last`` None) when it is to be measured: :class:`LayoutTrial` times it on the run's
    first real steps, so no step is thrown away. The model, its state and the random-number
    streams are left untouched. ``measure=False`` (a short run): cached choices, else every
    ``auto`` is off."""
    started = time.perf_counter()
    accel = accel.effective()
    switches = (accel.channels_last, accel.linear_convs, accel.fused_optimizer, accel.autocast,
                accel.exact_rewrites)  # the layout was timed on the model as rewritten, or not
    key = _key("train", model, x, (switches, optimizer_name))
    cached = _CACHE.get(key)
    exact = accel.exact_rewrites != "off"
    if cached is not None and cached["channels_last"] is not None:
        plan = StepPlan(**cached, autocast=accel.autocast, exact_rewrites=exact, cached=True)
        plan.key = key
        plan.seconds = time.perf_counter() - started
        return plan
    if not measure:
        accel = accel.without_measuring()
        key = None  # nothing measured: nothing to cache
    plan = StepPlan(autocast=accel.autocast, exact_rewrites=exact)
    plan.key = key
    conv = has_conv(model) and x.dim() == 4
    with torch.random.fork_rng(devices=_rng_devices(device)):
        torch.manual_seed(0)
        # 1. convolutions with a 1x1 output, each timed alone (forward and backward)
        candidates = linear_conv_candidates(model, x) if conv and accel.linear_convs != "off" \
            else {}
        if candidates:
            plan.conv_plans = candidates
            if accel.linear_convs == "on":
                plan.linear_convs = sorted(candidates)
            else:
                plan.linear_convs, plan.measured["linear_convs"] = _choose_linear_convs(
                    model, candidates, device, backward=True, fmt=torch.contiguous_format)
        # 2. memory layout: measured on the first real steps (LayoutTrial) unless forced
        plan.channels_last = None if conv and accel.channels_last == "auto" else \
            (conv and accel.channels_last == "on")
        # 3. the optimizer's step: fused kernel against per-tensor foreach, on copies
        params = [p for p in model.parameters() if p.requires_grad]
        if accel.fused_optimizer != "off" and fused_supported(params, device):
            if accel.fused_optimizer == "on":
                plan.fused_optimizer = True
            else:
                copies = []
                for p in params:
                    c = nn.Parameter(p.detach().clone())
                    c.grad = torch.randn_like(c) * 1e-3
                    copies.append(c)
                options = {"foreach": make_optimizer(copies, False),
                           "fused": make_optimizer(copies, True)}
                t = _race({k: o.step for k, o in options.items()}, device, rounds=2)
                plan.measured["optimizer_step"] = {k: round(v * 1e3, 3) for k, v in t.items()}
                plan.fused_optimizer = t["fused"] < t["foreach"]
                del options, copies
    if key is not None:
        _CACHE[key] = {"channels_last": plan.channels_last, "linear_convs": plan.linear_convs,
                       "fused_optimizer": plan.fused_optimizer, "measured": plan.measured}
    else:
        plan.measured["skipped"] = "run too short to pay for measuring"
    plan.seconds = time.perf_counter() - started
    return plan


class LayoutTrial:
    """Chooses the memory layout on the run's first real optimisation steps.

    Steps 1-6 run contiguous, contiguous, channels-last, channels-last, contiguous, channels-last;
    the first step in each layout warms it up and the other two are timed (per sample, synchronised
    with the device). The faster layout is kept from step 7 on, recorded in the plan and cached for
    the process. Switching converts the model's weights and the optimizer's per-parameter state
    (values unchanged), so every trial step is a real step of the run."""

    SCHEDULE = ("contiguous", "contiguous", "channels_last", "channels_last", "contiguous",
                "channels_last")
    TIMED = (1, 3, 4, 5)  # zero-based steps that are timed
    FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, plan: StepPlan,
                 device: torch.device):
        self.model, self.optimizer, self.plan, self.device = model, optimizer, plan, device
        self.step = 0
        self.current = "contiguous"
        self.times: dict[str, list[float]] = {"contiguous": [], "channels_last": []}
        self._start = 0.0
        self.done = False

    @property
    def memory_format(self) -> torch.memory_format:
        return self.FORMATS[self.current]

    def _switch(self, name: str) -> None:
        if name == self.current:
            return
        fmt = self.FORMATS[name]
        self.model.to(memory_format=fmt)
        for state in self.optimizer.state.values():
            for k, v in state.items():
                if torch.is_tensor(v) and v.dim() == 4:
                    state[k] = v.contiguous(memory_format=fmt)
        self.current = name

    def before_step(self) -> None:
        if self.done:
            return
        self._switch(self.SCHEDULE[self.step])
        synchronize(self.device)
        self._start = time.perf_counter()

    def after_step(self, rows: int) -> None:
        if self.done:
            return
        if self.step in self.TIMED:
            synchronize(self.device)
            self.times[self.current].append((time.perf_counter() - self._start) / max(rows, 1))
        self.step += 1
        if self.step == len(self.SCHEDULE):
            self.finish()

    def finish(self) -> None:
        """Decide (also when the run had fewer steps than the trial: on what was timed)."""
        if self.done:
            return
        self.done = True
        best = {k: min(v) for k, v in self.times.items() if v}
        if len(best) == 2:
            choice = min(best, key=best.get)
            self.plan.measured["step_us_per_sample"] = {k: round(v * 1e6, 1)
                                                        for k, v in best.items()}
            entry = _CACHE.get(getattr(self.plan, "key", None))
            if entry is not None:
                entry["channels_last"] = choice == "channels_last"
                entry["measured"] = self.plan.measured
        else:  # too few steps to compare: keep the layout the model started in
            choice = "contiguous"
        self._switch(choice)
        self.plan.channels_last = choice == "channels_last"


def apply_training(model: nn.Module, x: torch.Tensor, plan: StepPlan) -> None:
    """Put ``model`` in the plan's layout and patch its chosen convolutions and exact rewrites."""
    if plan.exact_rewrites:
        plan.rewritten = rewrites.apply(model)
    if plan.linear_convs:
        candidates = plan.conv_plans or linear_conv_candidates(model, x)
        modules = dict(model.named_modules())
        for name in plan.linear_convs:
            if name in candidates:
                patch_linear_conv(modules[name], candidates[name][0])
    if plan.channels_last:
        model.to(memory_format=torch.channels_last)


def restore(model: nn.Module) -> None:
    """Undo :func:`apply_training`: ordinary convolutions and modules, contiguous weights."""
    rewrites.unpatch(model)
    unpatch_linear_convs(model)
    model.to(memory_format=torch.contiguous_format)


# ----------------------------------------------------------------------------------------------
# Inference copies of frozen models


def fold_batch_norm(model: nn.Module) -> tuple[nn.Module, str]:
    """An eval copy of ``model`` with each batch norm that follows a convolution folded into it:
    ``torch.fx``'s conv/BN fusion when the model traces, else adjacent pairs inside
    ``nn.Sequential`` containers (``torch.nn.utils.fusion.fuse_conv_bn_eval``); else unfolded."""
    model = copy.deepcopy(model).eval()
    try:
        from torch.fx.experimental.optimization import fuse

        return fuse(model, inplace=True), "fx"
    except Exception:  # noqa: BLE001 - untraceable models fall back below
        pass
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = 0
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            for a, b in zip(names, names[1:]):
                conv, bn = module._modules[a], module._modules[b]
                if type(conv) is nn.Conv2d and type(bn) is nn.BatchNorm2d and \
                        bn.track_running_stats and bn.running_mean is not None:
                    module._modules[a] = fuse_conv_bn_eval(conv, bn)
                    module._modules[b] = nn.Identity()
                    folded += 1
    return model, ("sequential" if folded else "none")


def _infer_key(model: nn.Module, sample: torch.Tensor, accel: Accel, fold: str) -> tuple:
    return _key("infer", model, sample[:1], (accel.channels_last, accel.linear_convs,
                                             accel.inference_batch, accel.exact_rewrites, fold))


INFERENCE_BATCHES = (64, 256)
PLAIN_BATCH = 512  # the plain path's inference batch


class InferenceModel:
    """A frozen model prepared for inference only (see the module docstring); call
    :meth:`predict` for logits of many samples, or call it on one batch."""

    def __init__(self, model: nn.Module, sample: torch.Tensor, accel: Accel | None = None,
                 device: torch.device | None = None, measure: bool = True):
        accel = (accel or Accel()).effective()
        if not measure:  # too few samples to pay for measuring: cached choices or none
            if _infer_key(model, sample, accel, "fx") not in _CACHE:
                accel = accel.without_measuring()
        self.accel = accel
        self.device = device or sample.device
        self.record: dict = {}
        started = time.perf_counter()
        plain = accel.fold_bn == "off" and accel.linear_convs == "off" and \
            accel.channels_last == "off" and accel.exact_rewrites == "off"
        self._source_mode = None
        if plain:  # the model itself, put in eval mode only while it runs
            self.model, how = model, "none"
            self._source_mode = model.training
        else:
            self.model, how = fold_batch_norm(model) if accel.fold_bn != "off" else \
                (copy.deepcopy(model).eval(), "none")
            if accel.exact_rewrites != "off":  # after folding: fx traces the modules as written
                self.record["exact_rewrites"] = rewrites.apply(self.model)
        self.record["fold_bn"] = how
        conv = has_conv(self.model) and sample.dim() == 4
        self.linear_convs: list[str] = []
        key = _infer_key(model, sample, accel, how)
        self.key = key
        cached = _CACHE.get(key)
        rows = accel.inference_batch or INFERENCE_BATCHES[0]
        candidates = linear_conv_candidates(
            self.model, sample[:1].expand(rows, *sample.shape[1:])) if (
            conv and accel.linear_convs != "off") else {}
        if candidates:
            if cached is not None:
                self.linear_convs = [n for n in cached["linear_convs"] if n in candidates]
            elif accel.linear_convs == "on":
                self.linear_convs = sorted(candidates)
            else:
                with torch.random.fork_rng(devices=_rng_devices(self.device)), \
                        torch.inference_mode():
                    self.linear_convs, self.record["measured_linear_convs"] = \
                        _choose_linear_convs(self.model, candidates, self.device,
                                             backward=False, fmt=torch.contiguous_format)
            modules = dict(self.model.named_modules())
            for name in self.linear_convs:
                patch_linear_conv(modules[name], candidates[name][0])
        self.record["linear_convs"] = list(self.linear_convs)
        formats = [torch.contiguous_format]
        if conv and accel.channels_last != "off":
            formats = [torch.channels_last] if accel.channels_last == "on" else \
                [torch.contiguous_format, torch.channels_last]
        batches = [accel.inference_batch] if accel.inference_batch else \
            [PLAIN_BATCH] if plain else list(INFERENCE_BATCHES)
        self.options = [(f, b) for f in formats for b in batches]
        self.choice = None if len(self.options) > 1 else self.options[0]
        if cached is not None:
            self.choice = (torch.channels_last if cached["channels_last"] else
                           torch.contiguous_format, cached["batch"])
            self.record["cached"] = True
        self._format = None
        self.setup_seconds = time.perf_counter() - started

    def _set_format(self, fmt) -> None:
        if self._source_mode is not None:  # the caller's own model: its layout is left alone
            return
        if fmt != self._format:
            self.model.to(memory_format=fmt)
            self._format = fmt

    @contextlib.contextmanager
    def _running(self):
        if self._source_mode is not None:
            self.model.eval()
        try:
            with torch.inference_mode():
                yield
        finally:
            if self._source_mode is not None:
                self.model.train(self._source_mode)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of one batch (a normal tensor, usable in autograd as a constant)."""
        fmt = (self.choice or self.options[0])[0]
        with self._running():
            self._set_format(fmt)
            out = self.model(x.contiguous(memory_format=fmt) if x.dim() == 4 else x).float()
        return out.clone()

    def predict(self, batch: Callable[[torch.Tensor], torch.Tensor], index: torch.Tensor,
                num_classes: int, batches: Callable | None = None) -> torch.Tensor:
        """Logits ``[len(index), C]``; ``batch(idx)`` loads inputs. While the layout and batch
        size are undecided, the first chunks of ``index`` time them (two rounds each, best-of):
        the layouts at the first batch size, then the batch sizes in the faster layout; the
        fastest per sample does the rest and is cached. The rest is loaded by ``batches(chunks)``
        (inputs of each chunk, in order: a data source's DataLoader workers) when given, else
        chunk by chunk with ``batch``."""
        out = torch.empty(len(index), num_classes, device=self.device)
        start = 0
        if self.choice is None:
            trials: dict[tuple, list[float]] = {}
            complete = True  # every planned trial ran on a whole chunk: the choice is cached

            def trial(option) -> None:
                """Run the next chunk with ``option``, timed."""
                nonlocal start, complete
                fmt, size = option
                if start >= len(index):
                    complete = False
                    return
                chunk = index[start:start + size]
                complete = complete and len(chunk) == size
                with self._running():
                    self._set_format(fmt)
                    x = batch(chunk).contiguous(memory_format=fmt)
                    synchronize(self.device)
                    t0 = time.perf_counter()
                    out[start:start + len(chunk)] = self.model(x).float()
                    synchronize(self.device)
                trials.setdefault(option, []).append((time.perf_counter() - t0) / len(chunk))
                start += len(chunk)

            def best(options) -> tuple:
                timed = {o: min(trials[o]) for o in options if o in trials}
                # the first call of an option includes one-off set-up; options run twice are fairer
                twice = {o: t for o, t in timed.items() if len(trials[o]) > 1} or timed
                return min(twice, key=twice.get)

            # two rounds each: first the layouts at the first batch size, then the other batch
            # sizes in the faster layout (a slow layout is not also run at a large batch)
            formats = list(dict.fromkeys(f for f, _ in self.options))
            sizes = list(dict.fromkeys(b for _, b in self.options))
            layouts = [(f, sizes[0]) for f in formats]
            for option in layouts * 2:
                trial(option)
            layout = best(layouts)[0] if trials else formats[0]
            for option in [(layout, b) for b in sizes[1:]] * 2:
                trial(option)
            self.choice = best(trials) if trials else self.options[0]
            self.record["measured_us_per_sample"] = {
                f"{'channels_last' if o[0] == torch.channels_last else 'contiguous'}/{o[1]}":
                    round(min(t) * 1e6, 1) for o, t in trials.items()}
            if complete:
                _CACHE[self.key] = {"channels_last": self.choice[0] == torch.channels_last,
                                    "batch": self.choice[1], "linear_convs": self.linear_convs}
        fmt, size = self.choice
        self.record["channels_last"] = fmt == torch.channels_last
        self.record["batch"] = size
        pos = start
        chunks = [index[p:p + size] for p in range(start, len(index), size)]
        loaded = batches(chunks) if batches is not None else (batch(c) for c in chunks)
        with self._running():
            self._set_format(fmt)
            for chunk, x in zip(chunks, loaded):
                out[pos:pos + len(chunk)] = self.model(
                    x.contiguous(memory_format=fmt) if x.dim() == 4 else x).float()
                pos += len(chunk)
        return out
