"""``sftc audit``: evidence that a forget set is forgotten, with one verdict (bench.audit)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..catalog import ALPHA, ATTACKS, REFERENCES, RESOLUTION
from ..common import (add_data_args, add_model_arg, add_seed_arg, agree_on_run, forget_spec,
                      load_data_from_args, note, positive_float, positive_int, recorded_args,
                      resolution_arg, seed_value)
from ..checks import check_reference_count, data_folder
from .unlearn import add_evaluation_args


def fpr_list(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected rates such as 0.01,0.001, got {text!r}") from None
    if not values or any(not 0 < v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"rates must lie strictly between 0 and 1, got {text!r}")
    return values


def register(sub) -> None:
    p = sub.add_parser(
        "audit", help="evidence that the forget set is forgotten: per-example membership attacks "
                      "and one verdict",
        description="Audit --unlearned for the forget set --forget (required): per-example "
                    "membership attacks (RMIA, LiRA), calibrated on reference models retrained "
                    "without D_f, compare D_f with never-seen test samples of its class and "
                    "difficulty, first on --original (the attack's power), then on --unlearned "
                    "(and --retrained, the oracle, when given), each against the band within "
                    "which the references, scored against one another, land. Verdict: "
                    "forgotten (inside the band, with the power to vouch for --resolution), "
                    "not-forgotten (beyond it), nothing-detectable (the original itself is "
                    "inside it) or not-proven. Writes audit.json and "
                    "report.md into --out; the paper's metrics are reported beside the attacks.")
    add_data_args(p)
    add_model_arg(p)
    p.add_argument("--original", required=True, help="the original model's model.pt")
    p.add_argument("--unlearned", required=True, help="the unlearned model's model.pt")
    p.add_argument("--retrained", "--oracle", dest="retrained", default=None,
                   help="the retrain-from-scratch oracle's model.pt (optional; audited the same "
                        "way, as a control)")
    g = p.add_argument_group("attack")
    g.add_argument("--references", type=positive_int, default=REFERENCES,
                   help=f"number of reference models, 4 or more (default {REFERENCES}; each is "
                        "retrained on D_r without the forget set, cached)")
    g.add_argument("--attack", default="rmia",
                   help=f"the attack that decides the verdict: {', '.join(ATTACKS)} (rmia = "
                        "rmia-offline, the default; lira = lira-offline) or one a plugin "
                        "registers; every applicable attack is reported")
    g.add_argument("--alpha", type=positive_float, default=ALPHA,
                   help=f"significance level α of each one-sided test (default {ALPHA:g}: a "
                        f"{round(100 * (1 - 2 * ALPHA))}%% interval)")
    g.add_argument("--resolution", default=RESOLUTION,
                   help=f"the share of the original's excess over the never-seen level that a "
                        f"certificate must vouch is gone (default {RESOLUTION.replace('%', '%%')}: "
                        "a model keeping half of it is certified at most 10%% of the time), or "
                        "the largest AUC excess it may leave undetected, e.g. 0.05")
    g.add_argument("--margin", default=None, help=argparse.SUPPRESS)
    g.add_argument("--fpr", type=fpr_list, default=None,
                   help="false-positive rates for TPR@FPR, e.g. 0.01,0.001 (default: those two, "
                        "n/a where the test split is too small; rates given here must be "
                        "resolvable)")
    g.add_argument("--reference-seed", type=seed_value, default=0,
                   help="seed of the references' training seeds (default 0)")
    g.add_argument("--ref-epochs", type=positive_int, default=None,
                   help="reference training epochs (default: the original's, from the run.json "
                        "beside it, else 30)")
    g.add_argument("--ref-lr", type=positive_float, default=None,
                   help="reference learning rate (default: the original's, else 1e-3)")
    g.add_argument("--ref-batch-size", type=positive_int, default=None,
                   help="reference batch size (default: the original's, else 64)")
    g.add_argument("--cache-dir", default=None,
                   help="reference cache (default $SFTC_CACHE_DIR, else ~/.cache/sftc/references)")
    add_seed_arg(p, "seed of the forget draw (as given to unlearn) and the CatBoost MIA (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument(
        "--quiet", action="store_true",
        help="no progress bars: one line every 60 s says the command is still working")
    add_evaluation_args(p)
    p.add_argument("--no-paper-metrics", action="store_true",
                   help="skip the paper's metrics (accuracies, Eq. 5-7, JS, CatBoost MIA)")
    p.add_argument("--out", required=True, help="directory for audit.json and report.md")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.set_defaults(handler=handle, distributed=True)


def handle(args, extra) -> int:
    from ...bench.audit import audit
    from ...bench.cache import default_cache_dir
    from ...recipes import TrainingRecipe as ReferenceRecipe
    from ...api import resolve_device
    from ...io import atomic_write_json, atomic_write_text
    from ...records import package_versions
    from ...report.audit import audit_markdown, audit_summary
    from ..models_io import load_compared_models, record_beside, recorded_preprocessing

    resolve_device(args.device)
    loaded, split = load_data_from_args(args, recorded=recorded_preprocessing(args.original, args))
    if forget_spec(args) is None:
        note(f"--forget protocol is {split.forget_spec} for {args.dataset}")
    check_reference_count(args.references, split)
    notes: list[str] = []
    original, unlearned, oracle, name, lineage = load_compared_models(args, split, notes)
    recipe = ReferenceRecipe.from_record(record_beside(args.original), name,
                                         epochs=args.ref_epochs, lr=args.ref_lr,
                                         batch_size=args.ref_batch_size)
    checkpoints = {"original": args.original, "unlearned": args.unlearned}
    if args.retrained:
        checkpoints["oracle"] = args.retrained
    options = dict(oracle=oracle, references=args.references, attack=args.attack,
                   recipe=recipe, fprs=args.fpr, alpha=args.alpha, resolution=resolution_arg(args),
                   reference_seed=args.reference_seed, cache_dir=args.cache_dir,
                   device=args.device, paper_metrics=not args.no_paper_metrics,
                   mia=not args.no_mia, mia_features=args.mia_features,
                   mia_iterations=args.mia_iterations, mia_attacker=args.mia_attacker,
                   seed=args.seed, train_names=loaded.train_names, checkpoints=checkpoints,
                   notes=notes, progress=not args.quiet)
    from ..ranks import output_directory

    inputs = [(f"--{role}", path) for role, path in checkpoints.items()]
    with output_directory(args.out, args.overwrite, notify=note, inputs=(
            *inputs, ("--data-dir", data_folder(loaded, args)))) as tmp:
        agree_on_run(args, split, files={f"--{role}": path for role, path in checkpoints.items()},
                     cache=str(Path(args.cache_dir or default_cache_dir()).resolve()))
        result = audit(original, unlearned, split, **options)   # torchrun: references shared
        if result is None:   # not rank 0: rank 0 attacks, evaluates and writes
            return 0
        record = {"command": "audit", **result.to_dict(), "lineage": lineage,
                  "config": {**recorded_args(args), "model": name},
                  "versions": package_versions()}
        atomic_write_json(tmp / "audit.json", record)
        atomic_write_text(tmp / "report.md", audit_markdown(record))
    for line in audit_summary(record, out=args.out):
        print(line)
    return 0
