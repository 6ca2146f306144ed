"""``sftc demo``: the main job on the embedded default (digits), end to end.

The setting is one where the original memorises its training data (the digits-memorising
benchmark preset's data: 300 training images, 30 epochs, a forget set of 30 % of each class), so
that there is something to forget: the per-example attack tells the original's forget set from
never-seen data and not the oracle's."""
from __future__ import annotations

import time

from ... import limits
from ...errors import SftcError
from ..catalog import UNLEARN_EPOCHS, UNLEARN_LR
from ..common import add_seed_arg, note, positive_float, positive_int, recorded_args

TRACK = ("retain", "forget", "test")
DEFAULT_FORGET = "random:0.3"
#: The demo's data: the digits-memorising preset's subsets (docs/benchmark.md).
TRAIN_SUBSET, TEST_SUBSET, REFERENCES = 300, 300, 8


def register(sub) -> None:
    p = sub.add_parser(
        "demo", help="train, unlearn with every method, evaluate and report, on digits",
        description="The whole pipeline on the embedded digits data, in a setting where the "
                    "original memorises its training data (300 training images, 30 epochs): "
                    "train the original model and the retrain-from-scratch oracle, forget 30%% of "
                    "every class with every method (SFTC and the baselines), evaluate all of them "
                    "with the paper's metrics and the per-example attack (RMIA, against reference "
                    "models), print the gap to close and a table shaped like the paper's Table 1, "
                    "and write run.json, report.md, convergence.png, attack.png and the models into "
                    "--out. About a minute on a 2-core CPU.")
    p.add_argument("--out", default="demo-out", help="output directory (default demo-out)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.add_argument("--forget", default=DEFAULT_FORGET,
                   help=f"forget spec (default {DEFAULT_FORGET}: 30 %% of every class)")
    p.add_argument("--train-subset", type=positive_int, default=TRAIN_SUBSET,
                   help=f"a stratified subset of this many training images (default "
                        f"{TRAIN_SUBSET}: few enough that the original memorises them)")
    p.add_argument("--test-subset", type=positive_int, default=TEST_SUBSET,
                   help=f"a stratified subset of this many test images (default {TEST_SUBSET})")
    p.add_argument("--references", type=int, default=REFERENCES,
                   help=f"reference models of the per-example attack (retrained without D_f), "
                        f"4 or more; 0: no attack "
                        f"(default {REFERENCES})")
    p.add_argument("--cache-dir", default=None,
                   help="where the attack's reference models are cached (default $SFTC_CACHE_DIR "
                        "or ~/.cache/sftc/references)")
    p.add_argument("--model", default="small-cnn", help="architecture (default small-cnn)")
    p.add_argument("--epochs", type=positive_int, default=30,
                   help="training epochs of M and M_R (default 30, the paper's)")
    p.add_argument("--unlearn-epochs", type=positive_int, default=UNLEARN_EPOCHS,
                   help=f"unlearning epochs (default {UNLEARN_EPOCHS})")
    p.add_argument("--lr", type=positive_float, default=UNLEARN_LR,
                   help=f"unlearning learning rate for every method (default {UNLEARN_LR:g}); "
                        "'sftc benchmark' searches a grid per method instead")
    p.add_argument("--methods", default="all",
                   help="comma-separated methods to run (default all registered)")
    add_seed_arg(p, "seed of initialisation, shuffling and the forget draw (default 0)")
    p.add_argument("--device", default="auto")
    p.add_argument("--mia-iterations", type=positive_int, default=1000)
    p.add_argument("--accel", choices=("off", "auto", "bf16"), default="off",
                   help="speed choices of training and unlearning: off (default: the plain path, "
                        "so that the table is the same run after run), auto (each optimisation "
                        "where a measurement shows it pays; results differ from the plain path by "
                        "float rounding, which the MIA's attacker can amplify) or bf16 (auto plus "
                        "bfloat16 autocast of the training steps; see docs/performance.md)")
    p.add_argument(
        "--quiet", action="store_true",
        help="no progress bars: one line every 60 s says the command is still working")
    p.set_defaults(handler=handle)


