"""sftc: machine unlearning for PyTorch classifiers.

SFTC (Selective Fine-tuning and Targeted Confusion, EICC 2024), its baselines, the
retrain-from-scratch oracle and the paper's evaluation, on one engine.

Every public name is imported on first use (PEP 562), so that ``import sftc`` and the command
line's ``--help`` do not pay for torch, torchvision and scikit-learn until something needs them.
"""
from __future__ import annotations

import importlib

from .errors import DivergedError, SftcError

__version__ = "0.1.0"

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
}


def unlearn(model, split, method: str = "sftc", *, until: str | None = None, **options):
    """Unlearn ``split.forget`` from ``model`` with ``method`` (:func:`sftc.api.unlearn`: a fixed
    learning rate and epoch count), or with ``until="forgotten"`` search the learning rate and
    stop on the evidence (:func:`sftc.bench.until.unlearn_until_forgotten`: the options are its
    :class:`~sftc.bench.until.SearchConfig` fields and ``audit_config``, ``recipe``, ``device``,
    ``progress``; returns its :class:`~sftc.bench.until.SearchResult`)."""
    if until is None:
        from .api import unlearn as fixed

        return fixed(model, split, method, **options)
    if until != "forgotten":
        raise SftcError(f"until must be 'forgotten' (or None for a fixed setting), got {until!r}")
    from .bench.until import unlearn_until_forgotten

    return unlearn_until_forgotten(model, split, method=method, **options)


def __getattr__(name: str):
    """``sftc.unlearn`` (and every name of :data:`_LAZY`, or a submodule), imported on first use."""
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


__all__ = ["DivergedError", "SftcError", "__version__", "unlearn", *_LAZY]
