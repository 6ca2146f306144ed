"""The public Python surface: train(), retrain(), unlearn(), evaluate(), load_model()."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from .checkpoints import load_into
from .data import Split
from .engine import Accel, History, Recipe, run
from .errors import SftcError
from .methods import create_method
from .methods.supervised import Retrain, TrainOnRetain, TrainOriginal
from .metrics import evaluate_models
from .models import build_model, canonical_model_name

#: Unlearning defaults: the paper's batch size and Adam; a constant learning rate so that every
#: epoch of a run is a valid stopping point (the benchmark evaluates after each epoch).
UNLEARN_EPOCHS = 3
UNLEARN_LR = 5e-4
#: The paper's training recipe (section 5.2), also the oracle's.
TRAIN_EPOCHS = 30
TRAIN_LR = 1e-3


@dataclass
class RunResult:
    """A model and how it was produced: history (per-epoch rows), seconds, the resolved config."""

    model: nn.Module
    history: History
    config: dict = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.history.seconds


def as_accel(accel: Accel | dict | str | None) -> Accel:
    """``None``/``"auto"``: measured choices; ``"off"``: the plain path; a dict: ``Accel`` fields."""
    if accel is None or accel == "auto":
        return Accel()
    if accel == "off":
        return Accel.plain()
    if isinstance(accel, dict):
        return Accel(**accel)
    if isinstance(accel, Accel):
        return accel
    raise SftcError(f"accel must be 'auto', 'off', a dict or an Accel; got {accel!r}")


def _model_factory(name: str | None, split: Split):
    if name is None:
        return None
    channels = split.data.channels or 1
    return lambda seed: build_model(name, channels, split.data.num_classes, seed=seed)


def _check_model_fits(model: nn.Module, split: Split, device: str) -> None:
    """Fail early, in one line, when the model does not take these inputs or classes (probed where
    the model's parameters are, so the caller's model is not moved)."""
    from .engine import resolve_device

    resolve_device(device)  # an unavailable --device is reported before anything runs
    first = next(iter(model.parameters()), None)
    dev = first.device if first is not None else torch.device("cpu")
    probe_index = split.train[:2]
    x, _ = split.data.batch(probe_index, dev)
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
    except RuntimeError as exc:
        raise SftcError(f"the model does not accept this dataset's inputs {tuple(x.shape[1:])}: "
                        f"{str(exc).splitlines()[0]}") from None
    finally:
        model.train(was)
    if out.dim() != 2 or out.shape[1] != split.data.num_classes:
        raise SftcError(f"the model outputs {tuple(out.shape[1:])} values per sample but the dataset "
                        f"has {split.data.num_classes} classes")


def train(split: Split, model: str | nn.Module = "small-cnn", *, epochs: int = TRAIN_EPOCHS,
          lr: float = TRAIN_LR,
          batch_size: int = 64, seed: int = 0, device: str = "auto", augment: bool = False,
          subset: str = "train", track: Sequence[str] = (), progress: bool = True,
          accel: Accel | dict | str | None = None) -> RunResult:
    """Train a model from scratch with the paper's recipe (Adam, cosine annealing; section 5.2).

    ``subset="train"`` trains the original model M on D; ``subset="retain"`` trains the
    retrain-from-scratch oracle M_R on D_r. ``model`` is a name (``small-cnn``, ``resnet18``,
    ``efficientnet_b0``) or a freshly built module. ``accel``: the speed options
    (:class:`sftc.engine.Accel`; default measured per model, ``"off"`` for the plain path).
    """
    if subset not in ("train", "retain"):
        raise SftcError(f"subset must be 'train' or 'retain', got {subset!r}")
    name = canonical_model_name(model) if isinstance(model, str) else None
    module = (build_model(name, split.data.channels or 1, split.data.num_classes, seed=seed)
              if name else model)
    _check_model_fits(module, split, device)
    recipe = Recipe(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, device=device,
                    augment=augment, scheduler="cosine", accel=as_accel(accel))
    method = TrainOriginal() if subset == "train" else TrainOnRetain()
    trained, history = run(method, module, split, recipe, track=track, progress=progress,
                           desc="train" if subset == "train" else "retrain")
    config = {"model": name or type(model).__name__, "subset": subset, **asdict(recipe)}
    return RunResult(trained, history, config)


def retrain(split: Split, model: str | nn.Module = "small-cnn", **kwargs) -> RunResult:
    """The oracle M_R: :func:`train` on the retain set only, from a fresh initialisation."""
    return train(split, model, subset="retain", **kwargs)


def unlearn(model: nn.Module, split: Split, method: str = "sftc", *, epochs: int | None = None,
            lr: float | None = None, batch_size: int = 64, seed: int = 0, device: str = "auto",
            optimizer: str = "adam", scheduler: str = "constant", augment: bool = False,
            track: Sequence[str] = (), progress: bool = True, model_name: str | None = None,
            on_epoch_end=None, accel: Accel | dict | str | None = None, **hparams) -> RunResult:
    """Unlearn ``split.forget`` from ``model`` with a registered method; returns a new model.

    The input model is never modified. ``hparams`` are the method's hyperparameters (for SFTC:
    ``tau``, ``c``); unknown ones are rejected. ``model_name`` lets methods that need a freshly
    initialised model (``retrain``, ``eu-k``) use the architecture's own initialisation.
    ``track`` names subsets whose accuracy is recorded per epoch (epoch 0 = the input model).
    ``epochs``/``lr`` default to 3 and 5e-4, or to the training recipe (30, 1e-3, cosine) for
    ``retrain``. ``accel``: the speed options (:class:`sftc.engine.Accel`; default: each
    optimisation is taken where a quick measurement shows it pays; ``"off"``: the plain path);
    the choices made are in ``result.history.accel``.
    """
    algorithm = create_method(method, **hparams)
    is_retrain = isinstance(algorithm, Retrain)
    epochs = epochs if epochs is not None else (TRAIN_EPOCHS if is_retrain else UNLEARN_EPOCHS)
    lr = lr if lr is not None else (TRAIN_LR if is_retrain else UNLEARN_LR)
    _check_model_fits(model, split, device)
    recipe = Recipe(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, device=device,
                    optimizer=optimizer, scheduler=scheduler, augment=augment,
                    accel=as_accel(accel))
    if is_retrain:
        recipe.scheduler = "cosine"
    result, history = run(algorithm, model, split, recipe, track=track, progress=progress,
                          desc=algorithm.name, on_epoch_end=on_epoch_end,
                          fresh_model=_model_factory(model_name, split))
    return RunResult(result, history, {**algorithm.config(), **asdict(recipe)})


def evaluate(original: nn.Module, unlearned: nn.Module, split: Split,
             retrained: nn.Module | None = None, **kwargs) -> dict:
    """All metrics of section 5.4 (see :func:`sftc.metrics.evaluate_models` for the options)."""
    return evaluate_models(original, unlearned, split, retrained, **kwargs)


def load_model(path: str | Path, model: str, split: Split) -> nn.Module:
    """Build ``model`` for this dataset and load the checkpoint at ``path`` (weights only)."""
    name = canonical_model_name(model)
    module = build_model(name, split.data.channels or 1, split.data.num_classes)
    return load_into(module, path, model_name=f"{name} for {split.data.num_classes} classes")
