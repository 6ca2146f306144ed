"""The training-step choices of a run (:class:`StepPlan`): decided before the first step, applied
to the model being trained, and undone when the run ends.

Every ``auto`` switch of :class:`~sftc.engine.options.Accel` is decided by :mod:`sftc.engine.rule`
(a fixed rule: the same choices for the same model, input shape, device and thread count,
whatever the load), or in measure mode by :mod:`sftc.engine.measure` once per key and then read
from the decision store (:mod:`sftc.engine.decisions`); ``on``/``off`` force a switch. Each
choice gives the plain path's results up to float rounding (tests/test_accel.py).
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from . import measure, rewrites, rule
from .decisions import NOTE, DecisionStore, decision_key
from .linear_conv import has_conv, linear_conv_candidates, patch_linear_conv, unpatch_linear_convs
from .options import Accel

MIN_STEPS_TO_MEASURE = 20   # measure mode: a shorter run takes a stored decision, else the rule
SWITCHED = ("channels_last", "linear_convs", "fused_optimizer")


@dataclass
class StepPlan:
    """The training-step choices of a run and how they were made."""

    channels_last: bool = False
    linear_convs: list[str] = field(default_factory=list)
    fused_optimizer: bool = False
    autocast: str = "off"
    exact_rewrites: bool = False
    rewritten: list[str] = field(default_factory=list)  # what apply_training patched
    decided_by: str = "rule"       # rule; measured or stored (measure mode); forced (no auto)
    forced: list[str] = field(default_factory=list)      # switches given as on/off
    measured: dict = field(default_factory=dict)
    seconds: float = 0.0           # the trial's time (measure mode), never the run's
    decision_file: str | None = None
    note: str | None = None
    conv_plans: dict | None = field(default=None, repr=False)

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    @property
    def tuned(self) -> bool:
        """Whether a step must do more than the plain one (convert the batch, autocast)."""
        return self.channels_last or self.autocast != "off"

    def record(self) -> dict:
        out = {"channels_last": self.channels_last, "linear_convs": list(self.linear_convs),
               "fused_optimizer": self.fused_optimizer, "autocast": self.autocast,
               "exact_rewrites": list(self.rewritten), "decided_by": self.decided_by,
               "rule": rule.RULE_VERSION, "forced": list(self.forced),
               "seconds": round(self.seconds, 3)}
        if self.measured:
            out["measured"] = self.measured
        if self.decision_file:
            out["decision_file"] = self.decision_file
        if self.note:
            out["note"] = self.note
        return out


def fused_supported(params: list[torch.Tensor], device: torch.device) -> bool:
    return (device.type in ("cpu", "cuda") and bool(params)
            and all(p.dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16)
                    for p in params))


def autocast_context(autocast: str, device: torch.device):
    """bfloat16 autocast over the forward pass and loss when ``autocast == "bf16"``."""
    if autocast == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass
class _Model:
    """What the choices are made for: the model on batches shaped like ``x``, on ``device``."""

    model: nn.Module
    x: torch.Tensor
    device: torch.device
    conv: bool                 # 2-D convolutions on 4-D inputs
    candidates: dict           # its convolutions with a 1x1 output (linear_conv_candidates)
    params: list               # the parameters that train
    fusable: bool              # a fused optimizer can take them


def plan_training(model: nn.Module, x: torch.Tensor, accel: Accel,
                  make_optimizer: Callable[[list, bool], torch.optim.Optimizer],
                  optimizer_name: str, device: torch.device, steps: int) -> StepPlan:
    """The step's choices for ``model`` on batches shaped like ``x`` (a run of ``steps``
    optimisation steps). The model, its state and the random streams are left untouched."""
    conv = has_conv(model) and x.dim() == 4
    candidates = linear_conv_candidates(model, x) if conv and accel.linear_convs != "off" \
        else {}   # (an eval forward of two rows: not taken when the switch is off)
    params = [p for p in model.parameters() if p.requires_grad]
    facts = _Model(model, x, device, conv, candidates, params, fused_supported(params, device))
    choices = rule.training(device, conv=conv, linear_candidates=sorted(candidates),
                            fused_supported=facts.fusable)
    plan = StepPlan(autocast=accel.autocast, exact_rewrites=accel.exact_rewrites != "off",
                    conv_plans=candidates, decided_by="rule")
    auto = [s for s in SWITCHED if getattr(accel, s) == "auto"]
    if accel.measuring and auto:
        choices = _measured(plan, facts, accel, make_optimizer, optimizer_name, steps,
                            fallback=choices)
    forced = {"channels_last": conv, "linear_convs": sorted(candidates),
              "fused_optimizer": facts.fusable}
    for switch in SWITCHED:
        value = getattr(accel, switch)
        if value != "auto":
            plan.forced.append(switch)
            choices[switch] = forced[switch] if value == "on" else \
                ([] if switch == "linear_convs" else False)
    plan.channels_last = bool(choices["channels_last"])
    plan.linear_convs = [n for n in choices["linear_convs"] if n in candidates]
    plan.fused_optimizer = bool(choices["fused_optimizer"]) and facts.fusable
    if not auto:
        plan.decided_by = "forced"
    return plan


def _measured(plan: StepPlan, facts: _Model, accel: Accel, make_optimizer, optimizer_name: str,
              steps: int, fallback: dict) -> dict:
    """Measure mode: the stored decision, else (a run long enough to pay for it) a trial now."""
    switches = {s: getattr(accel, s) for s in (*SWITCHED, "autocast", "exact_rewrites")}
    key = decision_key("train", facts.model, facts.x, facts.device, optimizer=optimizer_name,
                       switches=switches)
    store = DecisionStore(accel.decisions_dir) if accel.decisions_dir else None
    plan.note = NOTE
    if steps < MIN_STEPS_TO_MEASURE:
        stored = store.read(key) if store is not None else None
        if stored is None:
            plan.note = "measure mode: run too short to pay for measuring; the rule decided"
            return dict(fallback)
        plan.decided_by, plan.decision_file = "stored", str(store.path(key))
        return stored

    def trial() -> dict:
        started = time.perf_counter()
        out = _trial(facts, accel, make_optimizer, fallback)
        out["seconds"] = round(time.perf_counter() - started, 3)
        return out

    if store is None:
        decision, how = trial(), "measured"
    else:
        decision, how = store.decide(key, trial)
        plan.decision_file = str(store.path(key))
    plan.decided_by = how
    plan.measured = decision.get("measured", {})
    if how == "measured":
        plan.seconds = decision.get("seconds", 0.0)
    return decision


def _trial(facts: _Model, accel: Accel, make_optimizer, fallback: dict) -> dict:
    """Time the ``auto`` switches on copies (linear convolutions, then the layout with them,
    then the optimizer step)."""
    out = dict(fallback)
    measured: dict = {}
    model, x, device, candidates = facts.model, facts.x, facts.device, facts.candidates
    with torch.random.fork_rng(devices=measure.rng_devices(device)):
        torch.manual_seed(0)
        if candidates and accel.linear_convs == "auto":
            out["linear_convs"], measured["linear_convs_ms"] = measure.linear_convs(
                model, candidates, device, backward=True)
        if facts.conv and accel.channels_last == "auto":
            chosen = out["linear_convs"]

            def prepare(copy_: nn.Module) -> None:
                if accel.exact_rewrites != "off":
                    rewrites.apply(copy_)
                _patch(copy_, candidates, chosen)
            out["channels_last"], measured["step_us_per_sample"] = measure.layouts(
                model, x, device, lambda p: make_optimizer(p, False), prepare)
        if facts.fusable and accel.fused_optimizer == "auto":
            out["fused_optimizer"], measured["optimizer_step_ms"] = measure.optimizer_step(
                facts.params, make_optimizer, device)
    out["measured"] = measured
    return out


def _patch(model: nn.Module, candidates: dict, names: list[str]) -> None:
    modules = dict(model.named_modules())
    for name in names:
        if name in candidates:
            patch_linear_conv(modules[name], candidates[name][0])


def apply_training(model: nn.Module, plan: StepPlan) -> None:
    """Put ``model`` in the plan's layout and patch its chosen convolutions and exact rewrites."""
    if plan.exact_rewrites:
        plan.rewritten = rewrites.apply(model)
    _patch(model, plan.conv_plans or {}, plan.linear_convs)
    if plan.channels_last:
        model.to(memory_format=torch.channels_last)


def restore(model: nn.Module) -> None:
    """Undo :func:`apply_training`: ordinary convolutions and modules, contiguous weights."""
    rewrites.unpatch(model)
    unpatch_linear_convs(model)
    model.to(memory_format=torch.contiguous_format)
