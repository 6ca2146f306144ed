"""Options shared by ``sftc benchmark`` and ``sftc sweep``, and the parsing of their lists.

Both commands build their config with :func:`sftc.bench.config.make_config`.
"""
from __future__ import annotations

import shlex
import sys

from ..errors import SftcError
from ..limits import image_side
from .catalog import MIA_ATTACKERS, MODEL_HELP
from .common import add_normalization_args, add_table_args, positive_float, positive_int, seed_value, whole

#: Options that set the ReferenceConfig field of the same name when given.
REFERENCE_OPTIONS = ("data_dir", "forget", "forget_seed", "image_size", "train_subset",
                     "test_subset", "val_subset",
                     "split_seed", "train_epochs", "train_lr", "batch_size", "mia_iterations",
                     "mia_features", "mia_attacker", "mean", "std", "normalize",
                     "data_file", "target", "id_column", "group_column")


def add_reference_options(p):
    """The data, protocol and running groups with the options both commands take; returns the
    protocol group for the command's own options."""
    data = p.add_argument_group("data")
    data.add_argument("--dataset", default=None,
                      help="dataset name (default: the preset's, else digits)")
    data.add_argument("--data-dir", default=None, help="directory of the dataset's files")
    data.add_argument("--forget", default=None, help="forget spec (default: the dataset's protocol)")
    data.add_argument("--forget-seed", type=seed_value, default=None,
                      help="seed of a random forget draw, the same for every seed (default 0)")
    data.add_argument("--image-size", type=image_side, default=None, help="resize images to this side")
    data.add_argument("--train-subset", type=whole(2, "a whole number 2 or more"), default=None,
                      help="use a stratified subset of this many training images")
    data.add_argument("--test-subset", type=whole(2, "a whole number 2 or more"), default=None,
                      help="use a stratified subset of this many test images (D_t)")
    data.add_argument("--val-subset", type=whole(2, "a whole number 2 or more"), default=None,
                      help="use a stratified subset of this many validation images (the attack's "
                           "population)")
    data.add_argument("--split-seed", type=seed_value, default=None,
                      help="seed of the train/val/test split")
    add_normalization_args(data)
    add_table_args(data)
    proto = p.add_argument_group("protocol")
    proto.add_argument("--model", default=None, help=f"{MODEL_HELP} (default: the preset's)")
    proto.add_argument("--train-epochs", type=positive_int, default=None,
                       help="epochs of the original model and the oracle (paper: 30)")
    proto.add_argument("--train-lr", type=positive_float, default=None, help="their learning rate (1e-3)")
    proto.add_argument("--batch-size", type=positive_int, default=None, help="batch size (64)")
    proto.add_argument("--mia-iterations", type=positive_int, default=None,
                       help="CatBoost iterations of the MIA attacker (paper: 1000)")
    proto.add_argument("--mia-attacker", default=None,
                       choices=MIA_ATTACKERS,
                       help="the attack model: catboost (the paper's, default) or scikit-learn's "
                            "hist-gradient-boosting (where catboost is not installed)")
    proto.add_argument("--mia-features", default=None, choices=("logits", "softmax"),
                       help="attacker features: logits (the paper's text) or softmax (its code)")
    run = p.add_argument_group("running")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    run.add_argument("--cache-dir", default=None,
                     help="where reference models are cached (default $SFTC_CACHE_DIR or "
                          "~/.cache/sftc/references)")
    run.add_argument(
        "--quiet", action="store_true",
        help="no progress bars: one line every 60 s says the command is still working")
    return proto


def reference_options(args) -> dict:
    return {name: getattr(args, name) for name in REFERENCE_OPTIONS}


def parse_list(text: str | None, kind, what: str) -> tuple | None:
    """``1e-3,5e-4`` as a tuple of ``kind``; None stays None (the option was not given)."""
    if text is None:
        return None
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


def parse_methods(text: str | None) -> tuple[tuple[str, dict], ...] | None:
    """``ft,cf-k:k=1,sftc:tau=1:c=0`` as ((name, hparams), ...); None stays None."""
    from ..api import method_class

    if text is None:
        return None
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


def forget_note(args, split) -> str | None:
    """What the run forgets when --forget was not given: the dataset's protocol, said aloud."""
    if args.forget is not None:
        return None
    return (f"forget set: {split.forget_spec} ({len(split.forget)} samples), the protocol of "
            f"{split.data.name}; pass --forget to choose another")


def command_line() -> str:
    return "sftc " + " ".join(shlex.quote(a) for a in sys.argv[1:])
