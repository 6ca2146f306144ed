"""The public Python surface: train(), retrain(), unlearn(), evaluate(), load_model()."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from .checkpoints import check_finite, load_into
from .data import Split
from .engine import Accel, History, Recipe, run
from .errors import SftcError
from .limits import check_epochs
from .methods import UnlearningMethod, create_method
from .methods.supervised import TrainOnRetain, Training, TrainOriginal
from .metrics import evaluate_models
from .models import canonical_model_name, create_model

#: Unlearning defaults (every method's class attributes unless it says otherwise): the paper's
#: batch size and Adam; a constant learning rate so that every epoch of a run is a valid stopping
#: point (the benchmark evaluates after each epoch).
UNLEARN_EPOCHS = UnlearningMethod.default_epochs
UNLEARN_LR = UnlearningMethod.default_lr
#: The paper's training recipe (section 5.2), also the oracle's.
TRAIN_EPOCHS = Training.default_epochs
TRAIN_LR = Training.default_lr


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
    """The speed options of a run (:meth:`sftc.engine.Accel.parse`): ``None``/``"auto"``: the
    environment's default (``SFTC_ACCEL``; unset: the rule, bit-reproducible); ``"rule"``;
    ``"measure"``: measured once per model and machine, kept in the cache directory
    (``SFTC_CACHE_DIR``); ``"off"``: the plain path; a dict: ``Accel`` fields."""
    return Accel.parse(accel)


def _job(data_parallel: bool):
    """The torchrun job a data-parallel run spreads over (None: a single process)."""
    if not data_parallel:
        return None
    from .engine import process_group

    return process_group.current() if process_group.active() else None


def _model_factory(name: str | None, split: Split):
    if name is None:
        return None
    return lambda seed: _new_model(name, split, seed)


def _new_model(name: str, split: Split, seed: int | None = None) -> nn.Module:
    return create_model(name, in_channels=split.data.in_channels,
                        num_classes=split.data.num_classes, seed=seed)


def _check_epochs(epochs: int) -> None:
    if not isinstance(epochs, int) or epochs < 1:
        raise SftcError(f"--epochs must be at least 1, got {epochs!r} (0 epochs would return the "
                        "input model unchanged)")
    check_epochs(epochs)


def _first_line(exc: BaseException) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()),
                type(exc).__name__)


def _raised_at(exc: BaseException) -> str:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "an unknown place"
    return f"{Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno}"


def checked_loss(method: UnlearningMethod):
    """``method.loss`` with its result checked before the engine backpropagates it: a tensor of
    one value that carries a gradient (a plugin's loss computed under ``torch.no_grad()``,
    detached, or not reduced to a scalar is one line naming the method, not torch's error)."""
    loss = method.loss
    where = f"the loss of method {method.name!r} ({type(method).__module__}.{type(method).__name__})"

    def check(ctx, batch, logits):
        value = loss(ctx, batch, logits)
        if not isinstance(value, torch.Tensor):
            raise SftcError(f"{where} returned a {type(value).__name__}, not a tensor; return "
                            "the loss tensor computed from the logits (not .item())")
        if value.numel() != 1:
            raise SftcError(f"{where} has shape {tuple(value.shape)}, not one value; reduce it "
                            "to a scalar (e.g. .mean())")
        if not value.requires_grad:
            raise SftcError(f"{where} carries no gradient (computed under torch.no_grad(), or "
                            "detached with .detach()): nothing could be learned from it; compute "
                            "it from the logits with gradients on")
        return value.reshape(()) if value.dim() else value

    return check


def _check_split(split) -> None:
    """A Split, or one line saying how to make one from what was given."""
    if isinstance(split, Split):
        return
    what = type(split).__name__
    if isinstance(split, torch.utils.data.DataLoader):
        how = "Split.from_dataset(loader.dataset, forget, test=...)"
    elif hasattr(split, "__getitem__") and hasattr(split, "__len__"):
        how = "Split.from_dataset(dataset, forget, test=...)"
    else:
        how = "Split.from_tensors(x, y, forget, ...) or sftc.load_split(name, forget)"
    raise SftcError(f"expected a sftc.Split (the data with its forget set), got {what}; make "
                    f"one with sftc.{how}")


def check_model_fits(model: nn.Module, split: Split, device: str, what: str = "the model") -> None:
    """Fail early, in one line, when the model does not take these inputs or classes, or its
    forward fails (probed where the model's parameters are, so the caller's model is not moved);
    ``what`` names the model in the messages."""
    from .engine import resolve_device

    resolve_device(device)  # an unavailable --device is reported before anything runs
    check_finite(model.state_dict().items(), what)
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
        if isinstance(exc, NotImplementedError):
            said = f": {_first_line(exc)}" if str(exc).strip() else ""
            raise SftcError(f"the forward of {what} is not implemented (NotImplementedError in "
                            f"{_raised_at(exc)}){said}; give the model a forward(x) that returns "
                            "[N, classes]") from None
        raise SftcError(f"{what} does not accept this dataset's inputs {tuple(x.shape[1:])}: "
                        f"{_first_line(exc)}") from None
    except Exception as exc:   # the model's own code failed (a plugin's, a factory's)
        raise SftcError(f"the forward of {what} failed on a batch of this dataset's inputs "
                        f"{tuple(x.shape)}: {type(exc).__name__}: {_first_line(exc)} (raised in "
                        f"{_raised_at(exc)}); fix the model: forward(x) must take [N, *sample shape] "
                        "and return [N, classes]") from None
    finally:
        model.train(was)
    if not isinstance(out, torch.Tensor):
        raise SftcError(f"the forward of {what} returned a {type(out).__name__}, not a tensor of "
                        "logits [N, classes]")
    if out.dim() != 2 or out.shape[1] != split.data.num_classes:
        raise SftcError(f"{what} outputs {tuple(out.shape[1:])} values per sample but the dataset "
                        f"has {split.data.num_classes} classes")


def train(split: Split, model: str | nn.Module = "small-cnn", *, epochs: int = TRAIN_EPOCHS,
          lr: float = TRAIN_LR,
          batch_size: int = 64, seed: int = 0, device: str = "auto", augment: bool = False,
          subset: str = "train", track: Sequence[str] = (), progress: bool = True,
          accel: Accel | dict | str | None = None, data_parallel: bool = False,
          privacy=None) -> RunResult:
    """Train a model from scratch with the paper's recipe (Adam, cosine annealing; section 5.2).

    ``subset="train"`` trains the original model M on D; ``subset="retain"`` trains the
    retrain-from-scratch oracle M_R on D_r. ``model`` is a name (``small-cnn``, ``resnet18``,
    ``efficientnet_b0``) or a freshly built module. ``accel``: the speed options
    (:func:`as_accel`; default the rule, ``"off"`` for the plain path). ``data_parallel``: inside
    a torchrun job (:func:`sftc.engine.process_group.job`), one DDP run over its ranks (every
    rank makes the same call); a single process ignores it. ``privacy``: a
    :class:`sftc.dp.PrivacyRecipe` trains with DP-SGD instead (:func:`train_private`).
    """
    _check_split(split)
    if subset not in ("train", "retain"):
        raise SftcError(f"subset must be 'train' or 'retain', got {subset!r}")
    _check_epochs(epochs)
    if privacy is not None:
        return train_private(split, model, privacy, epochs=epochs, lr=lr, batch_size=batch_size,
                             seed=seed, device=device, augment=augment, subset=subset,
                             progress=progress)
    name = canonical_model_name(model) if isinstance(model, str) else None
    module = _new_model(name, split, seed) if name else model
    check_model_fits(module, split, device)
    recipe = Recipe(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, device=device,
                    augment=augment, scheduler=Training.default_scheduler, accel=as_accel(accel))
    method = TrainOriginal() if subset == "train" else TrainOnRetain()
    trained, history = run(method, module, split, recipe, track=track, progress=progress,
                           desc="train" if subset == "train" else "retrain",
                           parallel=_job(data_parallel))
    config = {"model": name or type(model).__name__, "subset": subset, **asdict(recipe)}
    return RunResult(trained, history, config)


def train_private(split: Split, model: str, privacy, *, epochs: int, lr: float, batch_size: int,
                  seed: int, device: str, augment: bool = False, subset: str = "train",
                  progress: bool = False) -> RunResult:
    """Train the ``dp:`` variant of ``model`` with DP-SGD (:mod:`sftc.dp`); ``config["dp"]``
    holds what the run spent (ε at δ, noise multiplier, clipping norm, accountant)."""
    from . import dp
    from .engine import resolve_device

    dp.require_opacus()
    if not isinstance(model, str):
        raise SftcError("a private run builds its model from a name (dp:NAME after Opacus's "
                        "ModuleValidator.fix); pass the architecture's name")
    if augment:
        raise SftcError("--augment is not supported with --dp-epsilon (each sample's gradient "
                        "is clipped as it is); drop --augment")
    name = canonical_model_name(dp.dp_name(model))
    module = _new_model(name, split, seed)
    check_model_fits(module, split, device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        trained, rows, seconds, spent = dp.train_private(
            split, module, privacy, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
            device=resolve_device(device), subset=subset, progress=progress)
    config = {"model": name, "subset": subset, "epochs": epochs, "lr": lr,
              "batch_size": batch_size, "seed": seed, "device": device, "augment": False,
              "optimizer": "adam", "scheduler": "cosine", "dp_epsilon": privacy.epsilon,
              "dp_delta": privacy.delta, "max_grad_norm": privacy.max_grad_norm, "dp": spent}
    return RunResult(trained, History(rows=rows, seconds=seconds), config)


def retrain(split: Split, model: str | nn.Module = "small-cnn", **kwargs) -> RunResult:
    """The oracle M_R: :func:`train` on the retain set only, from a fresh initialisation."""
    return train(split, model, subset="retain", **kwargs)


def unlearn(model: nn.Module, split: Split, method: str = "sftc", *, epochs: int | None = None,
            lr: float | None = None, batch_size: int = 64, seed: int = 0, device: str = "auto",
            optimizer: str = "adam", scheduler: str | None = None, augment: bool = False,
            track: Sequence[str] = (), progress: bool = True, model_name: str | None = None,
            on_epoch_end=None, accel: Accel | dict | str | None = None,
            data_parallel: bool = False, **hparams) -> RunResult:
    """Unlearn ``split.forget`` from ``model`` with a registered method; returns a new model.

    The input model is never modified. ``hparams`` are the method's hyperparameters (for SFTC:
    ``tau``, ``c``); unknown ones are rejected. ``model_name`` lets methods that need a freshly
    initialised model (``retrain``, ``eu-k``) use the architecture's own initialisation.
    ``track`` names subsets whose accuracy is recorded per epoch (epoch 0 = the input model).
    ``epochs``, ``lr`` and ``scheduler`` left out take the method's defaults: 3 epochs at a
    constant 5e-4, or for ``retrain`` the training recipe (30 epochs, 1e-3, cosine); a value given
    is always used. ``accel``: the speed options (:func:`as_accel`; default: the rule of
    :mod:`sftc.engine.rule`, which never reads a clock; ``"off"``: the plain path); the choices
    made are in ``result.history.accel``. ``data_parallel``: as for :func:`train`.
    """
    _check_split(split)
    if not isinstance(model, nn.Module):
        raise SftcError(f"expected the trained model as a torch.nn.Module, got a "
                        f"{type(model).__name__}")
    algorithm = create_method(method, **hparams)
    algorithm.loss = checked_loss(algorithm)
    check_model_fits(model, split, device)
    epochs = algorithm.default_epochs if epochs is None else epochs
    _check_epochs(epochs)
    recipe = Recipe(epochs=epochs,
                    lr=algorithm.default_lr if lr is None else lr, batch_size=batch_size,
                    seed=seed, device=device, optimizer=optimizer,
                    scheduler=algorithm.default_scheduler if scheduler is None else scheduler,
                    augment=augment, accel=as_accel(accel))
    result, history = run(algorithm, model, split, recipe, track=track, progress=progress,
                          desc=algorithm.name, on_epoch_end=on_epoch_end,
                          fresh_model=_model_factory(model_name, split),
                          parallel=_job(data_parallel))
    return RunResult(result, history, {**algorithm.config(), **asdict(recipe)})


def evaluate(original: nn.Module, unlearned: nn.Module, split: Split,
             retrained: nn.Module | None = None, **kwargs) -> dict:
    """All metrics of section 5.4 (see :func:`sftc.metrics.evaluate_models` for the options)."""
    _check_split(split)
    for key, low in (("mia_iterations", 1), ("mia_folds", 2)):
        value = kwargs.get(key)
        if value is not None and (not isinstance(value, int) or value < low):
            raise SftcError(f"{key.replace('_', '-')} must be a whole number {low} or more, "
                            f"got {value!r}")
    for name, model in (("original", original), ("unlearned", unlearned),
                        ("retrained", retrained)):
        if model is not None:
            check_finite(model.state_dict().items(), f"the {name} model")
    return evaluate_models(original, unlearned, split, retrained, **kwargs)


def load_model(path: str | Path, model: str, split: Split) -> nn.Module:
    """Build ``model`` for this dataset and load the checkpoint at ``path`` (weights only)."""
    name = canonical_model_name(model)
    module = _new_model(name, split)
    return load_into(module, path, model_name=f"{name} for {split.data.num_classes} classes")


# -- lookups for front ends: the command line reaches the layers below only through here ---------
from .data import dataset_info, load_dataset  # noqa: E402
from .data.subsets import subset_split  # noqa: E402
from .data.summary import SUBSETS, class_counts, class_names, distribution_png  # noqa: E402
from .engine import resolve_device  # noqa: E402
from .engine.data_parallel import check_batch_size  # noqa: E402
from .methods import list_methods, method_class  # noqa: E402
from .metrics import accuracies, list_metrics, metric_info, subset_logits  # noqa: E402
from .metrics.attacks import attack_class, list_attacks  # noqa: E402

__all__ = ["RunResult", "as_accel", "check_model_fits", "train", "retrain", "unlearn", "evaluate",
           "load_model", "create_method", "create_model", "canonical_model_name",
           "dataset_info", "load_dataset", "subset_split", "SUBSETS", "class_counts",
           "class_names", "distribution_png", "resolve_device", "check_batch_size",
           "list_methods", "method_class", "accuracies", "list_metrics", "metric_info",
           "subset_logits", "attack_class", "list_attacks"]
