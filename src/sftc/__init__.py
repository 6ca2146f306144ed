"""sftc: machine unlearning for PyTorch classifiers.

SFTC (Selective Fine-tuning and Targeted Confusion, EICC 2024), its baselines, the
retrain-from-scratch oracle and the paper's evaluation, on one engine.
"""
from .api import RunResult, evaluate, load_model, retrain, train, unlearn
from .data import ImageData, Split, list_datasets, load_dataset, load_split
from .errors import DivergedError, SftcError
from .methods import create_method, list_methods
from .models import build_model, create_model, list_models, register_model

__version__ = "0.1.0"

#: Names served lazily from sftc.bench, which sits above the api layer (import cycles otherwise).
_LAZY = {"audit": ("sftc.bench.audit", "audit"), "AuditResult": ("sftc.bench.audit", "AuditResult"),
         "ReferenceRecipe": ("sftc.bench.reference_pool", "ReferenceRecipe"),
         "forgetting_score": ("sftc.bench.forgetting", "forgetting_score")}


def __getattr__(name: str):
    """``sftc.audit`` (and the other names of :data:`_LAZY`), imported on first use."""
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'sftc' has no attribute {name!r}")

__all__ = ["RunResult", "evaluate", "load_model", "retrain", "train", "unlearn", "ImageData",
           "Split", "list_datasets", "load_dataset", "load_split", "DivergedError", "SftcError",
           "create_method", "list_methods", "build_model", "create_model", "list_models",
           "register_model", "__version__", "audit", "AuditResult", "ReferenceRecipe",
           "forgetting_score"]
