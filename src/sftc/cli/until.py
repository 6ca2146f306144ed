"""``sftc unlearn --until forgotten``: search the learning rate and stop on the evidence
(bench.until), then audit the kept model on the test split."""
from __future__ import annotations

import argparse

from .catalog import ALPHA, REFERENCES, RESOLUTION, UNLEARN_EPOCHS
from .common import accuracy_drop, positive_float, positive_int, resolution_arg

#: The exit status when no setting within the accuracy budget came inside the retrain band.
NOT_CERTIFIED = 3


def lr_list(text: str) -> tuple[float, ...]:
    import argparse

    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected learning rates such as 1e-3,5e-4, got "
                                         f"{text!r}") from None
    if not values or any(not v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"learning rates must be positive, got {text!r}")
    return values


def add_search_args(g, parent: str) -> None:
    """The search's own options, shared by ``sftc unlearn --until`` and ``sftc deploy forget``;
    ``parent``: whose validation accuracy bounds the drop."""
    g.add_argument("--trials", type=positive_int, default=8,
                   help="learning rates tried at most (default 8)")
    g.add_argument("--max-epochs", type=positive_int, default=4,
                   help="epochs per run at most (default 4, the paper's)")
    g.add_argument("--lrs", type=lr_list, default=None,
                   help="a grid of learning rates to try (default: log-uniform over 1e-5..5e-3, "
                        "the paper's range, by Optuna's TPE sampler)")
    g.add_argument("--max-accuracy-drop", type=accuracy_drop, default=0.02,
                   help=f"largest drop of validation accuracy below {parent} that a kept "
                        "model may have (default 0.02: two points)")


def refuse_fixed_setting(args) -> None:
    """``--until forgotten`` searches the learning rate and the epochs: an ``--epochs`` or
    ``--lr`` beside it would be ignored (and recorded), so it is refused (every command alike)."""
    if getattr(args, "until", None) and (args.epochs is not None or args.lr is not None):
        from ..errors import SftcError
        raise SftcError("--until forgotten searches the learning rate and the epochs; drop "
                        "--epochs/--lr for it, or drop --until for a fixed setting")


def add_until_args(p) -> None:
    g = p.add_argument_group("until forgotten (search the learning rate, stop on the evidence)")
    g.add_argument("--until", choices=("forgotten",), default=None,
                   help="search the method's learning rate with Optuna and stop each run at the "
                        "first epoch the audit's evidence puts inside the retrain band on a selection "
                        "split carved from the validation split (never the test split), within "
                        "--max-accuracy-drop; keep the cheapest such model and audit it on the "
                        "test split. Exit status 3 when no setting came inside the band")
    add_search_args(g, parent="the original's")
    g.add_argument("--references", type=positive_int, default=REFERENCES,
                   help=f"reference models of the evidence (default {REFERENCES})")
    g.add_argument("--resolution", default=RESOLUTION,
                   help=f"the share of the original's excess a certificate must vouch is gone "
                        f"(default {RESOLUTION.replace('%', '%%')})")
    g.add_argument("--margin", default=None, help=argparse.SUPPRESS)
    g.add_argument("--alpha", type=positive_float, default=ALPHA,
                   help=f"the audit's α (default {ALPHA:g})")
    g.add_argument("--cache-dir", default=None, help="the model cache (default $SFTC_CACHE_DIR)")


