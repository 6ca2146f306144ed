"""Where a training step and a teacher pass spend their time, and what the exact rewrites save.

Prints, for the small CNN (or --model) on Fashion-MNIST-sized inputs (random data: the time does
not depend on the values), one torch thread by default:

1. a bare training step (channels-last, fused Adam, a soft-target loss like SFTC's), best of
   --rounds x --steps, for the model as written and with each of sftc.engine.rewrites' rewrites
   and both, interleaved (docs/performance.md, "Exact rewrites");
2. ReLU's backward (threshold_backward) on an expanded (stride-0) gradient against the same
   values materialised, in both layouts: the PyTorch slow path the mean-pool rewrite avoids;
3. the teacher's inference pass (batch norm folded, channels-last, rewrites) over --teacher-rows
   samples at several batch sizes, and the time of each layer at batch 64 from forward hooks,
   with GFLOP/s for the convolutions;
4. with --compile, torch.compile's one-off compile time and its step against eager.

  OMP_NUM_THREADS=1 python benchmarks/step_profile.py
  OMP_NUM_THREADS=1 python benchmarks/step_profile.py --compile
"""
from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn.functional as F
from torch import nn

import sftc
from sftc.engine import rewrites
from sftc.engine.inference_model import fold_batch_norm

CL = torch.channels_last


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="small-cnn")
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=30, help="steps per timed round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--teacher-rows", type=int, default=5400)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--compile", action="store_true", help="also time torch.compile (slow)")
    return p.parse_args(argv)


def only(model: nn.Module, kind: str | None) -> nn.Module:
    """A copy of ``model`` with no rewrite, one kind of rewrite, or all of them."""
    model = copy.deepcopy(model)
    if kind is None:
        return model
    rewrites.apply(model)
    keep = {"relu_pool": (rewrites.RunsInThePool, rewrites.PoolThenReLU),
            "mean_pool": (rewrites.GlobalMeanPool,), "both": tuple(rewrites.ORIGINAL)}[kind]
    for module in model.modules():
        if rewrites.is_rewritten(module) and type(module) not in keep:
            module.__class__ = rewrites.ORIGINAL[type(module)]
    return model


