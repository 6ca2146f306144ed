"""``sftc deploy``: deletion requests over a deployed model's life (sftc.deploy; the operator's
guide is docs/operations.md)."""
from __future__ import annotations

import argparse

from ..catalog import ALPHA, REFERENCES, RESOLUTION, method_help
from ..common import (add_table_args, positive_float, positive_int, resolution_arg, seed_value,
                      whole)
from ..until import add_search_args, refuse_fixed_setting

PLUGIN_HELP = ("import this module (my_pkg.methods) or .py file before the action runs "
               "(repeatable; as 'sftc deploy --plugin X ACTION')")


def _action(actions, name: str, **kwargs):
    """An action's parser, which takes --plugin too (after the action's name)."""
    q = actions.add_parser(name, allow_abbrev=False, **kwargs)
    q.add_argument("--plugin", action="append", dest="plugins_after", default=None,
                   metavar="MODULE_OR_FILE", help=PLUGIN_HELP)
    return q


POLICY_HELP = ("which verdicts publish a version: forgotten (default: every audit inside the "
               "band models retrained without the samples land in, with the asked resolution), "
               "forgotten-or-undetectable (also nothing-detectable: the attack cannot tell the "
               "original itself from retrained models on the request) or not-refuted (also "
               "not-proven: only a shown difference refuses). Recorded with the request")


