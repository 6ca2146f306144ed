"""``sftc evaluate``: the paper's metrics for an (original, unlearned, optional retrained) triple."""
from __future__ import annotations

from ..checks import data_folder
from ..common import (add_data_args, add_model_arg, add_seed_arg, load_data_from_args, note,
                      recorded_args)
from .unlearn import add_evaluation_args


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate an unlearned model with the paper's metrics",
                       description="Accuracy errors (Eq. 5-7), JS distinguishability (Eq. 8) and "
                                   "the CatBoost MIA (Eq. 9) of --unlearned against --original "
                                   "and, when given, the --retrained oracle, on the forget set "
                                   "--forget (required). Each checkpoint is checked against the "
                                   "run.json beside it.")
    add_data_args(p)
    add_model_arg(p)
    p.add_argument("--original", required=True, help="the original model's model.pt")
    p.add_argument("--unlearned", required=True, help="the unlearned model's model.pt")
    p.add_argument("--retrained", default=None, help="the oracle's model.pt (optional)")
    add_seed_arg(p, "seed of the forget draw and the attack (default 0)")
    p.add_argument("--device", default="auto")
    add_evaluation_args(p)
    p.add_argument("--out", default=None, help="directory to write run.json with the metrics")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(handler=handle)


def handle(args, extra) -> int:
    from ...api import resolve_device
    from ...io import atomic_write_json, output_directory
    from ...records import input_files, run_record
    from ..models_io import load_compared_models, recorded_preprocessing
    from ..render import print_metrics

    resolve_device(args.device)
    loaded, split = load_data_from_args(args, recorded=recorded_preprocessing(args.original, args))
    notes: list[str] = []
    original, unlearned, retrained, name, lineage = load_compared_models(args, split, notes)
    files = {"--original": args.original, "--unlearned": args.unlearned,
             "--retrained": args.retrained}
    if args.out:
        with output_directory(args.out, args.overwrite, notify=note, inputs=(
                *files.items(), ("--data-dir", data_folder(loaded, args)))) as tmp:
            metrics = _evaluate(args, split, original, unlearned, retrained)
            atomic_write_json(tmp / "run.json", run_record(
                "evaluate", {**recorded_args(args), "model": name}, split, None, metrics,
                inputs=input_files(files), lineage=lineage, not_verified=notes))
    else:
        metrics = _evaluate(args, split, original, unlearned, retrained)
    print(f"{args.unlearned} against {args.original}"
          + (f" and the oracle {args.retrained}" if args.retrained else " (no oracle: Eq. 5-6 absent)"))
    print_metrics(metrics)
    if args.out:
        print(f"wrote {args.out}/run.json")
    return 0


def _evaluate(args, split, original, unlearned, retrained) -> dict:
    from ... import api
    from ..models_io import retrain_seconds_of, unlearn_seconds_of

    return api.evaluate(original, unlearned, split, retrained, device=args.device,
                        mia=not args.no_mia, mia_features=args.mia_features,
                        mia_iterations=args.mia_iterations, seed=args.seed,
                        mia_attacker=args.mia_attacker,
                        unlearn_seconds=unlearn_seconds_of(args.unlearned),
                        retrain_seconds=retrain_seconds_of(args.retrained))
