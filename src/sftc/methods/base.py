"""The method contract: a method states its hyperparameters, its batch plan and its batch loss.

The engine (:func:`sftc.engine.run`) owns everything else: the epoch loop, optimizer, scheduler,
device, progress bar, history, timing and the NaN guard.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable

import torch

from ..engine import Batch, PlannedBatch, RunContext
from ..errors import SftcError
from ..recipes import UNLEARN_EPOCHS, UNLEARN_LR


@dataclass(frozen=True)
class Hyper:
    """One hyperparameter: default (the paper's value), type, help text and an optional check
    returning an error message or None."""

    default: Any
    type: type
    help: str
    check: Callable[[Any], str | None] | None = None


def positive(value) -> str | None:
    return None if value > 0 and math.isfinite(value) else "must be a positive number"


def in_unit_interval(value) -> str | None:
    return None if 0.0 <= value <= 1.0 else "must lie in [0, 1]"


def non_negative_int(value) -> str | None:
    return None if value >= 0 else "must be 0 or more"


def seed_range(value) -> str | None:
    """A seed, as --seed takes it: a whole number 0 .. 2**32 - 1."""
    return None if 0 <= value <= 2 ** 32 - 1 else (
        f"must be a whole number 0 .. {2 ** 32 - 1} (a seed, as --seed)")


class UnlearningMethod:
    """Base class of every method. Subclasses set the class attributes and implement
    :meth:`plan` and :meth:`loss`; :meth:`setup` is optional.

    Attributes:
        name: registry name (``sftc``, ``ft``, ...).
        label: the paper's short row label in Table 1 (``SFTC``, ``FT``, ``NG+``, ...).
        summary: one line for ``sftc methods``.
        paper: the citation.
        hparams: hyperparameters with the paper's defaults.
        needs_original: the engine gives ``ctx.original``, a frozen copy of the starting model.
        sees_forget: whether the method reads forget samples at all (retrain and FT do not).
        fresh_start: the method discards the input model's weights and starts from a newly
            initialised model (the retrain-from-scratch oracle): a reference, not an unlearning
            method to rank.
        default_epochs, default_lr, default_scheduler: the recipe :func:`sftc.unlearn` uses where
            the caller gives none: 3 epochs at a constant 5e-4 (every epoch a valid stopping
            point); the oracle (and the training of the original): the training recipe, 30
            epochs at 1e-3 with cosine annealing (section 5.2).
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    hparams: ClassVar[dict[str, Hyper]] = {}
    needs_original: ClassVar[bool] = False
    sees_forget: ClassVar[bool] = True
    fresh_start: ClassVar[bool] = False
    default_epochs: ClassVar[int] = UNLEARN_EPOCHS
    default_lr: ClassVar[float] = UNLEARN_LR
    default_scheduler: ClassVar[str] = "constant"

    def __init__(self, **values: Any):
        unknown = sorted(set(values) - set(self.hparams))
        if unknown:
            allowed = ", ".join(self.hparams) or "none"
            raise SftcError(f"method {self.name!r} has no hyperparameter {unknown[0]!r}; "
                            f"it takes: {allowed}")
        self.values: dict[str, Any] = {}
        for key, spec in self.hparams.items():
            value = values.get(key, spec.default)
            try:
                value = spec.type(value)
            except (TypeError, ValueError):
                raise SftcError(f"{self.name}: {key}={value!r} is not a valid "
                                f"{spec.type.__name__}") from None
            problem = spec.check(value) if spec.check else None
            if problem:
                raise SftcError(f"{self.name}: {key}={value} {problem}")
            self.values[key] = value
            setattr(self, key, value)

    def config(self) -> dict:
        return {"method": self.name, **self.values}

    def setup(self, ctx: RunContext) -> None:
        """Prepare the run (teachers, frozen layers, caches). Timed as part of unlearning."""

    def plan(self, ctx: RunContext, epoch: int) -> Iterable[PlannedBatch]:
        raise NotImplementedError

    def loss(self, ctx: RunContext, batch: Batch, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.values.items())
        return f"{type(self).__name__}({args})"


def union_with_flags(ctx: RunContext) -> tuple[torch.Tensor, torch.Tensor]:
    """The pseudo-labelled union D_u = D_r' ∪ D_f' (paper, section 4): indices and b (0/1)."""
    retain, forget = ctx.split.retain, ctx.split.forget
    index = torch.cat([retain, forget])
    flag = torch.cat([torch.zeros(len(retain), dtype=torch.long),
                      torch.ones(len(forget), dtype=torch.long)])
    return index, flag
