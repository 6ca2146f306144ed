"""``sftc unlearn``: forget the forget set from a trained model with any registered method."""
from __future__ import annotations

from ..catalog import (MIA_ATTACKERS, TRAIN_EPOCHS, TRAIN_LR, UNLEARN_EPOCHS, UNLEARN_LR,
                       method_help)
from ..checks import data_folder
from ..common import (add_data_args, add_model_arg, add_run_args, agree_on_run,
                      check_world_batch, load_data_from_args, note,
                      parse_method_options, positive_int, recorded_args)
from ..until import add_until_args, handle_until, refuse_fixed_setting


def register(sub) -> None:
    p = sub.add_parser(
        "unlearn", help="unlearn the forget set from a trained model",
        description="Unlearn the forget set (--forget, required) from --checkpoint with --method "
                    "(default sftc) and evaluate the result with the paper's metrics. The "
                    "checkpoint is only read, and checked against the run.json beside it. Method "
                    "hyperparameters are options too, e.g. '--method sftc --tau 1 --c 0.2'; "
                    "'sftc methods' lists every method's options and defaults.")
    add_data_args(p)
    add_model_arg(p)
    add_run_args(p, epochs=None, lr=None,
                 default_note=f"the method's: {UNLEARN_EPOCHS} epochs at {UNLEARN_LR:g}; "
                              f"retrain: {TRAIN_EPOCHS} at {TRAIN_LR:g}, cosine")
    p.add_argument("--checkpoint", required=True, help="the trained original model (model.pt)")
    p.add_argument("--method", default="sftc",
                   help=method_help())
    p.add_argument("--retrained", default=None,
                   help="the oracle's model.pt (sftc train --subset retain); enables Eq. 5 and 6")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    p.add_argument("--scheduler", choices=("constant", "cosine"), default=None,
                   help="default: the method's (constant; retrain: cosine)")
    add_evaluation_args(p)
    add_until_args(p)
    p.add_argument("--out", required=True, help="output directory for model.pt and run.json "
                                                "(never the folder of an input checkpoint)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.set_defaults(handler=handle, accepts_extra=True, distributed=True)


def add_evaluation_args(p) -> None:
    g = p.add_argument_group("evaluation")
    g.add_argument("--no-mia", action="store_true", help="skip the membership-inference attack")
    g.add_argument("--mia-features", choices=("logits", "softmax"), default="logits",
                   help="attacker features: logits (the paper's text, default) or softmax "
                        "(the authors' code)")
    g.add_argument("--mia-iterations", type=positive_int, default=1000,
                   help="CatBoost boosting iterations (default 1000, CatBoost's own default)")
    g.add_argument("--mia-attacker", choices=MIA_ATTACKERS,
                   default="catboost", help="the attack model: catboost (the paper's, default) or "
                                            "scikit-learn's hist-gradient-boosting")


def handle(args, extra) -> int:
    from ... import api
    from ...checkpoints import save_state_dict
    from ...api import resolve_device
    from ...fingerprint import trained_on
    from ...io import atomic_write_json, file_sha256
    from ...lineage import parent_entry
    from ...api import create_method, method_class
    from ...dp import original_privacy
    from ...records import input_files, ranks_record, run_record
    from ..models_io import (load_checkpoint_for, record_beside, recorded_preprocessing,
                             retrain_seconds_of, warn_preprocessing)
    from ..render import print_metrics

    cls = method_class(args.method)
    hparams = parse_method_options(cls, extra)
    create_method(cls.name, **hparams)    # bad values fail before anything loads
    refuse_fixed_setting(args)
    resolve_device(args.device)
    check_world_batch(args.batch_size)
    loaded, split = load_data_from_args(
        args, recorded=recorded_preprocessing(args.checkpoint, args))
    notes: list[str] = []
    original, model_name = load_checkpoint_for(args.checkpoint, args, split, notes=notes)
    retrained = None
    if args.retrained:
        retrained, _ = load_checkpoint_for(args.retrained, args, split, role="retrained",
                                           notes=notes)
    warn_preprocessing(args, split, {"--checkpoint": args.checkpoint,
                                     "--retrained": args.retrained})
    files = {"--checkpoint": args.checkpoint, "--retrained": args.retrained}
    inputs = input_files(files)
    parent = parent_entry(args.checkpoint, inputs["--checkpoint"]["sha256"],
                          record_beside(args.checkpoint))
    if args.until:
        return handle_until(args, hparams, split, original, model_name, notes,
                            lineage={"parent": parent, "inputs": inputs})
    from ..ranks import output_directory

    with output_directory(args.out, args.overwrite, notify=note, inputs=(
            *files.items(), ("--data-dir", data_folder(loaded, args)))) as tmp:
        agree_on_run(args, split, files=files)   # the checkpoints' SHA-256 name the models
        result = api.unlearn(original, split, args.method, epochs=args.epochs, lr=args.lr,
                             batch_size=args.batch_size, seed=args.seed, device=args.device,
                             optimizer=args.optimizer, scheduler=args.scheduler,
                             track=("retain", "forget", "test"), progress=not args.quiet,
                             model_name=model_name, data_parallel=True,  # torchrun: every rank
                             **hparams)
        if tmp is None:   # not rank 0: rank 0 evaluates (once) and writes
            return 0
        metrics = api.evaluate(original, result.model, split, retrained, device=args.device,
                               mia=not args.no_mia, mia_features=args.mia_features,
                               mia_iterations=args.mia_iterations, seed=args.seed,
                               mia_attacker=args.mia_attacker, unlearn_seconds=result.seconds,
                               retrain_seconds=retrain_seconds_of(args.retrained))
        save_state_dict(result.model, tmp / "model.pt")
        config = {**recorded_args(args), **result.config, "model": model_name}
        subset = "retain" if cls.fresh_start else "train"   # the oracle never saw D_f
        atomic_write_json(tmp / "run.json", run_record(
            "unlearn", config, split, result.history, metrics,
            trained_on=trained_on(split, subset, forget=True, forget_seed=args.seed),
            model_sha256=file_sha256(tmp / "model.pt"), parent=parent, inputs=inputs,
            not_verified=notes, **ranks_record(result),
            **original_privacy(record_beside(args.checkpoint))))
    print(f"{cls.label or cls.name} on {split.data.name}: forgot {len(split.forget)} samples "
          f"({split.forget_spec}) in {result.seconds:.2f} s")
    print_metrics(metrics)
    print(f"wrote {args.out}/model.pt and run.json")
    return 0
