"""``sftc sweep``: the sensitivity study of section 5.6 (Figure 5), resumable."""
from __future__ import annotations

import sys

from ...errors import SftcError
from .benchmark import command_line, parse_list


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
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate when fixed (default 1e-3)")
    p.add_argument("--tau", type=float, default=1.0, help="KL temperature when fixed (paper: 1)")
    p.add_argument("--c", type=float, default=0.0, help="confusion fraction when fixed (paper: 0)")
    p.add_argument("--epochs", type=int, default=2, help="SFTC epochs (paper: 2, MUFAC 3)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    p.add_argument("--dataset", default=None)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--forget", default=None)
    p.add_argument("--forget-seed", type=int, default=None)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--train-subset", type=int, default=None)
    p.add_argument("--split-seed", type=int, default=None)
    p.add_argument("--model", default=None)
    p.add_argument("--train-epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--mia-iterations", type=int, default=None)
    p.add_argument("--mia-features", default=None, choices=("logits", "softmax"))
    p.add_argument("--mia-attacker", default=None, choices=("catboost", "hist-gradient-boosting"),
                   help="the attack model (default catboost, the paper's)")
    p.add_argument("--device", default="auto")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(handler=handle)


def build_config(args):
    from ...bench.presets import get_preset
    from ...bench.sweep import PARAMS, SweepConfig
    from ...data import dataset_info
    from ...models import canonical_model_name

    if args.param not in PARAMS:
        raise SftcError(f"unknown sweep parameter {args.param!r}; choose one of: lr, tau, c")
    config = SweepConfig(param=args.param, lr=args.lr, tau=args.tau, c=args.c, epochs=args.epochs)
    if args.preset:
        preset = get_preset(args.preset)
        if args.model:
            preset = preset.with_model(canonical_model_name(args.model))
        for field in ("dataset", "model", "train_epochs", "batch_size", "image_size",
                      "train_subset", "forget", "mia_iterations"):
            setattr(config, field, getattr(preset, field))
    else:
        config.dataset = args.dataset or "digits"
        config.model = args.model or dataset_info(config.dataset).default_model
    for field in ("dataset", "data_dir", "forget", "forget_seed", "image_size", "train_subset",
                  "split_seed", "model", "train_epochs", "batch_size", "mia_iterations",
                  "mia_features", "mia_attacker"):
        value = getattr(args, field)
        if value is not None:
            setattr(config, field, value)
    config.seeds = parse_list(args.seeds, int, "--seeds")
    if args.values is not None:
        config.values = parse_list(args.values, float, "--values")
    config.validate()
    return config


def handle(args, extra) -> int:
    from ...bench.sweep import Sweep

    config = build_config(args)
    sweep = Sweep(config, args.out, device=args.device, cache_dir=args.cache_dir,
                  progress=not args.quiet, resume=args.resume, command=command_line(),
                  log=lambda text: print(text, file=sys.stderr))
    summary = sweep.run()
    print(f"{config.param:>8}  {'forget':>7}  {'test':>7}  {'MIA':>7}")
    for p in summary["points"]:
        if p.get("n_seeds"):
            print(f"{p['value']:>8g}  {p['acc_forget']:7.4f}  {p['acc_test']:7.4f}  "
                  f"{p.get('mia', float('nan')):7.4f}")
        else:
            print(f"{p['value']:>8g}  failed: {p.get('status')}")
    print(f"\nwrote {args.out}/sensitivity.png, sensitivity.csv, report.md")
    return 0
