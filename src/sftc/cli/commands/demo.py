"""``sftc demo``: the main job on the embedded default (digits), end to end.

The setting is one where the original memorises its training data (the digits-memorising
benchmark preset's data: 300 training images, 30 epochs, a forget set of 30 % of each class), so
that there is something to forget: the per-example attack tells the original's forget set from
never-seen data and not the oracle's."""
from __future__ import annotations


from ..catalog import TRAIN_EPOCHS, UNLEARN_EPOCHS, UNLEARN_LR
from ..common import add_seed_arg, note, positive_float, positive_int, recorded_args

#: The demo's defaults (sftc.bench.demo; copied here so that --help imports no torch).
DEFAULT_FORGET = "random:0.3"
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
    p.add_argument("--epochs", type=positive_int, default=TRAIN_EPOCHS,
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
    p.add_argument("--accel", choices=("off", "auto", "bf16"), default="auto",
                   help="speed choices of training and unlearning: auto (default: the engine's "
                        "fixed rule, the same bits run after run), off (the plain path; results "
                        "differ from auto by float rounding) or bf16 (auto plus bfloat16 "
                        "autocast of the training steps; see docs/performance.md)")
    p.add_argument("--no-until", action="store_true",
                   help="skip the SFTC row that searches its learning rate until the evidence "
                        "puts it inside the retrain band (sftc unlearn --until forgotten)")
    p.add_argument(
        "--quiet", action="store_true",
        help="no progress bars: one line every 60 s says the command is still working")
    p.set_defaults(handler=handle)


def chosen_methods(spec: str) -> list[str]:
    from ...api import list_methods, method_class
    from ...report.demo import PAPER_METHOD_ORDER

    names = [m for m in list_methods() if not method_class(m).fresh_start] if spec == "all" else \
        [m.strip() for m in spec.split(",") if m.strip()]
    for name in names:
        method_class(name)  # unknown names fail here, before any work
    order = {name: i for i, name in enumerate(PAPER_METHOD_ORDER)}
    return sorted(names, key=lambda n: order.get(n, len(order)))


def handle(args, extra) -> int:
    from ...bench.demo import DemoConfig, run_demo
    from ...io import output_directory
    from ...report.demo import write_demo
    from ...report.table1 import gap_text
    from ..render import table1_text

    config = DemoConfig(
        forget=args.forget, train_subset=args.train_subset, test_subset=args.test_subset,
        references=args.references, cache_dir=args.cache_dir, model=args.model,
        epochs=args.epochs, unlearn_epochs=args.unlearn_epochs, lr=args.lr,
        methods=tuple(chosen_methods(args.methods)), until=not args.no_until, seed=args.seed,
        device=args.device, mia_iterations=args.mia_iterations,
        accel={"autocast": "bf16"} if args.accel == "bf16" else args.accel,
        progress=not args.quiet)
    config.check()
    say = print if config.progress else (lambda *a, **k: None)
    with output_directory(args.out, args.overwrite, notify=note) as tmp:
        result = run_demo(config, say)
        say("[4/4] writing the report")
        written = write_demo(tmp, result, config, recorded_args(args))
    split, rows = result.split, result.rows
    print()
    print(f"Unlearning {len(split.forget)} of {len(split.train)} digits training samples "
          f"({args.model}; original and oracle trained {args.epochs} epochs; "
          f"{args.unlearn_epochs} unlearning epochs at lr {args.lr:g}"
          + (", and SFTC until forgotten" if result.until is not None else "") + ").")
    print(gap_text(rows, {"attack_references": args.references}))
    print()
    print(table1_text(rows))
    if args.references:
        print("audit verdict (RMIA): " + "; ".join(f"{r['label']} {r['rmia_verdict']}"
                                                    for r in rows))
    if result.until is not None:
        c = result.until.chosen
        found = "inside the retrain band" if result.until.certified else \
            "nothing inside the retrain band"
        print(f"SFTC until forgotten: {found} on the selection split; kept lr {c['lr']:.3g} × {c['epoch']} epoch(s) "
              f"({result.until.timings['trials_run']} runs, "
              f"{result.until.timings['search_seconds']:.1f} s); final audit on test: "
              f"{result.until.audit.verdict.text}, {interval_words(result.until.audit)}")
    print(f"\nwrote {args.out}/: {', '.join(written)} ({result.wall_seconds:.0f} s)")
    return 0


def interval_words(audit) -> str:
    i, band = audit.verdict.interval, audit.verdict.band
    return f"AUC {i.estimate:.3f} against the retrain band {band.level:.3f} ± {band.certify:.3f}"
