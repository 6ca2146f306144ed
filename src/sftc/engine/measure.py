"""Measure mode's trials (``Accel(mode="measure")``, ``SFTC_ACCEL=measure``): timed before the
run, on throwaway copies of the model and synthetic batches, never on the run's own steps.

Each function returns a decision (what to take) with what was measured; the caller
(:mod:`sftc.engine.tuning`, :mod:`sftc.engine.inference_model`) keeps it in the decision store
(:mod:`sftc.engine.decisions`), so that every later run with the same key takes it from its
first step. The random streams are forked around every trial: a run that measures draws the
same random numbers as one that reads a stored decision.
"""
from __future__ import annotations

import copy
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .device import synchronize
from .linear_conv import LinearConvPlan, patch_linear_conv

ROUNDS = 3


def rng_devices(device: torch.device) -> list[int]:
    """The CUDA devices whose random streams a trial must leave alone (CPU: none)."""
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def timed(fn: Callable[[], object], device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def race(candidates: dict[str, Callable[[], object]], device: torch.device,
         rounds: int = ROUNDS, warm: bool = True) -> dict[str, float]:
    """Best-of-``rounds`` seconds per candidate after one warm-up call each (``warm``),
    interleaved so that other load on the machine hits every candidate alike."""
    for fn in candidates.values() if warm else ():
        fn()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            times[name].append(timed(fn, device))
    return {name: min(values) for name, values in times.items()}


def ms(times: dict[str, float], per: int = 1) -> dict[str, float]:
    return {k: round(v * 1e3 / per, 4) for k, v in times.items()}


def linear_convs(model: nn.Module, candidates: dict[str, tuple[LinearConvPlan, tuple]],
                 device: torch.device, backward: bool) -> tuple[list[str], dict]:
    """Each candidate convolution alone on a random input, ordinary against matrix product."""
    chosen, timings = [], {}
    modules = dict(model.named_modules())
    for name, (plan, shape) in candidates.items():
        conv = copy.deepcopy(modules[name])
        linear = copy.deepcopy(conv)
        patch_linear_conv(linear, plan)
        x = torch.randn(shape, device=device).requires_grad_(backward)

        def run(module):
            out = module(x)
            if backward:
                out.sum().backward()
        context = torch.enable_grad() if backward else torch.inference_mode()
        with context:
            t = race({"conv": lambda: run(conv), "linear": lambda: run(linear)}, device)
        timings[name] = ms(t)
        if t["linear"] < t["conv"]:
            chosen.append(name)
    return chosen, timings


def layouts(model: nn.Module, x: torch.Tensor, device: torch.device,
            make_optimizer: Callable[[list], torch.optim.Optimizer],
            prepare: Callable[[nn.Module], None]) -> tuple[bool, dict]:
    """Training steps on two copies of ``model`` (``prepare`` applies the run's other choices),
    contiguous against channels-last, on a random batch shaped like ``x`` with random labels.
    Returns whether channels-last is faster, and the microseconds per sample."""
    synthetic = torch.randn(x.shape, dtype=x.dtype, device=device)
    steps = {}
    for name, fmt in (("contiguous", torch.contiguous_format),
                      ("channels_last", torch.channels_last)):
        trial = copy.deepcopy(model).train()
        prepare(trial)
        trial.to(memory_format=fmt)
        optimizer = make_optimizer([p for p in trial.parameters() if p.requires_grad])
        batch = synthetic.contiguous(memory_format=fmt)
        with torch.no_grad():
            classes = trial(batch[:2]).shape[1]
        labels = torch.randint(0, classes, (len(batch),), device=device)

        def step(trial=trial, optimizer=optimizer, batch=batch, labels=labels):
            loss = F.cross_entropy(trial(batch), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        steps[name] = step
    t = race(steps, device)
    us = {k: round(v * 1e6 / len(x), 1) for k, v in t.items()}
    return t["channels_last"] < t["contiguous"], us


def optimizer_step(params: list[nn.Parameter],
                   make_optimizer: Callable[[list, bool], torch.optim.Optimizer],
                   device: torch.device) -> tuple[bool, dict]:
    """The optimizer's step on copies of ``params`` with random gradients: fused against
    per-tensor foreach. Returns whether fused is faster, and the milliseconds."""
    copies = []
    for p in params:
        c = nn.Parameter(p.detach().clone())
        c.grad = torch.randn_like(c) * 1e-3
        copies.append(c)
    options = {"foreach": make_optimizer(copies, False), "fused": make_optimizer(copies, True)}
    t = race({k: o.step for k, o in options.items()}, device)
    return t["fused"] < t["foreach"], ms(t)


def inference_options(model: nn.Module, sample: torch.Tensor, device: torch.device,
                      options: list[tuple[torch.memory_format, int]]) -> tuple[tuple, dict]:
    """Forward passes of the prepared ``model`` over a random batch shaped like ``sample``'s
    rows in every (layout, batch size) of ``options``; the fastest per sample, and the
    microseconds per sample of each."""
    rows = max(size for _, size in options)
    synthetic = torch.randn((rows, *sample.shape[1:]), dtype=sample.dtype, device=device)

    def run(fmt, size, stop=rows):
        model.to(memory_format=fmt)
        for start in range(0, stop, size):
            model(synthetic[start:start + size].contiguous(memory_format=fmt))
    with torch.inference_mode():
        for fmt, size in options:   # warm-up: one batch each
            run(fmt, size, stop=size)
        t = race({o: (lambda o=o: run(*o)) for o in options}, device, rounds=2, warm=False)
    model.to(memory_format=torch.contiguous_format)
    def name(option) -> str:
        layout = "channels_last" if option[0] == torch.channels_last else "contiguous"
        return f"{layout}/{option[1]}"
    return min(t, key=t.get), {name(o): round(v * 1e6 / rows, 1) for o, v in t.items()}
