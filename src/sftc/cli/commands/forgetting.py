"""``sftc forgetting-score``: the NeurIPS 2023 challenge's score of a method (bench.forgetting)."""
from __future__ import annotations

from ..catalog import TRAIN_EPOCHS, TRAIN_LR, ORIGINALS
from ..common import (add_data_args, add_model_arg, add_seed_arg, load_split_from_args, note,
                      parse_method_options, positive_float, positive_int, recorded_args,
                      resolve_model_name, whole)


def register(sub) -> None:
    p = sub.add_parser(
        "forgetting-score",
        help="the NeurIPS 2023 unlearning challenge's forgetting score of a method",
        description="Train N originals (or one, --originals shared), run --method on each, "
                    "retrain N oracles without the forget set, and score how well per-example "
                    "threshold attacks tell the unlearned models from the retrained ones (the "
                    "challenge's ε, buckets and accuracy ratios), with U-LiRA beside it. Models "
                    "are cached. Method hyperparameters are options, e.g. '--method sftc --c 0.2'.")
    add_data_args(p)
    add_model_arg(p)
    p.add_argument("--method", default="sftc", help="the unlearning method (default sftc)")
    p.add_argument("--models", type=whole(3, "a whole number 3 or more"), default=16,
                   help="N, unlearned and retrained models each (default 16; the challenge: 512)")
    p.add_argument("--originals", choices=ORIGINALS, default="independent",
                   help="independent: one original per unlearning run (default); shared: one "
                        "original for all N, as the challenge's main.py")
    p.add_argument("--train-epochs", type=positive_int, default=TRAIN_EPOCHS,
                   help="epochs of the originals and oracles (default 30)")
    p.add_argument("--train-lr", type=positive_float, default=1e-3,
                   help="learning rate of the originals and oracles (default 1e-3)")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="unlearning epochs (default: the method's)")
    p.add_argument("--lr", type=positive_float, default=None,
                   help="unlearning learning rate (default: the method's)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="batch size (default 64)")
    add_seed_arg(p, "seed of the forget draw; model k uses seed + k (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--cache-dir", default=None,
                   help="model cache (default $SFTC_CACHE_DIR, else ~/.cache/sftc/references)")
    p.add_argument(
        "--quiet", action="store_true",
        help="no progress bars: one line every 60 s says the command is still working")
    p.add_argument("--out", required=True, help="directory for forgetting.json and report.md")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.set_defaults(handler=handle, accepts_extra=True)


def handle(args, extra) -> int:
    from ...bench.forgetting import forgetting_score
    from ...api import resolve_device
    from ...io import atomic_write_json, atomic_write_text, output_directory
    from ...limits import check_models
    from ...api import create_method, method_class
    from ...records import package_versions
    from ...report.forgetting import forgetting_markdown, forgetting_summary

    cls = method_class(args.method)
    hparams = parse_method_options(cls, extra)
    create_method(cls.name, **hparams)    # bad values fail before anything loads
    resolve_device(args.device)
    split = load_split_from_args(args)
    check_models(args.models, args.seed, len(split.forget))
    with output_directory(args.out, args.overwrite, notify=note) as tmp:
        result = forgetting_score(
            split, cls.name, n_models=args.models, originals=args.originals,
            model=resolve_model_name(args), train_epochs=args.train_epochs,
            train_lr=args.train_lr, batch_size=args.batch_size, unlearn_epochs=args.epochs,
            unlearn_lr=args.lr, hparams=hparams, seed=args.seed, cache_dir=args.cache_dir,
            device=args.device, progress=not args.quiet)
        record = {"command": "forgetting-score", **result.to_dict(),
                  "config": recorded_args(args), "versions": package_versions()}
        atomic_write_json(tmp / "forgetting.json", record)
        atomic_write_text(tmp / "report.md", forgetting_markdown(record))
    for line in forgetting_summary(record, out=args.out):
        print(line)
    return 0