def register(sub) -> None:
    p = sub.add_parser(
        "deploy", help="deletion requests over a deployed model's life: a hash-chained ledger, "
                       "a cumulative retain set, re-audits, a purged cache",
        description="A deployment record of a deployed checkpoint (init), requests applied to "
                    "its latest version with evidence for every request so far (forget), the "
                    "record checked (verify) and summarised (status, read-only), an interrupted "
                    "request finished or undone (recover), what the retention policy no longer "
                    "keeps removed (prune), one request's report for a DPO (report). See "
                    "docs/operations.md.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    _init_parser(actions)
    _forget_parser(actions)
    for name, text in (("verify", "recompute the ledger's chain and every recorded file's "
                                  "SHA-256; name the first that does not match (read-only)"),
                       ("status", "check the record, then show the published version and every "
                                  "request's date, method, policy and last verdict (read-only)"),
                       ("recover", "resume or roll back what an interrupted forget left (the "
                                   "next forget does it too)"),
                       ("prune", "remove what the --keep policy recorded at init no longer "
                                 "keeps (earlier versions, attempts, cache items), their "
                                 "SHA-256 kept in the ledger")):
        q = _action(actions, name, help=text, description=text)
        q.add_argument("--dir", required=True, help="the deployment folder")
        if name == "status":
            q.add_argument("--json", action="store_true", help="print the report as JSON")
        if name == "verify":
            q.add_argument("--expect-head", default=None, metavar="HASH",
                           help="a head hash kept from an earlier verify: refused unless the "
                                "ledger still holds it (a rewritten ledger with a re-pointed "
                                "published.json passes every other check)")
        q.set_defaults(handler=handle)
    text = ("write one request's report for a data-protection officer: a self-contained "
            "report.html (no external resources) and report.md (read-only on the deployment)")
    q = _action(actions, "report", help=text, description=text)
    q.add_argument("--dir", required=True, help="the deployment folder")
    q.add_argument("--id", required=True, dest="request_id", help="the request's plain id")
    q.add_argument("--out", required=True, help="a new folder for report.html and report.md")
    q.set_defaults(handler=handle)
    p.set_defaults(handler=handle, action=None)


def _init_parser(actions) -> None:
    q = _action(actions, "init", help="make a deployment record of a deployed checkpoint",
                description="Copy --checkpoint to DIR/versions/v0/model.pt (the file is only "
                            "read), record the training set as sample ids with content SHA-256 "
                            "(never the data) and start the hash-chained ledger.")
    q.add_argument("--dir", required=True, help="the new deployment folder")
    q.add_argument("--checkpoint", required=True, help="the deployed model (model.pt; the "
                                                       "run.json beside it is read)")
    q.add_argument("--dataset", default=None, help="dataset name (default: the one recorded in "
                                                   "the run.json beside --checkpoint, else digits)")
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
    q.add_argument("--keep", default="published",
                   help="what is kept once a later version is published: published (default: "
                        "only the published version), last:N (the N newest versions) or all; "
                        "recorded, applied after every publication and by 'deploy prune'")
    q.add_argument("--key-file", default=None,
                   help="the key of the ledger's pseudonyms (HMAC-SHA-256), kept by the "
                        "operator outside the deployment; made if missing (default DIR.key "
                        "beside the folder)")
    q.set_defaults(handler=handle)


def _forget_parser(actions) -> None:
    q = _action(
        actions, "forget", help="apply a deletion request to the latest version",
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
    q.add_argument("--method", default="sftc", help=method_help())
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
    a.add_argument("--require", choices=("forgotten", "forgotten-or-undetectable", "not-refuted"),
                   default="forgotten",
                   help=POLICY_HELP)
    a.add_argument("--references", type=positive_int, default=REFERENCES,
                   help=f"reference models, retrained on the cumulative retain set (default "
                        f"{REFERENCES})")
    a.add_argument("--attack", default="rmia", help="the deciding attack (default rmia)")
    a.add_argument("--alpha", type=positive_float, default=ALPHA,
                   help=f"α of each one-sided test (default {ALPHA:g})")
    a.add_argument("--resolution", default=RESOLUTION,
                   help=f"the share of the original's excess a certificate must vouch is gone "
                        f"(default {RESOLUTION.replace('%', '%%')})")
    a.add_argument("--margin", default=None, help=argparse.SUPPRESS)
    a.add_argument("--no-paper-metrics", action="store_true",
                   help="skip the paper's metrics in every audit (faster)")
    a.add_argument("--no-mia", action="store_true", help="skip the paper's CatBoost MIA")
    q.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.set_defaults(handler=handle, accepts_extra=True)


def handle(args, extra) -> int:
    if args.action is None:
        from ...errors import SftcError
        raise SftcError("give an action: sftc deploy init | forget | verify | status | recover "
                        "| prune | report (see 'sftc deploy --help')")
    return {"init": _init, "forget": _forget, "verify": _verify, "status": _status,
            "recover": _recover, "prune": _prune, "report": _report}[args.action](args, extra)


def _init(args, extra) -> int:
    from ... import deploy
    from ..common import note

    overrides = {"epochs": args.ref_epochs, "lr": args.ref_lr, "batch_size": args.ref_batch_size}
    payload = deploy.init(args.dir, checkpoint=args.checkpoint, dataset=args.dataset,
                          data_dir=args.data_dir, model=args.model, image_size=args.image_size,
                          split_seed=args.split_seed, cache_dir=args.cache_dir,
                          subsets={"train": args.train_subset, "test": args.test_subset,
                                   "val": args.val_subset}, recipe_overrides=overrides,
                          keep=args.keep, key_file=args.key_file,
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
    print(f"retention: --keep {payload['retention']['keep']}; pseudonyms keyed by "
          f"{payload['pseudonyms']['key_file']} (keep it, outside the deployment)")
    return 0


def _forget(args, extra) -> int:
    from ... import deploy
    from ...api import create_method, method_class
    from ..common import parse_method_options

    cls = method_class(args.method)
    hparams = parse_method_options(cls, extra)
    create_method(cls.name, **hparams)            # bad values: one line, before anything runs
    refuse_fixed_setting(args)
    if args.epochs is None and args.lr is None:
        from ...bench.until import require_optuna
        require_optuna()
    options = deploy.ForgetOptions(
        request_id=args.request_id, method=cls.name, hparams=hparams, epochs=args.epochs,
        lr=args.lr, batch_size=args.batch_size, seed=args.seed, trials=args.trials,
        max_epochs=args.max_epochs, lrs=args.lrs, max_accuracy_drop=args.max_accuracy_drop,
        require=args.require, references=args.references, attack=args.attack,
        alpha=args.alpha, resolution=resolution_arg(args), paper_metrics=not args.no_paper_metrics,
        mia=not args.no_mia, device=args.device, progress=not args.quiet,
        data_dir=args.data_dir)
    return deploy.forget(args.dir, args.request, options)


def _verify(args, extra) -> int:
    from ... import deploy
    from ...deploy.folder import Deployment

    from ...errors import SftcError

    reveal = _revealer(Deployment(args.dir))
    try:
        report = deploy.verify(Deployment(args.dir), expect_head=args.expect_head)
    except SftcError as exc:
        raise SftcError(reveal(str(exc))) from None
    for text in report.lines():
        print(reveal(text))
    print(f"anchor: keep or hand over the head {report.head} (entry count {report.entries}); "
          "a ledger that still holds it cannot have been truncated or rewritten before it")
    return 0


def _status(args, extra) -> int:
    import json

    from ... import deploy

    if args.json:
        print(json.dumps(deploy.status(args.dir, say=lambda text: None), indent=2,
                         ensure_ascii=False))
    else:
        deploy.status(args.dir)
    return 0


def _recover(args, extra) -> int:
    from ... import deploy

    deploy.recover_now(args.dir)
    return 0


def _prune(args, extra) -> int:
    from ...deploy.forget import prune

    prune(args.dir)
    return 0


def _report(args, extra) -> int:
    from ...deploy.report import write_report

    for path in write_report(args.dir, args.request_id, args.out):
        print(f"wrote {path}")
    return 0


def _revealer(dep):
    """Plain ids for pseudonyms where the operator's key and mapping are at hand (verify needs
    neither: it checks hashes only)."""
    from ...deploy.names import Names
    from ...errors import SftcError

    try:
        return Names.of_ledger(dep.ledger.read().entries).reveal
    except (SftcError, KeyError, IndexError, TypeError, AttributeError):
        return str