def best_ms(fn, rounds: int, reps: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        times.append((time.perf_counter() - start) / reps * 1e3)
    return min(times)


def training_steps(base: nn.Module, args) -> None:
    x = torch.randn(args.batch_size, args.channels, args.image_size, args.image_size)
    x = x.contiguous(memory_format=CL)
    target = torch.softmax(torch.randn(args.batch_size, 10), 1)
    variants = {"as written": None, "relu_pool": "relu_pool", "mean_pool": "mean_pool",
                "both": "both"}
    models = {name: only(base, kind).train().to(memory_format=CL)
              for name, kind in variants.items()}
    optimizers = {name: torch.optim.Adam(m.parameters(), lr=5e-4, fused=True)
                  for name, m in models.items()}

    def step(name):
        loss = -(target * torch.log_softmax(models[name](x), 1)).sum() / len(x)
        optimizers[name].zero_grad(set_to_none=True)
        loss.backward()
        optimizers[name].step()

    times = {name: [] for name in models}
    for name in models:
        for _ in range(5):
            step(name)
    for _ in range(args.rounds):  # interleaved, so that other load hits every variant alike
        for name in models:
            start = time.perf_counter()
            for _ in range(args.steps):
                step(name)
            times[name].append((time.perf_counter() - start) / args.steps * 1e3)
    weights = {n: torch.cat([p.detach().flatten() for p in m.parameters()])
               for n, m in models.items()}
    print(f"1. training step, batch {args.batch_size}, best of {args.rounds} x {args.steps} steps")
    for name, values in times.items():
        same = torch.equal(weights[name], weights["as written"])
        print(f"   {name:11s} {min(values):7.2f} ms   weights equal to 'as written': {same}")


def expanded_gradient() -> None:
    print("2. threshold_backward (ReLU's backward), 64x128x7x7")
    for layout, label in ((CL, "channels-last"), (torch.contiguous_format, "contiguous")):
        out = F.relu(torch.randn(64, 128, 7, 7)).contiguous(memory_format=layout)
        expanded = torch.randn(64, 128, 1, 1).expand(64, 128, 7, 7) / 49
        real = expanded.contiguous(memory_format=layout)
        t_exp = best_ms(lambda: torch.ops.aten.threshold_backward(expanded, out, 0), 3, 100)
        t_real = best_ms(lambda: torch.ops.aten.threshold_backward(real, out, 0), 3, 100)
        print(f"   {label:13s} expanded gradient {t_exp:6.3f} ms, materialised {t_real:6.3f} ms")


def teacher_pass(base: nn.Module, args) -> None:
    teacher, _ = fold_batch_norm(base)
    rewrites.apply(teacher)
    teacher = teacher.to(memory_format=CL)
    data = torch.randn(args.teacher_rows, args.channels, args.image_size, args.image_size)
    print(f"3. teacher pass over {args.teacher_rows} samples (BN folded, channels-last, rewrites)")
    with torch.inference_mode():
        for size in (16, 32, 64, 128, 256):
            def run(size=size):
                for i in range(0, len(data), size):
                    teacher(data[i:i + size].contiguous(memory_format=CL))
            print(f"   batch {size:3d}: {best_ms(run, 3, 1) / 1e3:6.3f} s")
        spent, flops, start = {}, {}, {}

        def before(module, inputs):
            start[module] = time.perf_counter()

        def after(module, inputs, output):
            spent[module] = spent.get(module, 0.0) + time.perf_counter() - start[module]
            if isinstance(module, nn.Conv2d):
                k = module.kernel_size[0] * module.kernel_size[1]
                flops[module] = flops.get(module, 0.0) + 2 * output.numel() * k * \
                    module.in_channels / module.groups
        names = {}
        for name, module in teacher.named_modules():
            if not list(module.children()):
                names[module] = name
                module.register_forward_pre_hook(before)
                module.register_forward_hook(after)
        batches = range(0, len(data), 64)
        for i in batches:
            teacher(data[i:i + 64].contiguous(memory_format=CL))
    print("   per layer at batch 64 (forward hooks):")
    for module, seconds in spent.items():
        rate = f"  {flops[module] / seconds / 1e9:6.1f} GFLOP/s" if module in flops else ""
        print(f"     {names[module]:24s} {seconds / len(batches) * 1e3:7.3f} ms/batch{rate}")


def compiled_step(base: nn.Module, args) -> None:
    x = torch.randn(args.batch_size, args.channels, args.image_size, args.image_size)
    x = x.contiguous(memory_format=CL)
    target = torch.softmax(torch.randn(args.batch_size, 10), 1)
    model = copy.deepcopy(base).train().to(memory_format=CL)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4, fused=True)
    compiled = torch.compile(model)

    def step(m):
        loss = -(target * torch.log_softmax(m(x), 1)).sum() / len(x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    start = time.perf_counter()
    step(compiled)
    print(f"4. torch.compile: first step (compiling) {time.perf_counter() - start:.1f} s")
    for m, label in ((model, "eager"), (compiled, "compiled")):
        print(f"   {label:9s} {best_ms(lambda: step(m), args.rounds, args.steps):7.2f} ms/step")


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = sftc.build_model(args.model, args.channels, 10, seed=0)
    print(f"{args.model}, {args.image_size}x{args.image_size}, {torch.get_num_threads()} "
          f"thread(s), torch {torch.__version__}; rewrites: {rewrites.apply(copy.deepcopy(base))}")
    training_steps(base, args)
    expanded_gradient()
    teacher_pass(base, args)
    if args.compile:
        compiled_step(base, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
