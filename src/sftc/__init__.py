"""sftc: machine unlearning for PyTorch classifiers.

SFTC (Selective Fine-tuning and Targeted Confusion, EICC 2024), its baselines, the
retrain-from-scratch oracle and the paper's evaluation, on one engine.

Every public name is imported on first use (PEP 562), so that ``import sftc`` and the command
line's ``--help`` do not pay for torch, torchvision and scikit-learn until something needs them.
"""
from __future__ import annotations

import importlib

from ._version import __version__
from .errors import DivergedError, SftcError

#: Public names and the module each is served from, imported on first use.
_LAZY = {
    **{name: "sftc.api" for name in ("RunResult", "evaluate", "load_model", "retrain", "train")},
    **{name: "sftc.data" for name in ("ImageData", "Split", "list_datasets", "load_dataset",
                                      "load_split", "register_dataset")},
    **{name: "sftc.methods" for name in ("create_method", "list_methods", "register_method",
                                         "UnlearningMethod", "Hyper")},
    **{name: "sftc.models" for name in ("build_model", "create_model", "list_models",
                                        "register_model")},
    "load_plugin": "sftc.plugins",
    "audit": "sftc.bench.audit", "AuditResult": "sftc.bench.audit",
    "AuditConfig": "sftc.bench.audit",
    "ReferenceRecipe": "sftc.bench.reference_pool", "TrainingRecipe": "sftc.recipes",
    "forgetting_score": "sftc.bench.forgetting",
    "unlearn_until_forgotten": "sftc.bench.until", "SearchConfig": "sftc.bench.until",
    "unlearn": "sftc.front",
}


def __getattr__(name: str):
    """Every name of :data:`_LAZY` (``sftc.unlearn`` among them), or a submodule, imported on first
    use."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module 'sftc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["DivergedError", "SftcError", "__version__", *_LAZY]
