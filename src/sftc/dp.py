"""Originals trained with differential privacy (DP-SGD with Opacus, ``pip install "sftc[dp]"``).

``sftc train --dp-epsilon E [--dp-delta D] [--max-grad-norm C]`` trains with Opacus's
``PrivacyEngine.make_private_with_epsilon``: per-sample gradients clipped to norm C, Gaussian
noise whose multiplier Opacus calibrates so that the whole run (``--epochs`` passes of Poisson
sampled batches of expected size ``--batch-size``) spends at most ε at δ under its accountant
(``rdp``, Rényi DP). The architecture is the named one made trainable with DP by Opacus's
``ModuleValidator.fix`` (BatchNorm replaced by GroupNorm; in-place activations made out of place,
which changes no weight): the model spec ``dp:NAME``, recorded
as the model, so that every later command builds the same one. The optimiser is the paper's Adam
with cosine annealing, on a private (DPOptimizer) step; there is no augmentation. What the run
spent (ε at δ, the noise multiplier, the clipping norm, the accountant, the sample rate and the
steps) is returned by :func:`train_private` and recorded in ``run.json`` (``dp``).
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from .errors import SftcError

DP_HINT = 'pip install "sftc[dp]"'
PREFIX = "dp:"
#: Rényi DP (Opacus's "rdp"): its prv accountant is tighter but took 15 s against 0.6 s here
#: to calibrate the noise of one 5-epoch run (each reference model of a private audit pays it)
ACCOUNTANT = "rdp"
MAX_GRAD_NORM = 1.0


@dataclass(frozen=True)
class PrivacyRecipe:
    """The asked privacy: ε, δ (None: 1 / (10 N) for N training samples), the clipping norm."""

    epsilon: float
    delta: float | None = None
    max_grad_norm: float = MAX_GRAD_NORM

    def __post_init__(self):
        for name in ("epsilon", "max_grad_norm"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
                raise SftcError(f"--{name.replace('_', '-').replace('epsilon', 'dp-epsilon')} "
                                f"must be a positive number, got {value!r}")
        if self.delta is not None and not 0 < self.delta < 1:
            raise SftcError(f"--dp-delta must lie in (0, 1), got {self.delta!r}")

    def delta_for(self, n: int) -> float:
        """δ of a run on ``n`` samples; a δ of 1/n or more (it would allow publishing a sample
        outright) is refused."""
        delta = self.delta if self.delta is not None else 1.0 / (10 * n)
        if delta >= 1.0 / n:
            raise SftcError(f"--dp-delta {delta:g} is at least 1/N = {1.0 / n:.3g} for these {n} "
                            "training samples (a mechanism that publishes one sample whole meets "
                            f"it); give a smaller δ, e.g. {1.0 / (10 * n):.2g}")
        return delta


def require_opacus():
    try:
        import opacus
    except ImportError:
        raise SftcError(f"--dp-epsilon trains with Opacus, an optional extra: {DP_HINT}") from None
    return opacus


def dp_name(name: str) -> str:
    """The model spec of ``name`` made trainable with DP (``dp:NAME``)."""
    return name if name.lower().startswith(PREFIX) else f"{PREFIX}{name}"


def fixed_builder(inner: str, build_inner):
    """The builder of ``dp:NAME``: ``build_inner`` (NAME's builder, resolved by
    :func:`sftc.models.model_builder`), passed through Opacus's ``ModuleValidator.fix``."""

    def build(in_channels: int, num_classes: int) -> nn.Module:
        require_opacus()
        from opacus.validators import ModuleValidator

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ModuleValidator.fix(build_inner(in_channels, num_classes))
        for module in model.modules():          # Opacus's hooks cannot see in-place activations
            if getattr(module, "inplace", False) is True:
                module.inplace = False
        problems = ModuleValidator.validate(model, strict=False)
        if problems:
            raise SftcError(f"model {PREFIX}{inner} cannot be trained with DP-SGD even after "
                            f"Opacus's fix: {str(problems[0]).splitlines()[0][:160]}")
        return model

    build.factory = getattr(build_inner, "factory", build_inner)
    return build