def chosen_methods(spec: str) -> list[str]:
    from ...methods import list_methods, method_class
    from ...report.demo import PAPER_METHOD_ORDER

    names = [m for m in list_methods() if not method_class(m).fresh_start] if spec == "all" else \
        [m.strip() for m in spec.split(",") if m.strip()]
    for name in names:
        method_class(name)  # unknown names fail here, before any work
    order = {name: i for i, name in enumerate(PAPER_METHOD_ORDER)}
    return sorted(names, key=lambda n: order.get(n, len(order)))


def handle(args, extra) -> int:
    from tqdm.auto import tqdm

    from ... import api
    from ...bench.attack_columns import AttackColumns
    from ...bench.config import ReferenceConfig
    from ...recipes import TrainingRecipe as ReferenceRecipe
    from ...bench.split import make_split
    from ...checkpoints import save_state_dict
    from ...engine import resolve_device
    from ...io import atomic_write_json, atomic_write_text, output_directory
    from ...methods import create_method, method_class
    from ...methods.cf_eu_k import default_k
    from ...metrics import Evaluator
    from ...records import run_record
    from ...report import convergence_figure
    from ...report.demo import demo_markdown
    from ...report.plots import attack_figure
    from ...report.table1 import gap_text
    from ..render import table1_text

    started = time.perf_counter()
    methods = chosen_methods(args.methods)
    if args.references < 0 or 0 < args.references < 4:
        raise SftcError(f"--references must be 0 (no attack) or 4 or more (models retrained "
                        f"without D_f), got {args.references}")
    limits.check_references(args.references, args.train_subset + args.test_subset, 10)
    data = ReferenceConfig(dataset="digits", train_subset=args.train_subset,
                           test_subset=args.test_subset, forget=args.forget,
                           forget_seed=args.seed)
    data.validate_reference()
    split = make_split(data)
    progress = not args.quiet
    accel = {"autocast": "bf16"} if args.accel == "bf16" else args.accel
    common = dict(seed=args.seed, device=args.device, progress=progress, accel=accel)
    say = print if progress else (lambda *a, **k: None)
    steps = 4
    with output_directory(args.out, args.overwrite, notify=note) as tmp:
        say(f"[1/{steps}] training the original model and the oracle ({args.model}, "
            f"{args.epochs} epochs)")
        original = api.train(split, args.model, epochs=args.epochs, track=TRACK, **common)
        oracle = api.retrain(split, args.model, epochs=args.epochs, track=TRACK, **common)
        models = [("ORI", None, original.model, None), ("RT", None, oracle.model, oracle.seconds)]
        runs, unlearned = {}, {}
        say(f"[2/{steps}] unlearning {len(split.forget)} samples (forget set {args.forget}"
            f"{', the demo default' if args.forget == DEFAULT_FORGET else ''}) with "
            f"{len(methods)} methods")
        bar = tqdm(methods, desc="methods", unit="method",
                   disable=not progress, dynamic_ncols=True)
        for name in bar:
            bar.set_postfix(method=name)
            hparams = {"k": default_k(args.model)} if "k" in method_class(name).hparams else {}
            result = api.unlearn(original.model, split, name, epochs=args.unlearn_epochs,
                                 lr=args.lr, track=TRACK, model_name=args.model, **hparams,
                                 **common)
            label = create_method(name, **hparams).label or name
            models.append((label, name, result.model, result.seconds))
            runs[label] = {"config": result.config, "history": result.history.rows,
                           "seconds": result.seconds}
            save_state_dict(result.model, tmp / "models" / f"{name}.pt")
            unlearned[name] = result.model
        bar.close()
        # evaluated after every timed run, so that no timing shares the CPU with the attackers;
        # one evaluator for all rows: the references' logits once, the MIA's CatBoost fits on a
        # thread pool (the same numbers as api.evaluate row by row)
        say(f"[3/{steps}] evaluating {len(models)} models"
            + (f" (the paper's metrics, and the per-example attack with {args.references} "
               "reference models, cached after the first run)" if args.references else ""))
        with Evaluator(original.model, split, oracle.model, device=args.device,
                       mia_iterations=args.mia_iterations, seed=args.seed) as evaluator:
            pending = [(label, name, evaluator.submit(model, unlearn_seconds=seconds,
                                                      retrain_seconds=oracle.seconds))
                       for label, name, model, seconds in models]
            # while the attackers fit: the models, the figure and the per-example attack (they
            # need no MIA)
            save_state_dict(original.model, tmp / "models" / "original.pt")
            save_state_dict(oracle.model, tmp / "models" / "retrained.pt")
            if "sftc" in unlearned:
                save_state_dict(unlearned["sftc"], tmp / "model.pt")
            convergence_figure({label: run["history"] for label, run in runs.items()},
                               evaluator.reference_accuracies()["retrained"],
                               tmp / "convergence.png",
                               title=f"Convergence on digits ({args.model}); dashed: the oracle")
            attacked, attack = {}, None
            if args.references:
                attack = AttackColumns.for_recipe(
                    split,
                    ReferenceRecipe(args.model, epochs=args.epochs, source="the demo's original"),
                    args.references, args.cache_dir, device_name=args.device, progress=progress,
                    accel=accel)
                attack.prepare()
                device = resolve_device(args.device)
                attacked = {label: attack.model_metrics(model, device)
                            for label, _, model, _ in models}
            rows = [{"label": label, **({"method": name} if name else {}), **metrics.result(),
                     **attacked.get(label, {})}
                    for label, name, metrics in tqdm(pending, desc="evaluating", unit="model",
                                                     disable=not progress, dynamic_ncols=True)]
        if args.references:
            for row in rows:
                row["rmia_verdict"] = attack.verdict(rows[0], row)
            attack_figure(rows, tmp / "attack.png", references=args.references)
        say(f"[{steps}/{steps}] writing the report")
        config = {**recorded_args(args), "methods": methods}
        record = run_record("demo", config, split, original.history, None, rows=rows, runs=runs,
                            original={"seconds": original.seconds, "history": original.history.rows},
                            retrained={"seconds": oracle.seconds, "history": oracle.history.rows},
                            wall_seconds=time.perf_counter() - started)
        sftc_row = next((r for r in rows if r.get("method") == "sftc"), None)
        if sftc_row is not None:
            record["metrics"] = {k: v for k, v in sftc_row.items() if k not in ("label", "method")}
        atomic_write_json(tmp / "run.json", record)
        atomic_write_text(tmp / "report.md", demo_markdown(
            rows, split, forget=args.forget, model=args.model, epochs=args.epochs,
            unlearn_epochs=args.unlearn_epochs, lr=args.lr, out=args.out, record=record))
    print()
    print(f"Unlearning {len(split.forget)} of {len(split.train)} digits training samples "
          f"({args.model}; original and oracle trained {args.epochs} epochs; "
          f"{args.unlearn_epochs} unlearning epochs at lr {args.lr:g}).")
    print(gap_text(rows, {"attack_references": args.references}))
    print()
    print(table1_text(rows))
    if args.references:
        print("audit verdict (RMIA): " + "; ".join(f"{r['label']} {r['rmia_verdict']}"
                                                    for r in rows))
    print(f"\nwrote {args.out}/: run.json, report.md, convergence.png"
          + (", attack.png" if args.references else "")
          + (", model.pt (SFTC)" if "sftc" in unlearned else "")
          + f", models/ ({time.perf_counter() - started:.0f} s)")
    return 0

