"""Command line: ``sftc <command>``. Thin: parse arguments, call the API, print.

Every module in :mod:`sftc.cli.commands` defines ``register(subparsers)``; it is picked up
automatically, so a new command is one new file.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from ..errors import SftcError

DESCRIPTION = """\
sftc: machine unlearning for PyTorch image classifiers (SFTC, EICC 2024, and its baselines).

A typical session on the embedded digits data:
  sftc demo --out demo/                      # everything at once: train, unlearn, evaluate, report
  sftc train   --dataset digits --out runs/original
  sftc train   --dataset digits --subset retain --out runs/retrained
  sftc unlearn --dataset digits --checkpoint runs/original/model.pt \\
               --retrained runs/retrained/model.pt --method sftc --out runs/sftc
  sftc evaluate --dataset digits --original runs/original/model.pt \\
               --unlearned runs/sftc/model.pt --retrained runs/retrained/model.pt
Run 'sftc COMMAND --help' for each command's options.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sftc", description=DESCRIPTION, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"sftc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_parser = sub.add_parser

    def add_parser_exact(name, **kwargs):
        # No abbreviations: '--c 0.1' (SFTC's confusion fraction) must not become '--checkpoint'.
        kwargs.setdefault("allow_abbrev", False)
        return add_parser(name, **kwargs)

    sub.add_parser = add_parser_exact
    from . import commands

    names = sorted(m.name for m in pkgutil.iter_modules(commands.__path__))
    for name in names:
        importlib.import_module(f"{commands.__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if extra and not getattr(args, "accepts_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.handler(args, extra) or 0)
    except SftcError as err:
        print(f"sftc {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sftc {args.command}: interrupted; finished outputs were kept, partial ones removed",
              file=sys.stderr)
        return 130
