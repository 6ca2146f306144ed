"""``sftc sweep``: the sensitivity study of section 5.6 (Figure 5), resumable."""
from __future__ import annotations

import sys

from ..bench_options import (add_reference_options, command_line, forget_note, parse_list,
                             reference_options)
from ..common import positive_float, positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "sweep", help="reproduce Figure 5: SFTC's sensitivity to the learning rate, τ or c",
        description="Vary one of the learning rate (lr), the KL temperature (tau) or the confusion "
                    "fraction (c) of SFTC over --values with the others fixed, on --seeds; write "
                    "sensitivity.png (forget accuracy, test accuracy and MIA against the "
                    "parameter, the oracle's accuracies dashed), sensitivity.csv and report.md. "
                    "Defaults: the paper's ranges (lr 8e-5 ... 5e-3, tau 0.5 ... 5 step 0.5, c 0 "
                    "... 1 step 0.1) and 2 epochs. Reference models come from the benchmark's "
                    "cache: with the same --preset as a finished benchmark nothing is retrained.")
    p.add_argument("--param", required=True, help="lr, tau or c")
    p.add_argument("--values", default=None, help="comma-separated values (default: the paper's range)")
    p.add_argument("--preset", default=None,
                   help="take data, model and training settings from a benchmark preset")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--resume", action="store_true", help="require --out to hold this sweep already")
    proto = add_reference_options(p)
    proto.add_argument("--lr", type=positive_float, default=1e-3,
                       help="learning rate when fixed (default 1e-3)")
    proto.add_argument("--tau", type=float, default=1.0, help="KL temperature when fixed (paper: 1)")
    proto.add_argument("--c", type=float, default=0.0,
                       help="confusion fraction when fixed (paper: 0)")
    proto.add_argument("--epochs", type=positive_int, default=2, help="SFTC epochs (paper: 2, MUFAC 3)")
    proto.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    p.set_defaults(handler=handle)


def build_config(args):
    """The SweepConfig of a command line: the preset (if any), then explicit options."""
    from ...bench.config import SweepConfig, make_config

    config, _ = make_config(SweepConfig, args.preset, dataset=args.dataset, model=args.model,
                            param=args.param, lr=args.lr, tau=args.tau, c=args.c,
                            epochs=args.epochs, seeds=parse_list(args.seeds, int, "--seeds"),
                            values=parse_list(args.values, float, "--values"),
                            **reference_options(args))
    return config


def handle(args, extra) -> int:
    from ...bench.sweep import Sweep
    from ...report.sensitivity import sweep_text

    config = build_config(args)
    log = lambda text: print(text, file=sys.stderr)  # noqa: E731
    sweep = Sweep(config, args.out, device=args.device, cache_dir=args.cache_dir,
                  progress=not args.quiet, resume=args.resume, command=command_line(), log=log)
    if forget_note(args, sweep.split):
        log(forget_note(args, sweep.split))
    summary = sweep.run()
    print(sweep_text(summary))
    print(f"\nwrote {args.out}/sensitivity.png, sensitivity.csv, report.md")
    return 0
