"""Models trained from scratch together, for the cache (:meth:`ModelCache.get_many
<sftc.bench.cache.ModelCache.get_many>`): the engine's batched path
(:mod:`sftc.engine.batched`) with the recipe :func:`sftc.api.train` would use, and the question
whether a recipe's models can be batched at all."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from ..data import Split
from ..models import create_model
from ..recipes import TrainingRecipe


def engine_recipe(recipe: TrainingRecipe, seed: int, device: str, accel=None):
    """The engine's recipe of a model trained from scratch, as :func:`sftc.api.train` makes it
    (the paper's Adam with cosine annealing)."""
    from .. import api
    from ..engine import Recipe
    from ..methods.supervised import Training

    return Recipe(epochs=recipe.epochs, lr=recipe.lr, batch_size=recipe.batch_size, seed=seed,
                  device=device, augment=recipe.augment, scheduler=Training.default_scheduler,
                  accel=api.as_accel(accel))


def fresh_model(recipe: TrainingRecipe, split: Split, seed: int) -> torch.nn.Module:
    """The model the single path starts from: ``create_model(..., seed=seed)``."""
    return create_model(recipe.model, in_channels=split.data.in_channels,
                        num_classes=split.data.num_classes, seed=seed)


def batch_refusal(recipe: TrainingRecipe, split: Split, seeds: list[int], device: str = "auto",
                  accel=None) -> str | None:
    """Why models of ``recipe`` cannot be trained batched on ``split`` (None: they can)."""
    from ..engine import batched

    if recipe.dp_epsilon is not None:
        return "trained with differential privacy (Opacus's per-sample gradients, one at a time)"

    seeds = list(seeds)[:2]
    models = [fresh_model(recipe, split, s) for s in seeds]
    return batched.batch_refusal(models, split, engine_recipe(recipe, seeds[0], device, accel))


def train_one(recipe: TrainingRecipe, subset: str, seed: int, split: Split, device: str,
              progress: bool = False, accel=None):
    """Train the model of ``recipe`` on ``subset`` with ``seed`` alone, as :func:`sftc.api.train`
    does (privately for a recipe with ``dp_epsilon``: :mod:`sftc.dp`)."""
    from dataclasses import asdict

    from .. import api
    from ..dp import privacy_of

    return api.train(split, recipe.model, epochs=recipe.epochs, lr=recipe.lr,
                     batch_size=recipe.batch_size, seed=seed, device=device,
                     augment=recipe.augment, subset=subset, progress=progress, accel=accel,
                     privacy=privacy_of(asdict(recipe)))


def train_group(recipe: TrainingRecipe, subset: str, seeds: Sequence[int], split: Split,
                device: str, accel=None) -> list[tuple]:
    """Train the models of ``recipe`` on ``subset`` (``train`` or ``retain``) with ``seeds`` as one
    batched computation; returns ``(model, history)`` per seed."""
    from .. import api
    from ..engine import batched
    from ..methods.supervised import TrainOnRetain, TrainOriginal

    models = [fresh_model(recipe, split, s) for s in seeds]
    api.check_model_fits(models[0], split, device)
    method = TrainOnRetain() if subset == "retain" else TrainOriginal()
    return batched.train_group(method, models, list(seeds), split,
                               engine_recipe(recipe, seeds[0], device, accel),
                               label="retrain" if subset == "retain" else "train")
