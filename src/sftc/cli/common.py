"""Argument groups and helpers shared by the commands.

Every option is validated where it is parsed (argparse types below), so that a bad value is a
one-line error before any data is loaded or any model trained. Nothing here imports torch at
module level: building the parsers (``--help``) stays fast (see :mod:`sftc.cli.catalog`).
"""
from __future__ import annotations

import argparse
import math
import sys

from ..errors import SftcError
from ..limits import image_side
from .catalog import DATASETS, MODEL_HELP

#: ``--forget protocol``: the dataset's documented forget protocol, named explicitly.
PROTOCOL = "protocol"
MAX_SEED = 2 ** 32 - 1


def whole(low: int, what: str = "a whole number"):
    """An argparse type: an integer >= ``low``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    parse.__name__ = "int"
    return parse


def seed_value(text: str) -> int:
    """An argparse type for seeds: 0 .. 2**32 - 1 (what every random generator accepts)."""
    value = whole(0, "a whole number 0 or more")(text)
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SEED}, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


positive_int = whole(1, "a whole number 1 or more")


def resolution_arg(args) -> str:
    """``--resolution``, refusing the old rule's ``--margin`` in one line."""
    if getattr(args, "margin", None) is not None:
        raise SftcError(f"--margin {args.margin} belonged to the old verdict rule (an interval "
                        "against a margin around the never-seen level); the verdict is now held "
                        "against the band within which models retrained without D_f land "
                        "(docs/evidence.md): pass --resolution instead, the share of the "
                        "original's excess a certificate must vouch is gone (default 50%)")
    return args.resolution


def accuracy_drop(text: str) -> float:
    """--max-accuracy-drop, the same for every command: a fraction in [0, 1) (0: no drop of
    validation accuracy allowed)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction such as 0.02, got {text!r}") \
            from None
    if not (0.0 <= value < 1.0):
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1) (0.02: two points of "
                                         f"accuracy), got {text}")
    return value


def add_data_args(parser: argparse.ArgumentParser, forget: str = "required") -> None:
    """Data options. ``forget``: ``required`` (unlearn, evaluate: the forget set decides what is
    deleted, so it is never guessed), ``optional`` (train: needed only for the oracle) or
    ``default`` (data: the dataset's protocol when not given)."""
    group = parser.add_argument_group("data")
    group.add_argument("--dataset", default="digits",
                       help=f"dataset name: {', '.join(DATASETS)} or one registered by a plugin "
                            "(default: digits, embedded)")
    group.add_argument("--data-dir", default=None,
                       help="directory holding the dataset's files (datasets read from disk)")
    needed = {"required": " (required: the samples to delete are never guessed)",
              "optional": " (required with --subset retain: the oracle must not see it)",
              "default": "; default: the dataset's protocol"}[forget]
    group.add_argument("--forget", default=None, required=forget == "required",
                       help="forget set: random:0.1 | random:500 | classes:2,4 | first:1500 | "
                            "file:PATH (.npy/.txt/.json indices into the training set; for "
                            "imagefolder a .txt lists image paths, for a table row ids) | "
                            "group:A,B (a table's --group-column owners) | protocol (the dataset's own "
                            f"protocol: random:0.1 for digits, the paper's file for fer2013){needed}")
    group.add_argument("--image-size", type=image_side, default=None,
                       help="resize images to this side length per batch (default: the dataset's, "
                            "128 for cifar10, fer2013 and mufac as in the paper)")
    group.add_argument("--split-seed", type=seed_value, default=0,
                       help="seed of the train/val/test split where the dataset draws one (default 0)")
    for part, what in (("train", "training"), ("test", "test"), ("val", "validation")):
        group.add_argument(f"--{part}-subset", type=whole(2, "a whole number 2 or more"),
                           default=None,
                           help=f"a stratified subset of about this many {what} images (each "
                                "class keeps its share, rounded), drawn with --split-seed (the "
                                "memorising presets' settings; default: all, or the subset "
                                "recorded beside an input checkpoint)")
    add_normalization_args(group)
    add_table_args(group)
    group.add_argument("--skip-bad-rows", action="store_true",
                       help="leave out malformed CSV rows and images that do not decode instead of "
                            "stopping at the first (the count skipped is reported)")


def add_table_args(group) -> None:
    """--data-file, --target, --id-column, --group-column: a table (--dataset csv)."""
    group.add_argument("--data-file", default=None,
                       help="--dataset csv: the table, a CSV file with a header row (or .parquet)")
    group.add_argument("--target", default=None,
                       help="--dataset csv: the column holding each row's class (default: the "
                            "one recorded beside an input checkpoint)")
    group.add_argument("--id-column", default=None,
                       help="--dataset csv: the column naming each row, what forget lists and "
                            "deletion requests name (default: row numbers, from 0)")
    group.add_argument("--group-column", default=None,
                       help="--dataset csv: the column naming each row's data owner, for "
                            "--forget group:A,B")


def table_from_args(args, recorded: dict | None = None) -> dict | None:
    """The table options of the command line, with the encoding recorded beside an input
    checkpoint (None when no table option is given nor recorded)."""
    table = {key: getattr(args, key, None)
             for key in ("target", "id_column", "group_column")}
    table["file"] = getattr(args, "data_file", None)
    encoding = (recorded or {}).get("table")
    if encoding:
        table["encoding"] = encoding
    return table if any(v is not None for v in table.values()) else None


def number_list(text: str) -> tuple[float, ...]:
    """An argparse type: ``0.5`` or ``0.485,0.456,0.406``."""
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers such as 0.5 or 0.5,0.5,0.5, got "
                                         f"{text!r}") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    return values


