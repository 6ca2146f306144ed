"""``sftc benchmark``: the paper's Table 1 and Figure 4 (section 5.5), resumable."""
from __future__ import annotations

import shlex
import sys

from ...errors import SftcError

HELP_METHODS = ("comma-separated methods, each optionally with hyperparameters after colons, e.g. "
                "'ft,neggrad+,cf-k:k=1,eu-k:k=1,scrub,bad-teaching,sftc:tau=1:c=0' (default: the "
                "preset's, else the paper's seven with k adapted to the model)")


def register(sub) -> None:
    from ...bench.presets import PRESETS

    p = sub.add_parser(
        "benchmark", help="reproduce Table 1 and Figure 4: every method over a learning-rate grid",
        description="The protocol of section 5.5: for each seed the original model and the "
                    "retrain-from-scratch oracle (cached, trained once); for each method a "
                    "learning-rate grid, each run evaluated after every epoch up to --max-epochs; "
                    "per method the (learning rate, epoch) with the lowest Eq. 5 + 6 + 7 averaged "
                    "over seeds is kept; JS and MIA are computed for the kept settings. Writes "
                    "table1.{md,csv,json,tex}, convergence.png, selection.csv and report.md into "
                    "--out. Runs are saved as they finish: run the same command again to resume. "
                    "Presets: " + "; ".join(f"{n}" for n in PRESETS) + " (--list-presets).")
    p.add_argument("--preset", default=None, help="a named configuration (see --list-presets); "
                   "options given on the command line override it")
    p.add_argument("--list-presets", action="store_true", help="describe the presets and exit")
    p.add_argument("--out", default=None, help="output directory (required)")
    p.add_argument("--resume", action="store_true",
                   help="require --out to hold this benchmark already (resuming is automatic when "
                        "the arguments are the same; different arguments are refused)")
    data = p.add_argument_group("data")
    data.add_argument("--dataset", default=None, help="dataset name (default: the preset's, else digits)")
    data.add_argument("--data-dir", default=None, help="directory of the dataset's files")
    data.add_argument("--forget", default=None, help="forget spec (default: the dataset's protocol)")
    data.add_argument("--forget-seed", type=int, default=None,
                      help="seed of a random forget draw, the same for every seed (default 0)")
    data.add_argument("--image-size", type=int, default=None, help="resize images to this side")
    data.add_argument("--train-subset", type=int, default=None,
                      help="use a stratified subset of this many training images")
    data.add_argument("--split-seed", type=int, default=None, help="seed of the train/val/test split")
    proto = p.add_argument_group("protocol")
    proto.add_argument("--model", default=None, help="architecture (default: the preset's)")
    proto.add_argument("--train-epochs", type=int, default=None,
                       help="epochs of the original model and the oracle (paper: 30)")
    proto.add_argument("--train-lr", type=float, default=None, help="their learning rate (1e-3)")
    proto.add_argument("--seeds", default=None, help="comma-separated seeds, e.g. 0,1,2,3,4")
    proto.add_argument("--lrs", default=None,
                       help="comma-separated unlearning learning rates, or 'paper' for the "
                            "paper's 23 values 5e-3 ... 1e-5")
    proto.add_argument("--max-epochs", type=int, default=None,
                       help="unlearning epochs; every epoch 1..N is a candidate (paper: 4)")
    proto.add_argument("--methods", default=None, help=HELP_METHODS)
    proto.add_argument("--batch-size", type=int, default=None, help="batch size (64)")
    proto.add_argument("--mia-iterations", type=int, default=None,
                       help="CatBoost iterations of the MIA attacker (paper: 1000)")
    proto.add_argument("--mia-attacker", default=None,
                       choices=("catboost", "hist-gradient-boosting"),
                       help="the attack model: catboost (the paper's, default) or scikit-learn's "
                            "hist-gradient-boosting (where catboost is not installed)")
    proto.add_argument("--mia-features", default=None, choices=("logits", "softmax"),
                       help="attacker features: logits (the paper's text) or softmax (its code)")
    proto.add_argument("--js", default=None, choices=("textbook", "paper"),
                       help="JS column: textbook (Eq. 8, default) or paper (the authors' code)")
    run = p.add_argument_group("running")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    run.add_argument("--cache-dir", default=None,
                     help="where reference models are cached (default $SFTC_CACHE_DIR or "
                          "~/.cache/sftc/references)")
    run.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(handler=handle)


