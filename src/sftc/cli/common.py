"""Argument groups and helpers shared by the commands."""
from __future__ import annotations

import argparse
import sys
import warnings
from contextlib import contextmanager

from ..data import SkippedSamplesWarning, dataset_info, list_datasets, load_split
from ..errors import SftcError
from ..models import list_models


def add_data_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--dataset", default="digits",
                       help=f"dataset name: {', '.join(list_datasets())} (default: digits, embedded)")
    group.add_argument("--data-dir", default=None,
                       help="directory holding the dataset's files (datasets read from disk)")
    group.add_argument("--forget", default=None,
                       help="forget set: random:0.1 | random:500 | classes:2,4 | first:1500 | "
                            "file:PATH (.npy/.txt/.json indices into the training set; for "
                            "imagefolder a .txt lists image paths); default: the dataset's "
                            "protocol (random:0.1 for digits)")
    group.add_argument("--image-size", type=int, default=None,
                       help="resize images to this side length per batch (default: the dataset's, "
                            "128 for cifar10, fer2013 and mufac as in the paper)")
    group.add_argument("--split-seed", type=int, default=0,
                       help="seed of the train/val/test split where the dataset draws one (default 0)")
    group.add_argument("--skip-bad-rows", action="store_true",
                       help="leave out malformed CSV rows and images that do not decode instead of "
                            "stopping at the first (the count skipped is reported)")


def add_run_args(parser: argparse.ArgumentParser, epochs: int | None, lr: float | None,
                 default_note: str = "") -> None:
    group = parser.add_argument_group("optimisation")
    group.add_argument("--epochs", type=int, default=epochs,
                       help=f"epochs (default {epochs if epochs is not None else default_note})")
    group.add_argument("--lr", type=float, default=lr,
                       help=f"learning rate (default {f'{lr:g}' if lr is not None else default_note})")
    group.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    group.add_argument("--seed", type=int, default=0,
                       help="seed of initialisation, shuffling and the forget draw (default 0)")
    group.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    group.add_argument("--quiet", action="store_true", help="no progress bars")


def add_model_arg(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument("--model", default=None, required=required,
                        help=f"architecture: {', '.join(list_models())} (default: the dataset's, "
                             "small-cnn for digits, fashion-mnist and imagefolder, resnet18 for "
                             "cifar10, fer2013 and mufac as in the paper)")


def resolve_model_name(args) -> str:
    return args.model or dataset_info(args.dataset).default_model


def load_split_from_args(args):
    """The split named by --dataset/--data-dir/--forget/--image-size (forget draw seeded by --seed).

    Rows left out by --skip-bad-rows are reported on stderr as one warning line.
    """
    with reported_data_warnings():
        return load_split(args.dataset, forget=args.forget, data_dir=args.data_dir,
                          image_size=args.image_size, seed=getattr(args, "seed", 0),
                          split_seed=args.split_seed,
                          skip_bad=getattr(args, "skip_bad_rows", False))


@contextmanager
def reported_data_warnings():
    """Print the data layer's SkippedSamplesWarning as 'sftc: warning: ...' lines on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedSamplesWarning)
        try:
            yield
        finally:
            for w in caught:
                if issubclass(w.category, SkippedSamplesWarning):
                    print(f"sftc: warning: {w.message}", file=sys.stderr)
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def recorded_args(args) -> dict:
    """The parsed arguments worth recording in run.json (no handler functions)."""
    return {k: v for k, v in vars(args).items() if not callable(v)}


def parse_method_options(method_cls, tokens: list[str]) -> dict:
    """Turn ``--tau 2 --c=0.5`` into {'tau': '2', 'c': '0.5'} for the method's hyperparameters."""
    values, i = {}, 0
    allowed = {k.replace("_", "-"): k for k in method_cls.hparams}
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--"):
            raise SftcError(f"unexpected argument {token!r}")
        key, eq, value = token[2:].partition("=")
        if key not in allowed:
            options = ", ".join(f"--{k}" for k in allowed) or "none"
            raise SftcError(f"method {method_cls.name!r} has no option --{key}; its options: {options}")
        if not eq:
            if i + 1 >= len(tokens):
                raise SftcError(f"option --{key} needs a value")
            value = tokens[i + 1]
            i += 1
        values[allowed[key]] = value
        i += 1
    return values
