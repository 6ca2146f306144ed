"""The training recipe: how an original, an oracle or an audit reference model is trained, and
the paper's defaults, defined once (section 5.2: Adam, lr 1e-3, cosine annealing, 30 epochs,
batch 64).

Every trained model sftc caches is keyed by a :class:`TrainingRecipe` (with the data it trained
on and its seed); ``sftc train``, the benchmark, the audit and the forgetting score all build
theirs here. This module imports nothing heavy (the command line's ``--help`` quotes it).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from .errors import SftcError

#: The paper's training recipe (section 5.2).
TRAIN_EPOCHS = 30
TRAIN_LR = 1e-3
BATCH_SIZE = 64
OPTIMIZER = "adam"
SCHEDULER = "cosine"
#: The unlearning defaults of every method: 3 epochs at a constant 5e-4 (each epoch a valid
#: stopping point for the benchmark's per-epoch selection).
UNLEARN_EPOCHS = 3
UNLEARN_LR = 5e-4


def _whole(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SftcError(f"{name} must be a whole number 1 or more, got {value!r}")
    return value


@dataclass(frozen=True)
class TrainingRecipe:
    """How a model is trained from scratch (``sftc train``'s recipe: Adam, cosine annealing by
    default). ``source`` says where it came from (options, a run.json, the defaults) and is not
    part of any key."""

    model: str = "small-cnn"
    epochs: int = TRAIN_EPOCHS
    lr: float = TRAIN_LR
    batch_size: int = BATCH_SIZE
    augment: bool = False
    optimizer: str = OPTIMIZER
    scheduler: str = SCHEDULER
    source: str = "defaults"
    #: differential privacy (:mod:`sftc.dp`): the asked ε (None: not private), δ, clipping norm
    dp_epsilon: float | None = None
    dp_delta: float | None = None
    max_grad_norm: float | None = None

    def __post_init__(self):
        from .models import canonical_model_name

        object.__setattr__(self, "model", canonical_model_name(self.model))
        _whole(self.epochs, "the recipe's epochs")
        _whole(self.batch_size, "the recipe's batch size")
        if not (isinstance(self.lr, (int, float)) and not isinstance(self.lr, bool)
                and self.lr > 0 and math.isfinite(self.lr)):
            raise SftcError(f"the recipe's learning rate must be a positive number, got "
                            f"{self.lr!r}")
        object.__setattr__(self, "lr", float(self.lr))
        if self.optimizer not in ("adam", "sgd"):
            raise SftcError(f"unknown optimizer {self.optimizer!r}; use adam or sgd")
        if self.scheduler not in ("cosine", "constant"):
            raise SftcError(f"unknown scheduler {self.scheduler!r}; use cosine or constant")
        if self.dp_epsilon is not None:
            from .dp import privacy_of

            privacy_of(asdict(self))           # checked now, before any work
        elif self.dp_delta is not None or self.max_grad_norm is not None:
            raise SftcError("--dp-delta and --max-grad-norm go with --dp-epsilon")

    def key_dict(self) -> dict:
        """What determines the model (everything but ``source``; the privacy fields only for a
        private recipe, so that other recipes' keys are as before)."""
        d = asdict(self)
        del d["source"]
        if self.dp_epsilon is None:
            for name in DP_FIELDS:
                del d[name]
        return d

    def with_source(self, source: str) -> "TrainingRecipe":
        return replace(self, source=source)

    @classmethod
    def from_record(cls, record: dict | None, model: str, **overrides) -> "TrainingRecipe":
        """The recipe of a run record (a ``run.json``'s ``config``), with ``overrides`` (values
        not None) taking precedence; ``source`` says which was used for what."""
        config = (record or {}).get("config") or {}
        values, sources = {"model": model}, []
        for name, default in (("epochs", TRAIN_EPOCHS), ("lr", TRAIN_LR),
                              ("batch_size", BATCH_SIZE), ("augment", False)):
            if overrides.get(name) is not None:
                values[name], where = overrides[name], "options"
            elif config.get(name) is not None:
                values[name], where = config[name], "run.json beside the original"
            else:
                values[name], where = default, "defaults"
            sources.append(where)
        source = ", ".join(dict.fromkeys(sources))
        if record is not None and config.get("subset") not in (None, "train"):
            source += " (note: that run.json is not an original model's)"
        private = {name: overrides.get(name) if overrides.get(name) is not None
                   else config.get(name) for name in DP_FIELDS}
        return cls(values["model"], int(values["epochs"]), float(values["lr"]),
                   int(values["batch_size"]), bool(values["augment"]), source=source,
                   **private)


DP_FIELDS = ("dp_epsilon", "dp_delta", "max_grad_norm")


def as_recipe(recipe) -> TrainingRecipe:
    """A :class:`TrainingRecipe` from a recipe, a model name (the paper's recipe) or a dict of
    its fields."""
    if isinstance(recipe, TrainingRecipe):
        return recipe
    if isinstance(recipe, str):
        return TrainingRecipe(recipe)
    if isinstance(recipe, dict):
        return TrainingRecipe(**{"source": "given", **recipe})
    raise SftcError("a recipe is a model name, a dict of TrainingRecipe fields or a "
                    "TrainingRecipe")
