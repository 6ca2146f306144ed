"""``sftc train``: train the original model (or, with --subset retain, the retrain oracle)."""
from __future__ import annotations

from ..catalog import TRAIN_EPOCHS, TRAIN_LR

from ...errors import SftcError
from ..checks import data_folder
from ..common import (add_data_args, add_model_arg, add_run_args, agree_on_run,
                      check_world_batch, forget_spec, load_data_from_args, model_fact, note,
                      positive_float, recorded_args, resolve_model_name)


def register(sub) -> None:
    p = sub.add_parser("train", help="train an original model (or the retrain-from-scratch oracle)",
                       description="Train a model from scratch with the paper's recipe (Adam, "
                                   "cosine annealing, batch 64). Writes model.pt and run.json "
                                   "into --out; run.json records what the model was trained on, "
                                   "so that later commands can check it against their data.")
    add_data_args(p, forget="optional")
    add_model_arg(p)
    add_run_args(p, epochs=TRAIN_EPOCHS, lr=TRAIN_LR)
    p.add_argument("--subset", choices=("train", "retain"), default="train",
                   help="train: the original model on retain+forget; retain: the oracle, trained "
                        "without the forget set given by --forget (default train)")
    p.add_argument("--augment", action="store_true",
                   help="random crop and flip while training (the paper's code does this)")
    dp = p.add_argument_group("differential privacy (Opacus: pip install \"sftc[dp]\")")
    dp.add_argument("--dp-epsilon", type=positive_float, default=None,
                    help="train with DP-SGD spending at most this ε (the model becomes dp:MODEL, "
                         "BatchNorm replaced by GroupNorm; run.json records the ε spent)")
    dp.add_argument("--dp-delta", type=positive_float, default=None,
                    help="δ of the guarantee (default 1/(10 N) for N training samples)")
    dp.add_argument("--max-grad-norm", type=positive_float, default=None,
                    help="per-sample gradient clipping norm C (default 1.0)")
    p.add_argument("--out", required=True, help="output directory for model.pt and run.json")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.set_defaults(handler=handle, distributed=True)


def handle(args, extra) -> int:
    from ... import api
    from ...checkpoints import save_state_dict
    from ...api import resolve_device
    from ...fingerprint import trained_on
    from ...io import atomic_write_json, file_sha256
    from ...api import accuracies, subset_logits
    from ...records import ranks_record, run_record
    from ..render import print_accuracies

    if args.subset == "retain" and args.forget is None:
        raise SftcError("--subset retain trains the oracle without the forget set, so --forget is "
                        "required (e.g. --forget random:0.1, or --forget protocol for the "
                        "dataset's own)")
    check_world_batch(args.batch_size)
    privacy = privacy_from_args(args)
    # The original model sees every training sample, so without --forget no forget set is drawn
    # (a placeholder of one sample keeps the split well-formed and is never reported).
    named = args.forget is not None
    loaded, split = load_data_from_args(args, forget=True if named else "first:1")
    if named and forget_spec(args) is None:
        note(f"--forget protocol is {split.forget_spec} for {args.dataset}")
    model_name = resolve_model_name(args)
    resolve_device(args.device)
    from ..ranks import output_directory

    with output_directory(args.out, args.overwrite, notify=note,
                          inputs=[("--data-dir", data_folder(loaded, args))]) as tmp:
        agree_on_run(args, split, forget=named, **model_fact(model_name, split, args.seed))
        result = api.train(split, model_name, epochs=args.epochs, lr=args.lr,
                           batch_size=args.batch_size, seed=args.seed, device=args.device,
                           augment=args.augment, subset=args.subset, progress=not args.quiet,
                           data_parallel=True,   # under torchrun: one run over every rank
                           privacy=privacy)
        model_name = result.config["model"]
        if tmp is None:   # not rank 0: rank 0 evaluates and writes
            return 0
        subsets = ("retain", "forget", "val", "test") if named else ("train", "val", "test")
        metrics = accuracies(subset_logits(result.model, split, resolve_device(args.device),
                                           subsets), split)
        config = {**recorded_args(args), **result.config}
        save_state_dict(result.model, tmp / "model.pt")
        record = run_record("train", config, split, result.history, metrics,
                            trained_on=trained_on(split, args.subset,
                                                  forget_seed=args.seed if named else None),
                            model_sha256=file_sha256(tmp / "model.pt"),
                            retrain_seconds=result.seconds if args.subset == "retain" else None,
                            train_seconds=result.seconds, **ranks_record(result),
                            **({"dp": result.config["dp"]} if privacy else {}))
        if not named:
            del record["forget"]
            for key in ("retain", "forget"):
                record["dataset"]["sizes"].pop(key)
        atomic_write_json(tmp / "run.json", record)
    print_accuracies(f"{'oracle' if args.subset == 'retain' else 'original'} model "
                     f"({model_name}, {result.seconds:.1f} s)", metrics)
    if privacy:
        spent = result.config["dp"]
        print(f"differential privacy: ε = {spent['epsilon']:.3f} spent (asked {spent['asked_epsilon']:g})"
              f" at δ = {spent['delta']:.3g}; noise multiplier {spent['noise_multiplier']:.3f}, "
              f"clipping norm {spent['max_grad_norm']:g}, accountant {spent['accountant']}")
    print(f"wrote {args.out}/model.pt and run.json")
    return 0


def privacy_from_args(args):
    """The :class:`sftc.dp.PrivacyRecipe` of --dp-epsilon/--dp-delta/--max-grad-norm (None
    without --dp-epsilon); refused in one line when Opacus is missing or under torchrun."""
    if args.dp_epsilon is None:
        if args.dp_delta is not None or args.max_grad_norm is not None:
            raise SftcError("--dp-delta and --max-grad-norm go with --dp-epsilon E")
        return None
    from ... import distributed
    from ...dp import MAX_GRAD_NORM, PrivacyRecipe, require_opacus

    require_opacus()
    if distributed.launched():
        raise SftcError("--dp-epsilon trains in one process; run it without torchrun")
    return PrivacyRecipe(args.dp_epsilon, args.dp_delta, args.max_grad_norm or MAX_GRAD_NORM)
