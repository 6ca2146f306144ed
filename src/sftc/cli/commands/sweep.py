"""``sftc sweep``: the sensitivity study of section 5.6 (Figure 5) for any method, resumable."""
from __future__ import annotations

import sys

from ...errors import SftcError
from ..bench_options import (add_reference_options, command_line, forget_note, parse_list,
                             parse_methods, reference_options)
from ..common import positive_float, positive_int


def register(sub) -> None:
    p = sub.add_parser(
        "sweep", help="reproduce Figure 5: a method's sensitivity to its learning rate or a "
                      "hyperparameter (SFTC's τ or c by default)",
        description="Vary one parameter of --method (default sftc) over --values with the others "
                    "fixed, on --seeds: the learning rate (lr) or any of the method's "
                    "hyperparameters ('sftc methods NAME' lists them; SFTC's: tau, c); write "
                    "sensitivity.png (forget accuracy, test accuracy and MIA against the "
                    "parameter, the oracle's accuracies dashed), sensitivity.csv and report.md. "
                    "Defaults: the paper's ranges (lr 8e-5 ... 5e-3, SFTC's tau 0.5 ... 5 step "
                    "0.5 and c 0 ... 1 step 0.1; another hyperparameter needs --values) and 2 "
                    "epochs. Reference models come from the benchmark's cache: with the same "
                    "--preset as a finished benchmark nothing is retrained. A point whose "
                    "method's code changed since it was stored is run again.")
    p.add_argument("--param", required=True,
                   help="lr, or a hyperparameter of --method (SFTC: tau or c)")
    p.add_argument("--method", default=None,
                   help="the method, with fixed hyperparameters after colons, e.g. "
                        "'eu-k:init_seed=1' (default sftc; a plugin's with --plugin)")
    p.add_argument("--values", default=None,
                   help="comma-separated values (default: the paper's range for lr, tau and c)")
    p.add_argument("--preset", default=None,
                   help="take data, model and training settings from a benchmark preset")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--resume", action="store_true", help="require --out to hold this sweep already")
    proto = add_reference_options(p)
    proto.add_argument("--lr", type=positive_float, default=1e-3,
                       help="learning rate when fixed (default 1e-3)")
    proto.add_argument("--tau", type=float, default=None,
                       help="SFTC's KL temperature when fixed (paper: 1)")
    proto.add_argument("--c", type=float, default=None,
                       help="SFTC's confusion fraction when fixed (paper: 0)")
    proto.add_argument("--epochs", type=positive_int, default=2,
                       help="unlearning epochs (paper, SFTC: 2, MUFAC 3)")
    proto.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    p.set_defaults(handler=handle)


def build_config(args):
    """The SweepConfig of a command line: the preset (if any), then explicit options."""
    from ...bench.config import SweepConfig, make_config

    method, hparams = "sftc", None
    if args.method is not None:
        chosen = parse_methods(args.method)
        if len(chosen) != 1:
            raise SftcError("--method names one method; a sweep varies one parameter of it")
        method, hparams = chosen[0][0], chosen[0][1] or None
    config, _ = make_config(SweepConfig, args.preset, dataset=args.dataset, model=args.model,
                            param=args.param, lr=args.lr, tau=args.tau, c=args.c,
                            method=method, hparams=hparams,
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