def _loader(split, subset: str, batch_size: int, seed: int):
    from torch.utils.data import DataLoader, TensorDataset

    index = split.indices(subset).cpu()
    labels = split.data.labels.cpu()[index]
    return DataLoader(TensorDataset(index, labels), batch_size=batch_size, shuffle=True,
                      generator=torch.Generator().manual_seed(seed))


def train_private(split, model: nn.Module, privacy: PrivacyRecipe, *, epochs: int, lr: float,
                  batch_size: int, seed: int, device, subset: str = "train",
                  progress: bool = False):
    """Train ``model`` (a ``dp:`` architecture) on ``split``'s ``subset`` with DP-SGD; returns
    (the trained module, the per-epoch rows, seconds, what was spent)."""
    require_opacus()
    from opacus import PrivacyEngine

    n = len(split.indices(subset))
    delta = privacy.delta_for(n)
    loader = _loader(split, subset, batch_size, seed)
    start = time.perf_counter()
    model = model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")    # Opacus's notes on secure RNG and on full backward hooks
        engine = PrivacyEngine(accountant=ACCOUNTANT)
        private, optimizer, loader = engine.make_private_with_epsilon(
            module=model, optimizer=optimizer, data_loader=loader, target_epsilon=privacy.epsilon,
            target_delta=delta, epochs=epochs, max_grad_norm=privacy.max_grad_norm,
            noise_generator=torch.Generator(device=device).manual_seed(seed))
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        rows, steps = [], 0
        for epoch in range(1, epochs + 1):
            total, seen = 0.0, 0
            for index, y in loader:
                if len(index) == 0:       # Poisson sampling may draw an empty batch
                    continue
                x, _ = split.data.batch(index, device)
                loss = nn.functional.cross_entropy(private(x), y.to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss) * len(index)
                seen += len(index)
                steps += 1
            scheduler.step()
            rows.append({"epoch": epoch, "loss": total / max(seen, 1),
                         "lr": scheduler.get_last_lr()[0], "steps": steps})
            if progress:
                print(f"dp epoch {epoch}/{epochs}: loss {rows[-1]['loss']:.4f}", flush=True)
    seconds = time.perf_counter() - start
    spent = {"epsilon": float(engine.get_epsilon(delta)), "asked_epsilon": privacy.epsilon,
             "delta": delta, "max_grad_norm": privacy.max_grad_norm,
             "noise_multiplier": float(optimizer.noise_multiplier), "accountant": ACCOUNTANT,
             "sample_rate": float(1 / len(loader)), "steps": steps, "epochs": epochs,
             "library": f"opacus {_version()}"}
    return _unwrapped(private, model), rows, seconds, spent


def _unwrapped(private: nn.Module, model: nn.Module) -> nn.Module:
    """The trained module without Opacus's hooks and per-sample buffers (its weights copied
    into ``model``'s architecture afresh), so that it trains and infers as any model."""
    import copy

    if hasattr(private, "remove_hooks"):
        private.remove_hooks()
    trained = private._module if hasattr(private, "_module") else private
    state = {k: v.detach().clone() for k, v in trained.state_dict().items()}
    for p in trained.parameters():
        for name in ("grad_sample", "_forward_counter", "_current_grad_sample", "summed_grad"):
            if hasattr(p, name):
                delattr(p, name)
        p.grad = None
    clean = copy.deepcopy(trained)
    clean.load_state_dict(state)
    return clean.eval()


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("opacus")
    except metadata.PackageNotFoundError:
        return "?"


def original_privacy(record: dict | None) -> dict:
    """``{"original_private": ...}`` for the record of a model whose original was trained with
    DP (its own ``dp`` block, or the one it inherited), else nothing."""
    spent = (record or {}).get("dp") or (record or {}).get("original_private")
    return {"original_private": spent} if spent else {}


def privacy_of(recipe_fields: dict) -> PrivacyRecipe | None:
    """The :class:`PrivacyRecipe` of a recipe's or a config's ``dp_epsilon`` / ``dp_delta`` /
    ``max_grad_norm`` (None without ``dp_epsilon``)."""
    if recipe_fields.get("dp_epsilon") is None:
        return None
    return PrivacyRecipe(float(recipe_fields["dp_epsilon"]), recipe_fields.get("dp_delta"),
                         float(recipe_fields.get("max_grad_norm") or MAX_GRAD_NORM))

