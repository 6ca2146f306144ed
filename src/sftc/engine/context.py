"""What a method sees: the run's state, and the shape of a planned and a loaded batch; and
:class:`Method`, the contract the engine runs (the loop and its steps both read it here)."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Protocol

import torch
from torch import nn

from ..data import Split
from .inference import FrozenOutputs
from .options import Accel

if TYPE_CHECKING:
    from .data_parallel import DataParallel


def reinitialised(model: nn.Module, seed: int) -> nn.Module:
    """A copy of ``model`` with every submodule that has ``reset_parameters`` re-initialised."""
    fresh = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in fresh.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
            if hasattr(module, "reset_running_stats"):
                module.reset_running_stats()
    return fresh


@dataclass
class PlannedBatch:
    """Which samples go into one optimisation step, before loading.

    ``index``: dataset indices; ``flag``: the pseudo-label b per sample (0 retain, 1 forget) or
    None; ``phase``: a name the method's loss can branch on (SCRUB's "max"/"min" passes).
    """

    index: torch.Tensor
    flag: torch.Tensor | None = None
    phase: str = "train"


@dataclass
class Batch:
    """A loaded batch on the device: inputs, labels, dataset indices, pseudo-labels and phase."""

    x: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor
    flag: torch.Tensor | None
    phase: str
    n_forget: int = 0  # number of samples with flag 1, known on the host (no device sync)


@dataclass
class RunContext:
    """The run's state as a method sees it in ``setup``, ``plan`` and ``loss``."""

    model: nn.Module
    split: Split
    device: torch.device
    batch_size: int
    augment: bool
    generator: torch.Generator
    original: nn.Module | None = None
    epoch: int = 0
    epochs: int = 0
    frozen: list[nn.Module] = field(default_factory=list)
    fresh_model: Callable[[int], nn.Module] | None = None
    accel: Accel = field(default_factory=Accel)
    accel_log: list[dict] = field(default_factory=list)  # frozen models' inference choices
    accel_notes: list[str] = field(default_factory=list)
    trial_seconds: float = 0.0  # measure mode's trials, kept out of the run's timings
    parallel: "DataParallel | None" = None  # the run's ranks (engine.data_parallel), if spread

    def new_model(self, seed: int) -> nn.Module:
        """A freshly initialised model of the same architecture (the builder's own initialisation
        when known; otherwise every submodule's ``reset_parameters``)."""
        if self.fresh_model is not None:
            return self.fresh_model(seed).to(self.device)
        return reinitialised(self.model, seed).to(self.device)

    @property
    def num_classes(self) -> int:
        return self.split.data.num_classes

    @property
    def data(self):
        return self.split.data

    def frozen_copy(self, model: nn.Module | None = None) -> nn.Module:
        """An eval-mode copy of ``model`` (default: the model as it was before the run) whose
        parameters never receive gradients."""
        source = model if model is not None else self.original
        teacher = copy.deepcopy(source).to(self.device).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        return teacher

    def frozen_outputs(self, model: nn.Module, indices: torch.Tensor | None) -> FrozenOutputs:
        """Per-batch outputs of a frozen model, precomputed for ``indices`` when the training
        inputs never change: no augmentation, and data whose training samples are deterministic
        (a user's dataset with random transforms is treated as augmented).

        The model runs as an inference-only copy (batch norm folded, the rule's layout and batch
        size; see :class:`sftc.engine.inference_model.InferenceModel`); ``model`` itself is not
        changed."""
        outputs = FrozenOutputs(model, self.split.data, indices, self.device,
                                cache=self.inputs_fixed, accel=self.accel, parallel=self.parallel)
        self.accel_log.append(outputs.record)
        self.trial_seconds += outputs.trial_seconds
        return outputs

    @property
    def inputs_fixed(self) -> bool:
        """Whether a training sample's input is the same every time it is loaded."""
        return not self.augment and self.split.data.train_deterministic

    def permutation(self, n: int) -> torch.Tensor:
        return torch.randperm(n, generator=self.generator)

    def shuffled_batches(self, index: torch.Tensor, flag: torch.Tensor | None = None,
                         phase: str = "train",
                         batch_size: int | None = None) -> Iterator[PlannedBatch]:
        """Shuffle ``index`` (and ``flag`` with it) and cut it into batches."""
        size = batch_size or self.batch_size
        order = self.permutation(len(index))
        index = index[order]
        flag = flag[order] if flag is not None else None
        yield from cut_batches(index, flag, size, phase)


def cut_batches(index: torch.Tensor, flag: torch.Tensor | None, size: int,
                phase: str = "train") -> Iterator[PlannedBatch]:
    """Cut ``index`` (and ``flag``) into batches of ``size``. A trailing batch of one sample is
    folded into the batch before it: batch normalisation cannot train on a single sample."""
    n = len(index)
    starts = list(range(0, n, size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else n
        yield PlannedBatch(index[start:end], None if flag is None else flag[start:end], phase)


class Method(Protocol):
    """The contract the engine runs (implemented by :class:`sftc.methods.base.UnlearningMethod`)."""

    name: str
    needs_original: bool

    def setup(self, ctx: RunContext) -> None: ...

    def plan(self, ctx: RunContext, epoch: int) -> Iterable[PlannedBatch]: ...

    def loss(self, ctx: RunContext, batch: Batch, logits: torch.Tensor) -> torch.Tensor: ...
