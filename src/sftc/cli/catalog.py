"""What the command line's help quotes, as plain values: sftc's own dataset, model and method
names and the defaults the help text names.

``sftc --help`` and ``sftc COMMAND --help`` must not import torch, torchvision, scikit-learn or
catboost (a second or more of start-up), so the parsers are built from this module alone and every
heavy import happens inside a command's handler. ``tests/test_cli_startup.py`` checks each value
here against the registry or constant it copies; plugins' entries are listed by ``sftc methods``,
not in the help.
"""
from __future__ import annotations

#: The built-in datasets, models and methods (registries list plugins' entries besides these).
DATASETS = ("cifar10", "csv", "diamonds", "digits", "fashion-mnist", "fer2013", "imagefolder", "mufac")
MODELS = ("efficientnet_b0", "mlp", "resmlp", "resnet18", "small-cnn")
METHODS = ("ft", "neggrad+", "neggrad", "cf-k", "eu-k", "bad-teaching", "scrub", "sftc", "retrain")
#: The unlearning and training defaults (sftc.recipes, which imports nothing heavy).
from ..recipes import TRAIN_EPOCHS, TRAIN_LR, UNLEARN_EPOCHS, UNLEARN_LR  # noqa: E402,F401
#: The audit's built-in deciding attacks (sftc.bench.audit.applicable_attacks, with the registry's
#: aliases), sftc.metrics.attacks.ALPHA, the default resolution (sftc.bench.evidence), the audit's
#: default reference count (sftc.bench.audit.REFERENCES), sftc.bench.forgetting.ORIGINALS,
#: sftc.metrics.mia.ATTACKERS.
ATTACKS = ("rmia", "lira", "rmia-offline", "lira-offline")
ALPHA = 0.05
RESOLUTION = "50%"
REFERENCES = 8
ORIGINALS = ("independent", "shared")
MIA_ATTACKERS = ("catboost", "hist-gradient-boosting")



def method_help() -> str:
    """``--method``'s help: sftc's methods, then those of the plugins imported so far (``sftc
    COMMAND --plugin X --help`` imports X before the parser is built, so its methods show)."""
    import sys

    names = list(METHODS)
    registry = sys.modules.get("sftc.methods.registry")
    if registry is not None:
        names += [n for n in registry.METHODS.names() if n not in names]
    return f"one of: {', '.join(names)}, or a plugin's (see 'sftc methods')"


MODEL_HELP = (f"architecture: {', '.join(MODELS)}, one registered by a plugin, "
              "module.path:callable (your own factory, called with in_channels and num_classes; "
              "the module may be a .py path) or timm:NAME (pip install \"sftc[timm]\")")