def parse_list(text: str, kind, what: str) -> tuple:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise SftcError(f"{what} is empty; give at least one value")
    out = []
    for item in items:
        try:
            out.append(kind(item))
        except ValueError:
            raise SftcError(f"{what}: {item!r} is not a valid {kind.__name__}") from None
    return tuple(out)


def parse_methods(text: str) -> tuple[tuple[str, dict], ...]:
    from ...methods import method_class

    methods = []
    for token in [t.strip() for t in text.split(",") if t.strip()]:
        name, *options = token.split(":")
        cls = method_class(name.strip())
        hparams = {}
        for option in options:
            key, eq, value = option.partition("=")
            key = key.strip().replace("-", "_")
            if not eq:
                raise SftcError(f"method option {option!r} of {name} needs KEY=VALUE, e.g. cf-k:k=1")
            if key not in cls.hparams:
                allowed = ", ".join(cls.hparams) or "none"
                raise SftcError(f"method {cls.name!r} has no hyperparameter {key!r}; it takes: "
                                f"{allowed}")
            try:
                hparams[key] = cls.hparams[key].type(value)
            except ValueError:
                raise SftcError(f"{cls.name}: {key}={value!r} is not a valid "
                                f"{cls.hparams[key].type.__name__}") from None
        methods.append((cls.name, hparams))
    if not methods:
        raise SftcError("--methods is empty; name at least one method (see 'sftc methods')")
    return tuple(methods)


def build_config(args):
    """The BenchmarkConfig of a command line: the preset (if any), then explicit options."""
    from ...bench.presets import PAPER_LRS, get_preset, methods_for
    from ...bench.protocol import BenchmarkConfig
    from ...data import dataset_info
    from ...models import canonical_model_name

    preset = get_preset(args.preset) if args.preset else None
    if preset is not None:
        if args.model:
            preset = preset.with_model(canonical_model_name(args.model))
        config = BenchmarkConfig(
            dataset=preset.dataset, model=preset.model, train_epochs=preset.train_epochs,
            seeds=preset.seeds, lrs=preset.lrs, max_epochs=preset.max_epochs,
            methods=preset.methods, batch_size=preset.batch_size, image_size=preset.image_size,
            train_subset=preset.train_subset, forget=preset.forget,
            mia_iterations=preset.mia_iterations)
    else:
        dataset = args.dataset or "digits"
        model = canonical_model_name(args.model or dataset_info(dataset).default_model)
        config = BenchmarkConfig(dataset=dataset, model=model, methods=methods_for(model))
    if args.dataset:
        config.dataset = args.dataset
    if args.model and preset is None:
        config.model = canonical_model_name(args.model)
    for field in ("data_dir", "forget", "forget_seed", "image_size", "train_subset", "split_seed",
                  "train_epochs", "train_lr", "max_epochs", "batch_size", "mia_iterations",
                  "mia_features", "mia_attacker", "js"):
        value = getattr(args, field)
        if value is not None:
            setattr(config, field, value)
    if args.seeds is not None:
        config.seeds = parse_list(args.seeds, int, "--seeds")
    if args.lrs is not None:
        config.lrs = PAPER_LRS if args.lrs.strip() == "paper" else parse_list(args.lrs, float,
                                                                                "--lrs")
    if args.methods is not None:
        config.methods = parse_methods(args.methods)
    config.validate()
    return config, preset


def command_line() -> str:
    return "sftc " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def handle(args, extra) -> int:
    from ...bench.presets import PRESETS
    from ...bench.protocol import Benchmark
    from ...report import TABLE1_COLUMNS, format_table

    if args.list_presets:
        for preset in PRESETS.values():
            print(f"{preset.name}\n  {preset.description}\n")
        return 0
    if not args.out:
        raise SftcError("--out is required: the directory that receives the tables and runs")
    config, preset = build_config(args)
    bench = Benchmark(config, args.out, device=args.device, cache_dir=args.cache_dir,
                      progress=not args.quiet, resume=args.resume, command=command_line(),
                      log=lambda text: print(text, file=sys.stderr))
    bench.preset = preset
    table = bench.run()
    print(format_table(table["rows"], TABLE1_COLUMNS, style="plain"))
    print(f"\nwrote {args.out}/table1.md (also .csv, .json, .tex), convergence.png, report.md")
    return 0