def add_normalization_args(group) -> None:
    """--mean, --std, --normalize: how images are normalised (default: the dataset's own, or the
    one recorded beside the input checkpoint)."""
    group.add_argument("--mean", type=number_list, default=None,
                       help="per-channel mean in [0, 1] units, one value or one per channel, e.g. "
                            "0.5 (default: the one recorded beside an input checkpoint, else the "
                            "dataset's)")
    group.add_argument("--std", type=number_list, default=None,
                       help="per-channel standard deviation, as --mean (e.g. 0.5 for "
                            "Normalize(0.5, 0.5))")
    group.add_argument("--normalize", choices=("dataset", "none"), default=None,
                       help="dataset: the dataset's own mean and std; none: pixels / 255 as they "
                            "are (default: recorded beside an input checkpoint, else dataset)")


def normalization_given(args) -> bool:
    return any(getattr(args, k, None) is not None for k in ("mean", "std", "normalize"))


def add_run_args(parser: argparse.ArgumentParser, epochs: int | None, lr: float | None,
                 default_note: str = "") -> None:
    group = parser.add_argument_group("optimisation")
    group.add_argument("--epochs", type=positive_int, default=epochs,
                       help=f"epochs (default {epochs if epochs is not None else default_note})")
    group.add_argument("--lr", type=positive_float, default=lr,
                       help=f"learning rate (default {f'{lr:g}' if lr is not None else default_note})")
    group.add_argument("--batch-size", type=positive_int, default=64, help="batch size (default 64)")
    add_seed_arg(group, "seed of initialisation, shuffling and the forget draw (default 0)")
    group.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    group.add_argument(
        "--quiet", action="store_true",
        help="no progress bars: one line every 60 s says the command is still working")


def add_seed_arg(parser, help_text: str) -> None:
    parser.add_argument("--seed", type=seed_value, default=0, help=help_text)


