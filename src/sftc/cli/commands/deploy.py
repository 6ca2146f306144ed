"""``sftc deploy``: deletion requests over a deployed model's life (sftc.deploy; the operator's
guide is docs/operations.md)."""
from __future__ import annotations

from ..catalog import ALPHA, MARGIN, METHODS, REFERENCES
from ..common import add_table_args, positive_float, positive_int, seed_value, whole
from ..until import add_search_args

POLICY_HELP = ("which verdicts publish a version: forgotten (default: every audit must show "
               "equivalence to never-seen data) or not-refuted (forgotten or not-proven: only a "
               "shown difference refuses; what small requests usually get). Recorded with the "
               "request")


def register(sub) -> None:
    p = sub.add_parser(
        "deploy", help="deletion requests over a deployed model's life: a hash-chained ledger, "
                       "a cumulative retain set, re-audits, a purged cache",
        description="A deployment record of a deployed checkpoint (init), requests applied to "
                    "its latest version with evidence for every request so far (forget), the "
                    "record checked (verify) and summarised (status). See docs/operations.md.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    _init_parser(actions)
    _forget_parser(actions)
    for name, text in (("verify", "recompute the ledger's chain and every recorded file's "
                                  "SHA-256; name the first that does not match (read-only)"),
                       ("status", "resume or roll back an interrupted forget, then show the "
                                  "published version and every request's last verdict")):
        q = actions.add_parser(name, help=text, description=text, allow_abbrev=False)
        q.add_argument("--dir", required=True, help="the deployment folder")
        q.set_defaults(handler=handle)
    p.set_defaults(handler=handle, action=None)


def _init_parser(actions) -> None:
    q = actions.add_parser("init", allow_abbrev=False,
                           help="make a deployment record of a deployed checkpoint",
                           description="Copy --checkpoint to DIR/versions/v0/model.pt (the file "
                                       "is only read), record the training set as sample ids "
                                       "with content SHA-256 (never the data) and start the "
                                       "hash-chained ledger.")
    q.add_argument("--dir", required=True, help="the new deployment folder")
    q.add_argument("--checkpoint", required=True, help="the deployed model (model.pt; the "
                                                       "run.json beside it is read)")
    q.add_argument("--dataset", default="digits", help="dataset name (default digits)")
    q.add_argument("--data-dir", default=None, help="its folder (imagefolder: train/, val/, "
                                                    "test/)")
    q.add_argument("--model", default=None, help="architecture (default: recorded beside the "
                                                 "checkpoint, else the dataset's)")
    q.add_argument("--image-size", type=positive_int, default=None)
    add_table_args(q)
    q.add_argument("--split-seed", type=seed_value, default=0)
    for part in ("train", "test", "val"):
        q.add_argument(f"--{part}-subset", type=whole(2, "a whole number 2 or more"),
                       default=None, help=f"a stratified {part} subset (default: the one "
                                          "recorded beside the checkpoint, else all)")
    q.add_argument("--cache-dir", default=None, help="the model cache the audits use and the "
                   "purge cleans (default $SFTC_CACHE_DIR, else ~/.cache/sftc/references)")
    q.add_argument("--ref-epochs", type=positive_int, default=None,
                   help="reference training epochs (default: the original's, from its run.json)")
    q.add_argument("--ref-lr", type=positive_float, default=None)
    q.add_argument("--ref-batch-size", type=positive_int, default=None)
    q.set_defaults(handler=handle)


def _forget_parser(actions) -> None:
    q = actions.add_parser(
        "forget", allow_abbrev=False, help="apply a deletion request to the latest version",
        description="Unlearn the request's samples from the latest version with a retain set "
                    "that excludes every earlier request, audit it and every earlier request "
                    "whose files still exist on the new model, and publish the new version only "
                    "if every audit meets --require. Method options as for 'sftc unlearn' "
                    "(e.g. --tau 1). Exit status 3 when the version was not published.")
    q.add_argument("--dir", required=True, help="the deployment folder")
    q.add_argument("--request", required=True, help="a text file naming the samples to delete, "
                   "one per line (imagefolder: image paths relative to train/)")
    q.add_argument("--id", required=True, dest="request_id", help="the request's id, e.g. user07")
    q.add_argument("--data-dir", default=None,
                   help="where the data lies now, if it moved (default: the folder recorded at "
                        "init; its content is checked against the record's hashes either way)")
    q.add_argument("--method", default="sftc", help=f"one of: {', '.join(METHODS)}")
    q.add_argument("--epochs", type=positive_int, default=None,
                   help="a fixed setting instead of the default --until forgotten search (with "
                        "--lr; the one left out is the method's default)")
    q.add_argument("--lr", type=positive_float, default=None, help="a fixed learning rate")
    q.add_argument("--batch-size", type=positive_int, default=64, help="default 64")
    q.add_argument("--seed", type=seed_value, default=0, help="default 0")
    g = q.add_argument_group("until forgotten (the default: as 'sftc unlearn --until forgotten')")
    g.add_argument("--until", choices=("forgotten",), default=None,
                   help="search the learning rate with Optuna, stop each run on the evidence on "
                        "a selection split carved from the validation split (the default)")
    add_search_args(g, parent="the parent version's")
    a = q.add_argument_group("evidence")
    a.add_argument("--require", choices=("forgotten", "not-refuted"), default="forgotten",
                   help=POLICY_HELP)
    a.add_argument("--references", type=positive_int, default=REFERENCES,
                   help=f"reference models, retrained on the cumulative retain set (default "
                        f"{REFERENCES})")
    a.add_argument("--attack", default="rmia", help="the deciding attack (default rmia)")
    a.add_argument("--alpha", type=positive_float, default=ALPHA,
                   help=f"α of each one-sided test (default {ALPHA:g})")
    a.add_argument("--margin", default=MARGIN,
                   help=f"the audit's margin (default {MARGIN.replace('%', '%%')})")
    a.add_argument("--no-paper-metrics", action="store_true",
                   help="skip the paper's metrics in every audit (faster)")
    a.add_argument("--no-mia", action="store_true", help="skip the paper's CatBoost MIA")
    q.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.set_defaults(handler=handle, accepts_extra=True)


def handle(args, extra) -> int:
    if args.action is None:
        from ...errors import SftcError
        raise SftcError("give an action: sftc deploy init | forget | verify | status "
                        "(see 'sftc deploy --help')")
    return {"init": _init, "forget": _forget, "verify": _verify, "status": _status}[
        args.action](args, extra)


def _init(args, extra) -> int:
    from ... import deploy
    from ..common import note

    overrides = {"epochs": args.ref_epochs, "lr": args.ref_lr, "batch_size": args.ref_batch_size}
    payload = deploy.init(args.dir, checkpoint=args.checkpoint, dataset=args.dataset,
                          data_dir=args.data_dir, model=args.model, image_size=args.image_size,
                          split_seed=args.split_seed, cache_dir=args.cache_dir,
                          subsets={"train": args.train_subset, "test": args.test_subset,
                                   "val": args.val_subset}, recipe_overrides=overrides,
                          table={"file": args.data_file, "target": args.target,
                                 "id_column": args.id_column, "group_column": args.group_column})
    for text in payload["not_verified"]:
        note(text)
    s = payload["samples"]
    print(f"deployment {args.dir}: v0 = {args.checkpoint} (SHA-256 "
          f"{payload['model']['sha256'][:16]}…), {s['train']} training samples recorded by id "
          f"and content SHA-256 ({s['ids']}), val {s['val']}, test {s['test']}; references: "
          f"{payload['recipe']['model']}, {payload['recipe']['epochs']} epochs "
          f"({payload['recipe_source']}); cache {payload['cache_dir']}")
    return 0


def _forget(args, extra) -> int:
    from ... import deploy
    from ...errors import SftcError
    from ...api import create_method, method_class
    from ..common import parse_method_options

    cls = method_class(args.method)
    hparams = parse_method_options(cls, extra)
    create_method(cls.name, **hparams)            # bad values: one line, before anything runs
    if args.until and (args.epochs is not None or args.lr is not None):
        raise SftcError("--until forgotten searches the learning rate and the epochs; drop "
                        "--epochs/--lr for it, or drop --until for a fixed setting")
    if args.epochs is None and args.lr is None:
        from ...bench.until import require_optuna
        require_optuna()
    options = deploy.ForgetOptions(
        request_id=args.request_id, method=cls.name, hparams=hparams, epochs=args.epochs,
        lr=args.lr, batch_size=args.batch_size, seed=args.seed, trials=args.trials,
        max_epochs=args.max_epochs, lrs=args.lrs, max_accuracy_drop=args.max_accuracy_drop,
        require=args.require, references=args.references, attack=args.attack,
        alpha=args.alpha, margin=args.margin, paper_metrics=not args.no_paper_metrics,
        mia=not args.no_mia, device=args.device, progress=not args.quiet,
        data_dir=args.data_dir)
    return deploy.forget(args.dir, args.request, options)


def _verify(args, extra) -> int:
    from ... import deploy
    from ...deploy.folder import Deployment

    report = deploy.verify(Deployment(args.dir))
    for text in report.lines():
        print(text)
    print(f"anchor: keep or hand over the head {report.head} (entry count {report.entries}); "
          "a ledger that still holds it cannot have been truncated or rewritten before it")
    return 0


def _status(args, extra) -> int:
    from ... import deploy

    deploy.status(args.dir)
    return 0
