"""The one training/unlearning loop: device, batching, optimizer, scheduler, progress, history,
NaN guard and timing. Methods only state a batch plan and a per-batch loss.

Modules, by job: ``loop`` (the epoch loop, :func:`run`, :class:`Recipe`, :class:`History`),
``steps`` (the optimisation step the loop is handed: plain, tuned, data-parallel), ``context``
(what a method sees, and :class:`Method`, the contract it meets), ``options`` (:class:`Accel`, the
speed options, and the environment's default), ``rule`` (the speed choices, decided without a
clock), ``tuning`` (the training step's choices applied to the model), ``measure`` and
``decisions`` (measure mode's trials and their store), ``linear_conv``, ``rewrites`` and
``inference_model`` (the optimisations themselves), ``inference`` (forward passes and frozen
teachers' outputs), ``numerics`` (:func:`numerics_identity`, for cache keys), ``process_group``,
``data_parallel`` and ``syncbn`` (torchrun jobs and DDP), ``device``.

Names are imported on first use, so that the command line's ``--help`` (which asks
:mod:`sftc.engine.process_group` whether torchrun started it) does not import torch.
"""
from __future__ import annotations

import importlib

_LAZY = {
    "Accel": "options", "Batch": "context", "PlannedBatch": "context", "RunContext": "context",
    "FrozenOutputs": "inference", "predict_logits": "inference", "History": "loop",
    "Recipe": "loop", "run": "loop", "resolve_device": "device",
    "numerics_identity": "numerics",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module 'sftc.engine' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = list(_LAZY)