def add_model_arg(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument("--model", default=None, required=required,
                        help=f"{MODEL_HELP} (default: the one recorded in the run.json beside the "
                             "checkpoint, else the dataset's: small-cnn for digits, fashion-mnist "
                             "and imagefolder, resnet18 for cifar10, fer2013 and mufac as in the "
                             "paper)")


def resolve_model_name(args) -> str:
    from ..api import dataset_info

    return args.model or dataset_info(args.dataset).default_model


def forget_spec(args) -> str | None:
    """The forget spec of the command line: ``protocol`` names the dataset's own protocol."""
    spec = getattr(args, "forget", None)
    if spec is not None and not spec.strip():
        raise SftcError("--forget is empty; give a forget set such as random:0.1 or file:PATH")
    return None if spec is None or spec.strip().lower() == PROTOCOL else spec.strip()


def load_data_from_args(args, forget: str | None | bool = True, recorded: dict | None = None):
    """(loaded dataset, split) named by --dataset/--data-dir/--forget/--image-size and
    --mean/--std/--normalize (forget draw seeded by --seed).

    ``forget=True`` takes --forget (``protocol``: the dataset's own); pass a spec to override.
    ``recorded``: the preprocessing recorded beside an input checkpoint (mean, std, image_size,
    and the stratified subsets of --train-subset/--test-subset/--val-subset), used for what the
    command line leaves out.
    """
    from ..api import load_dataset
    from ..api import subset_split

    spec = forget_spec(args) if forget is True else forget
    recorded = recorded or {}
    normalization = dict(mean=args.mean, std=args.std, normalize=args.normalize)
    if not normalization_given(args) and recorded.get("mean") and recorded.get("std"):
        normalization = dict(mean=tuple(recorded["mean"]), std=tuple(recorded["std"]),
                             normalize=None)
    size = args.image_size if args.image_size is not None else recorded.get("image_size")
    from ..data.images import ChannelMismatch

    try:
        loaded = load_dataset(args.dataset, data_dir=args.data_dir, image_size=size,
                              split_seed=args.split_seed,
                              skip_bad=getattr(args, "skip_bad_rows", False),
                              table=table_from_args(args, recorded), **normalization)
    except ChannelMismatch as exc:
        if normalization.get("normalize", 0) is not None or not getattr(args, "checkpoint", None):
            raise
        raise exc.recorded(args.checkpoint, args.dataset) from None
    from .checks import check_loaded_images

    check_loaded_images(args, loaded.data)
    split = subset_split(args.dataset, loaded, spec, forget_seed=getattr(args, "seed", 0),
                         split_seed=args.split_seed, data_dir=args.data_dir,
                         **subsets_from_args(args, recorded.get("subsets") or {},
                                             has_record=bool(recorded)))
    return loaded, split


def subsets_from_args(args, recorded: dict, has_record: bool = True) -> dict:
    """--train-subset/--test-subset/--val-subset, each defaulting to the one recorded beside an
    input checkpoint (``recorded``; ``has_record``: a record exists, with or without subsets).
    The training subset is what the checkpoint was trained on, so one that differs from the
    record is refused here, in words, before any data is compared."""
    subsets = {}
    for part in ("train", "test", "val"):
        given = getattr(args, f"{part}_subset", None)
        subsets[part] = given if given is not None else recorded.get(part)
    was = recorded.get("train")
    given = getattr(args, "train_subset", None)
    if has_record and given is not None and given != was:
        had = f"a --train-subset of {was}" if was else "the whole training set"
        raise SftcError(f"--train-subset {given}: the input checkpoint was trained on "
                        f"{had} (recorded beside it); drop --train-subset to use the recorded "
                        "one")
    if was and given is None:
        subsets["train_origin"] = "the checkpoint's recorded --train-subset"
    return subsets


def load_split_from_args(args, forget: str | None | bool = True, recorded: dict | None = None):
    """The split of :func:`load_data_from_args`."""
    return load_data_from_args(args, forget, recorded)[1]


def note(text: str) -> None:
    """A one-line note on stderr (what could not be checked, what was cleaned up)."""
    print(f"sftc: note: {text}", file=sys.stderr)


def split_facts(split, forget: bool = True) -> dict:
    """What the ranks of a torchrun job compare about their data (:func:`sftc.cli.ranks.agree`):
    SHA-256 digests of the training, validation and test sets and of the forget set."""
    facts = {"data": {name: split.content_sha256(name) for name in ("train", "val", "test")}}
    if forget:
        facts["forget_set"] = split.forget_summary()["sha256"]
    return facts


def agree_on_run(args, split, forget: bool = True, files: dict | None = None, **facts) -> None:
    """Under torchrun: every rank states its arguments, data, forget set, ``--out``, input files
    (and ``facts``), and all stop in one line unless they agree (a no-op for one process)."""
    import os

    from .ranks import agree

    agree(arguments=recorded_args(args), **split_facts(split, forget),
                      output=os.path.abspath(args.out) if getattr(args, "out", None) else None,
                      files=files, **facts)


def model_fact(name: str, split, seed: int = 0) -> dict:
    """Under torchrun, what the ranks compare about the model each builds from --model (a
    factory may give another model on another machine or rank): ``{"model": facts}``; nothing
    for one process (the model is then not built here)."""
    from .. import distributed

    if not distributed.launched():
        return {}
    from ..api import create_model
    from ..records import architecture_facts

    model = create_model(name, in_channels=split.data.in_channels,
                         num_classes=split.data.num_classes, seed=seed)
    return {"model": {"from": f"--model {name}", **architecture_facts(model)}}


def check_world_batch(batch_size: int) -> None:
    """Under torchrun, a batch that does not split over the ranks is refused before any work."""
    from ..distributed import world
    from ..api import check_batch_size

    check_batch_size(batch_size, world())


#: What a command declares about itself through argparse's defaults, not what the user asked for.
COMMAND_TRAITS = ("distributed", "accepts_extra")


def recorded_args(args) -> dict:
    """The parsed arguments worth recording in run.json (no handler functions, none of the
    command's own traits)."""
    return {k: v for k, v in vars(args).items() if not callable(v) and k not in COMMAND_TRAITS}


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
