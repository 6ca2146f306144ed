"""Measure mode's decision store: one JSON file per measured decision, in the cache directory.

A decision is measured once, before the run that first needs it, and every later run with the
same key reads it from its first step (so a measured choice, once made, no longer depends on the
load of the machine). The key names what the measurement depends on: the architecture (module
types, parameter names and shapes, which parameters train), the per-sample input shape and
dtype, the batch size, the device and its name, the CPU's dispatch level, torch's version and
thread count, and the options that shape the measured model (:func:`decision_key`). Two
processes that need the same decision at once measure it once: the second waits on the file's
lock and reads what the first wrote.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..io import atomic_write_json, run_lock
from .numerics import machine

NOTE = ("measured on this machine (SFTC_ACCEL=measure): another machine, or another decision "
        "cache, can choose otherwise and give other numbers")


def architecture(model: nn.Module) -> str:
    """SHA-256 of the module types, parameter names and shapes, and which parameters train."""
    h = hashlib.sha256(type(model).__qualname__.encode())
    for name, module in model.named_modules():
        h.update(f"{name}:{type(module).__qualname__};".encode())
    for name, p in model.named_parameters():
        h.update(f"{name}:{tuple(p.shape)}:{p.requires_grad};".encode())
    return h.hexdigest()


def decision_key(kind: str, model: nn.Module, x: torch.Tensor, device: torch.device,
                 **options) -> dict:
    """What a measured decision of ``kind`` depends on (a JSON-able dict)."""
    return {"kind": kind, "model": type(model).__qualname__, "architecture": architecture(model),
            "input": list(x.shape[1:]), "batch": int(x.shape[0]), "dtype": str(x.dtype),
            **machine(device), **options}


class DecisionStore:
    """Decisions kept as ``<directory>/<kind>-<digest>.json`` (``{"key", "decision"}``)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def path(self, key: dict) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
        return self.directory / f"{key['kind']}-{digest}.json"

    def read(self, key: dict) -> dict | None:
        """The stored decision for ``key``, or None (absent, unreadable, or another key)."""
        try:
            record = json.loads(self.path(key).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("key") != key:
            return None
        return record.get("decision")

    def decide(self, key: dict, measure: Callable[[], dict]) -> tuple[dict, str]:
        """The stored decision for ``key``, else ``measure()``'s, stored. Returns the decision
        and ``"stored"`` or ``"measured"``."""
        path = self.path(key)
        with run_lock(path, what="the speed decision", wait=True):
            found = self.read(key)
            if found is not None:
                return found, "stored"
            decision = measure()
            atomic_write_json(path, {"key": key, "decision": decision, "note": NOTE})
        return decision, "measured"