def handle_until(args, hparams, split, original, model_name, notes,
                 lineage: dict | None = None) -> int:
    """The search, its files (model.pt, run.json, audit.json, report.md, trace.png); run.json
    has the lineage a plain ``sftc unlearn`` writes (``parent``, ``inputs``, ``model_sha256``)."""
    from .. import distributed
    from ..bench.audit import AuditConfig
    from ..bench.until import SearchConfig, require_optuna, unlearn_until_forgotten
    from ..checkpoints import save_state_dict
    from ..fingerprint import trained_on
    from ..io import atomic_write_json, atomic_write_text, file_sha256
    from ..records import package_versions, run_record
    from ..recipes import TrainingRecipe
    from ..report.audit import audit_markdown, audit_summary
    from ..report.plots import search_figure
    from .common import note, recorded_args
    from .models_io import record_beside

    require_optuna()
    if distributed.active():
        from ..errors import SftcError
        raise SftcError("--until forgotten runs as one process; start it without torchrun")
    config = SearchConfig(method=args.method, hparams=hparams, trials=args.trials,
                          max_epochs=args.max_epochs, lrs=args.lrs,
                          max_accuracy_drop=args.max_accuracy_drop, batch_size=args.batch_size,
                          seed=args.seed, model_name=model_name).check()
    recipe = TrainingRecipe.from_record(record_beside(args.checkpoint), model_name)
    audit_config = AuditConfig(references=args.references, resolution=resolution_arg(args), alpha=args.alpha,
                               recipe=recipe, cache_dir=args.cache_dir, seed=args.seed,
                               mia=not args.no_mia, mia_iterations=args.mia_iterations,
                               mia_features=args.mia_features, mia_attacker=args.mia_attacker)
    from .ranks import output_directory

    with output_directory(args.out, args.overwrite, inputs=(args.checkpoint,),
                          notify=note) as tmp:
        result = unlearn_until_forgotten(original, split, config=config,
                                         audit_config=audit_config, device=args.device,
                                         progress=not args.quiet)
        save_state_dict(result.model, tmp / "model.pt")
        audit_record = {"command": "unlearn --until forgotten", **result.audit.to_dict(),
                        "versions": package_versions()}
        run = run_record(       # as a plain 'sftc unlearn' writes it, with the search's trace
            "unlearn", {**recorded_args(args), "model": model_name, "method": args.method,
                        **hparams}, split,
            until=result.to_dict(), audit={"verdict": result.audit.verdict.text,
                                           "reason": result.audit.verdict.reason},
            trained_on=trained_on(split, "train", forget=True), not_verified=notes,
            **(lineage or {}), model_sha256=file_sha256(tmp / "model.pt"))
        atomic_write_json(tmp / "run.json", run)
        atomic_write_json(tmp / "audit.json", audit_record)
        atomic_write_text(tmp / "report.md", audit_markdown(audit_record))
        search_figure(result.trace, config.max_accuracy_drop, tmp / "trace.png",
                      title=f"{args.method} until forgotten on {split.data.name}",
                      chosen=result.chosen)
    _print(result, config, audit_record, audit_summary, args.out)
    return 0 if result.certified else NOT_CERTIFIED


def _print(result, config, audit_record, audit_summary, out) -> None:
    c, t = result.chosen, result.timings
    if result.certified:
        print(f"inside the retrain band on the selection split: lr {c['lr']:.3g} after "
              f"{c['epoch']} epoch(s), AUC {c['auc']:.3f} within ±{c['delta']:.3f} of "
              f"{c['level']:.3f}, validation accuracy drop {c['accuracy_drop']:.3f}")
    else:
        print(f"no setting within the accuracy budget ({config.max_accuracy_drop:g}) came inside "
              f"the retrain band on the selection split in {t['trials_run']} run(s); kept the "
              f"best trade-off: lr {c['lr']:.3g} after {c['epoch']} epoch(s), {c['verdict']}, "
              f"AUC {c['auc']:.3f} against ±{c['delta']:.3f} of {c['level']:.3f}, accuracy drop "
              f"{c['accuracy_drop']:.3f}")
    ratio = t["search_over_retrain"]
    print(f"search: {t['search_seconds']:.1f} s ({t['trials_run']} run(s), {t['epochs_run']} "
          f"epoch(s)) = {t['search_over_fixed_run']:.1f}x a fixed {UNLEARN_EPOCHS}-epoch run, "
          + (f"{ratio:.0%} of retraining ({t['retrain_seconds']:.1f} s)" if ratio else "")
          + f"; references {t['references_seconds']:.1f} s (built once per request, cached)")
    if t.get("total_over_retrain"):
        print(f"cost: {t['total_seconds']:.1f} s in all, references and the final audit "
              f"included = {t['total_over_retrain']:.1f} retrainings")
    for line in audit_summary(audit_record):
        print(f"final audit (test split): {line}" if line.startswith("verdict") else line)
    print(f"wrote {out}/: model.pt, run.json (the whole trace), audit.json, report.md, trace.png")
