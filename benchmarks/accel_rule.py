"""The measurements behind the engine's speed rule (sftc.engine.rule; docs/performance.md).

For each model and input shape, on random data (the time does not depend on the values), every
candidate interleaved round by round so that load on the machine falls on all alike, it prints
the median (and best) of ``--rounds`` rounds of ``--steps`` repetitions:

1. a training step (forward, a soft-target loss like SFTC's, backward, Adam), batch 64, with the
   exact rewrites: contiguous (NCHW) against channels-last (NHWC), each with and without the
   convolutions that have a 1x1 output computed as matrix products, with PyTorch's per-tensor
   (foreach) Adam; and the optimizer step alone, foreach against fused;
2. a teacher's inference pass (batch norm folded, exact rewrites, inference mode) in both
   layouts at batch 64, 256 and 512 (microseconds per sample), with and without the linear
   convolutions.

  OMP_NUM_THREADS=1 python benchmarks/accel_rule.py
  OMP_NUM_THREADS=1 python benchmarks/accel_rule.py --models resnet18:1:28 --rounds 7

It prints one JSON line at the end (the figures) and a readable table on stderr.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time

import torch
from torch import nn

import sftc
from sftc.engine import rewrites
from sftc.engine.inference_model import fold_batch_norm
from sftc.engine.linear_conv import linear_conv_candidates, patch_linear_conv

CL, NCHW = torch.channels_last, torch.contiguous_format
DEFAULT_MODELS = "small-cnn:1:28,small-cnn:3:32,resnet18:1:28,resnet18:3:32," \
                 "efficientnet_b0:1:28,efficientnet_b0:3:32"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=DEFAULT_MODELS,
                   help="comma-separated NAME:CHANNELS:SIZE (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=4, help="repetitions per timed round")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--skip-inference", action="store_true")
    return p.parse_args(argv)


def race(candidates: dict, rounds: int, reps: int) -> dict[str, dict]:
    """Median and best milliseconds per call of each candidate, interleaved by round."""
    for fn in candidates.values():
        fn()
        fn()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            start = time.perf_counter()
            for _ in range(reps):
                fn()
            times[name].append((time.perf_counter() - start) / reps * 1e3)
    return {name: {"median_ms": round(statistics.median(v), 3), "best_ms": round(min(v), 3)}
            for name, v in times.items()}


def training_model(base: nn.Module, x: torch.Tensor, fmt, linear: bool) -> nn.Module:
    model = copy.deepcopy(base).train()
    rewrites.apply(model)
    if linear:
        for name, (plan, _) in linear_conv_candidates(model, x).items():
            patch_linear_conv(dict(model.named_modules())[name], plan)
    return model.to(memory_format=fmt)


def training(base: nn.Module, x: torch.Tensor, args) -> dict:
    target = torch.softmax(torch.randn(len(x), 10), 1)
    linear_ok = bool(linear_conv_candidates(base, x))
    variants = {(f, lin): None for f in ("nchw", "nhwc") for lin in ((False, True) if linear_ok
                                                                     else (False,))}
    steps = {}
    for fmt, lin in variants:
        model = training_model(base, x, CL if fmt == "nhwc" else NCHW, lin)
        opt = torch.optim.Adam(model.parameters(), lr=5e-4, foreach=True)
        xb = x.contiguous(memory_format=CL if fmt == "nhwc" else NCHW)

        def step(model=model, opt=opt, xb=xb):
            loss = -(target * torch.log_softmax(model(xb), 1)).sum() / len(xb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        steps[f"{fmt}{'+linear' if lin else ''}"] = step
    out = {"step": race(steps, args.rounds, args.steps)}
    params = [nn.Parameter(p.detach().clone()) for p in base.parameters()]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    opts = {"foreach": torch.optim.Adam(params, lr=5e-4, foreach=True),
            "fused": torch.optim.Adam(params, lr=5e-4, fused=True)}
    out["adam_step"] = race({k: o.step for k, o in opts.items()}, args.rounds, args.steps * 5)
    out["linear_conv_candidates"] = sorted(linear_conv_candidates(base, x))
    return out


def inference(base: nn.Module, x1: torch.Tensor, args) -> dict:
    rows = 1024
    data = torch.randn(rows, *x1.shape[1:])
    linear_ok = bool(linear_conv_candidates(base, data[:64]))
    passes = {}
    for lin in (False, True) if linear_ok else (False,):
        folded, _ = fold_batch_norm(base)
        rewrites.apply(folded)
        if lin:
            for name, (plan, _) in linear_conv_candidates(folded, data[:64]).items():
                patch_linear_conv(dict(folded.named_modules())[name], plan)
        for fmt, layout in (("nchw", NCHW), ("nhwc", CL)):
            model = copy.deepcopy(folded).to(memory_format=layout)
            for size in (64, 256, 512):
                def run(model=model, size=size, layout=layout):
                    with torch.inference_mode():
                        for i in range(0, rows, size):
                            model(data[i:i + size].contiguous(memory_format=layout))
                passes[f"{fmt}/{size}{'+linear' if lin else ''}"] = run
    timed = race(passes, max(args.rounds - 2, 3), 1)
    return {k: {"median_us_per_sample": round(v["median_ms"] * 1e3 / rows, 1),
                "best_us_per_sample": round(v["best_ms"] * 1e3 / rows, 1)}
            for k, v in timed.items()}


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    report = {"threads": torch.get_num_threads(), "torch": torch.__version__,
              "load_before": os.getloadavg(), "cpu": _cpu_name(), "models": {}}
    for spec in args.models.split(","):
        name, channels, size = spec.split(":")
        channels, size = int(channels), int(size)
        base = sftc.build_model(name, channels, 10, seed=0)
        x = torch.randn(args.batch_size, channels, size, size)
        entry = training(base, x, args)
        if not args.skip_inference:
            entry["inference"] = inference(base, x[:1], args)
        report["models"][spec] = entry
        _show(spec, entry)
    report["load_after"] = os.getloadavg()
    print(json.dumps(report))
    return 0


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _show(spec: str, entry: dict) -> None:
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    say(f"{spec}: training step (median / best ms)")
    for k, v in entry["step"].items():
        say(f"   {k:14s} {v['median_ms']:9.2f} / {v['best_ms']:9.2f}")
    say("   adam step  " + ", ".join(f"{k} {v['median_ms']:.3f} / {v['best_ms']:.3f}"
                                     for k, v in entry["adam_step"].items()))
    if entry["linear_conv_candidates"]:
        say(f"   1x1-output convolutions: {', '.join(entry['linear_conv_candidates'])}")
    if "inference" in entry:
        say("   inference (median / best us per sample)")
        for k, v in entry["inference"].items():
            say(f"   {k:18s} {v['median_us_per_sample']:8.1f} / {v['best_us_per_sample']:8.1f}")


if __name__ == "__main__":
    raise SystemExit(main())
