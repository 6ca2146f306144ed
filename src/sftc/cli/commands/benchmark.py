"""``sftc benchmark``: the paper's Table 1 and Figure 4 (section 5.5), resumable."""
from __future__ import annotations

import sys

from ...errors import SftcError
from ..bench_options import (add_reference_options, command_line, forget_note, parse_list,
                             parse_methods, reference_options)
from ..common import accuracy_drop, positive_int

HELP_METHODS = ("comma-separated methods, each optionally with hyperparameters after colons, e.g. "
                "'ft,neggrad+,cf-k:k=1,eu-k:k=1,scrub,bad-teaching,sftc:tau=1:c=0' (default: the "
                "preset's, else the paper's seven with k adapted to the model)")


def register(sub) -> None:
    p = sub.add_parser(
        "benchmark", help="reproduce Table 1 and Figure 4: every method over a learning-rate grid",
        description="The protocol of section 5.5: for each seed the original model and the "
                    "retrain-from-scratch oracle (cached, trained once); for each method a "
                    "learning-rate grid, each run evaluated after every epoch up to --max-epochs; "
                    "per method the (learning rate, epoch) with the lowest Eq. 5 + 6 + 7 averaged "
                    "over seeds is kept; JS and MIA are computed for the kept settings. Writes "
                    "table1.{md,csv,json,tex}, convergence.png, attack.png (with attack "
                    "references), selection.csv and report.md into --out. Runs are saved as they finish: run the same command again to resume; a "
                    "run whose method's code changed since is run again. --list-presets names "
                    "and describes the presets.")
    p.add_argument("--preset", default=None, help="a named configuration (see --list-presets); "
                   "options given on the command line override it")
    p.add_argument("--list-presets", action="store_true", help="describe the presets and exit")
    p.add_argument("--out", default=None, help="output directory (required)")
    p.add_argument("--resume", action="store_true",
                   help="require --out to hold this benchmark already (resuming is automatic when "
                        "the arguments are the same; different arguments are refused)")
    proto = add_reference_options(p)
    proto.add_argument("--seeds", default=None, help="comma-separated seeds, e.g. 0,1,2,3,4")
    proto.add_argument("--lrs", default=None,
                       help="comma-separated unlearning learning rates, or 'paper' for the "
                            "paper's 23 values 5e-3 ... 1e-5")
    proto.add_argument("--max-epochs", type=positive_int, default=None,
                       help="unlearning epochs; every epoch 1..N is a candidate (paper: 4)")
    proto.add_argument("--methods", default=None, help=HELP_METHODS)
    proto.add_argument("--attack-references", type=int, default=None,
                       help="reference models of the per-example attack (RMIA) columns, 4 or "
                            "more (each retrained without D_f); 0: none (default: the preset's)")
    proto.add_argument("--select", default=None, choices=("paper", "evidence"),
                       help="the rule that keeps each method's setting: paper (Eq. 5 + 6 + 7, "
                            "which needs the oracle; default) or evidence (oracle-free: the "
                            "audit's verdict on a selection split carved from the validation "
                            "split, within --max-accuracy-drop; needs --attack-references)")
    proto.add_argument("--attack", default=None,
                       help="the attack of the attack columns and verdicts (default rmia-offline; "
                            "lira-offline or one a --plugin registers)")
    proto.add_argument("--max-accuracy-drop", type=accuracy_drop, default=None,
                       help="the evidence rule's budget of validation accuracy below the "
                            "original's (default 0.02)")
    proto.add_argument("--js", default=None, choices=("textbook", "paper"),
                       help="JS column: textbook (Eq. 8, default) or paper (the authors' code)")
    p.set_defaults(handler=handle, distributed=True)


def build_config(args):
    """The BenchmarkConfig of a command line: the preset (if any), then explicit options."""
    from ...bench.config import BenchmarkConfig, make_config
    from ...bench.presets import PAPER_LRS

    lrs = (PAPER_LRS if args.lrs is not None and args.lrs.strip() == "paper"
           else parse_list(args.lrs, float, "--lrs"))
    return make_config(BenchmarkConfig, args.preset, dataset=args.dataset, model=args.model,
                       seeds=parse_list(args.seeds, int, "--seeds"), lrs=lrs,
                       max_epochs=args.max_epochs, methods=parse_methods(args.methods),
                       js=args.js, attack_references=args.attack_references,
                       select=args.select, max_accuracy_drop=args.max_accuracy_drop,
                       attack=args.attack,
                       **reference_options(args))


def handle(args, extra) -> int:
    from ...bench.benchmark import Benchmark
    from ...bench.presets import PRESETS
    from ...limits import check_epochs, check_image_size
    from ...report.table1 import gap_text
    from ..checks import check_reference_count
    from ...report.tables import format_table, table1_columns
    from ..ranks import agree

    if args.list_presets:
        for preset in PRESETS.values():
            print(f"{preset.name}\n  {preset.description}\n")
        return 0
    if not args.out:
        raise SftcError("--out is required: the directory that receives the tables and runs")
    config, preset = build_config(args)
    units = len(config.methods) * len(config.lrs) * len(config.seeds)
    check_epochs(config.max_epochs, "--max-epochs", runs=units)
    check_image_size(config.image_size, 1, 64)
    log = lambda text: print(text, file=sys.stderr)  # noqa: E731
    bench = Benchmark(config, args.out, device=args.device, cache_dir=args.cache_dir,
                      progress=not args.quiet, resume=args.resume, command=command_line(),
                      log=log, preset=preset)
    bench.session.agree(agree)   # under torchrun: every rank works on the same
    if forget_note(args, bench.split):
        log(forget_note(args, bench.split))
    check_reference_count(config.attack_references, bench.split, "--attack-references")
    table = bench.run()
    if table is None:   # under torchrun, a rank other than 0: rank 0 reports
        return 0
    print(gap_text(table["rows"], config.to_dict()) + "\n")
    print(format_table(table["rows"], table1_columns(table["rows"]), style="plain"))
    attack = ", attack.png" if any(r.get("rmia_auc") is not None for r in table["rows"]) else ""
    print(f"\nwrote {args.out}/table1.md (also .csv, .json, .tex), convergence.png{attack}, "
          "selection.csv, report.md")
    return 0
