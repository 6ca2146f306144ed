"""Checkpoints: safe loading (weights_only), architecture and finiteness checks, atomic writes."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .errors import SftcError
from .io import atomic_write_bytes


def load_state_dict(path: str | Path) -> dict:
    """Load a state_dict with ``weights_only=True``: a checkpoint from elsewhere is untrusted.

    Every problem is one line naming the file: missing, a directory, not a PyTorch file, pickled
    objects besides tensors (refused: loading them could run code), or non-finite weights.
    """
    path = Path(path)
    if path.is_dir():
        inside = path / "model.pt"
        hint = f"; did you mean {inside}?" if inside.is_file() else ""
        raise SftcError(f"checkpoint {path} is a directory, not a model file{hint}")
    if not path.is_file():
        raise SftcError(f"checkpoint {path} does not exist; train one with 'sftc train' first")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or unsafe file
        raise SftcError(f"cannot load checkpoint {path}: {_load_failure(exc)}") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor)
                                                       for v in obj.values()):
        raise SftcError(f"checkpoint {path} is not a state_dict of tensors; save one with "
                        "torch.save(model.state_dict(), path)")
    check_finite(obj.items(), f"checkpoint {path}")
    return obj


def _load_failure(exc: Exception) -> str:
    """Why torch.load failed, without torch's advice to load the file unsafely."""
    text = str(exc)
    if "Unsupported operand" in text or "invalid load key" in text:   # not a pickle at all
        return "the file is not a PyTorch checkpoint (it does not hold saved tensors)"
    if "weights_only" in text or "Unsupported global" in text or "WeightsUnpickler" in text:
        return ("it holds pickled Python objects besides tensors, and sftc loads weights only "
                "(loading such a file can run code); save a plain state_dict with "
                "torch.save(model.state_dict(), path)")
    if isinstance(exc, (EOFError, RuntimeError)) and ("zip" in text.lower()
                                                      or "EOF" in text or not text):
        return "the file is truncated or is not a PyTorch checkpoint"
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    return first


def check_finite(named_tensors, what: str) -> None:
    """Refuse weights or buffers that hold NaN or infinity (a diverged training run's output)."""
    for name, tensor in named_tensors:
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            kind = "NaN" if bool(torch.isnan(tensor).any()) else "infinite values"
            raise SftcError(f"{what} has {kind} in {name}: it cannot be unlearned or evaluated "
                            "(it probably comes from a training run that diverged)")


OWN_MODEL = "--model module.path:callable for your own architecture"


def load_into(model: nn.Module, path: str | Path, model_name: str = "the model") -> nn.Module:
    """Load ``path`` into ``model`` after checking that every name and shape matches.

    A mismatch is one line naming the first tensor that differs (both shapes) and what the
    difference means: other input channels or classes (another dataset), a first layer of another
    shape (a variant of the architecture, e.g. a 3x3 first convolution), or another architecture.
    """
    state = load_state_dict(path)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        what = f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}"
        raise SftcError(f"checkpoint {path} is not a {model_name} ({what}): another architecture; "
                        f"pass the --model it was trained with, or {OWN_MODEL}")
    for key, tensor in expected.items():
        theirs, ours = tuple(state[key].shape), tuple(tensor.shape)
        if theirs != ours:
            raise SftcError(f"checkpoint {path} does not fit {model_name}: {key} is {theirs} in "
                            f"the checkpoint and {ours} in the model "
                            f"({shape_hint(key, theirs, ours, model)})")
    check_dtypes(state, expected, path)
    model.load_state_dict(state)
    return model


def check_dtypes(state: dict, expected: dict, path) -> None:
    """Refuse a checkpoint whose tensors would change kind when copied into the model: integer
    or boolean weights where the model has floating point ones (load_state_dict would cast them
    silently: weights rounded to whole numbers, a model at chance), or floating point values in
    an integer buffer. Float precisions (float64, float16 into float32) are cast as PyTorch does."""
    for key, tensor in expected.items():
        theirs = state[key]
        if tensor.is_floating_point() == theirs.is_floating_point() \
                and tensor.is_complex() == theirs.is_complex():
            continue
        raise SftcError(f"checkpoint {path} holds {key} as {str(theirs.dtype).replace('torch.', '')}"
                        f" where the model has {str(tensor.dtype).replace('torch.', '')}: its "
                        "weights were converted (e.g. by .long() or .int()) and cannot be loaded "
                        "faithfully; save the model's own state_dict, in floating point")


def shape_hint(key: str, theirs: tuple, ours: tuple, model: nn.Module) -> str:
    """What a shape mismatch of ``key`` means, judged from where the tensor sits and which of its
    dimensions differ (never a guess that the shapes contradict)."""
    weights = [k for k, v in model.state_dict().items() if v.dim() > 1]
    differ = [i for i, (a, b) in enumerate(zip(theirs, ours)) if a != b] \
        if len(theirs) == len(ours) else None
    variant = f"a variant of the architecture: pass the --model it was trained with, or {OWN_MODEL}"
    if weights and key == weights[0] and differ is not None:
        if differ == [1]:
            return (f"its number of input channels differs: {theirs[1]} in the checkpoint, "
                    f"{ours[1]} in this data: another dataset?")
        layer = "convolution" if isinstance(_owner(model, key), nn.modules.conv._ConvNd) \
            else "layer"
        if differ and min(differ) >= 2:
            kernel = lambda shape: "x".join(str(v) for v in shape[2:])  # noqa: E731
            return (f"the first {layer} differs: a {kernel(theirs)} kernel in the checkpoint, "
                    f"{kernel(ours)} in the model; {variant}")
        return f"the first {layer} differs; {variant}"
    if weights and key in (weights[-1], weights[-1].rsplit(".", 1)[0] + ".bias") \
            and differ == [0]:
        return (f"its number of classes differs: {theirs[0]} in the checkpoint, {ours[0]} in this "
                "data: another dataset?")
    return f"another architecture or {variant}"


def _owner(model: nn.Module, key: str) -> nn.Module | None:
    try:
        return model.get_submodule(key.rsplit(".", 1)[0]) if "." in key else model
    except AttributeError:
        return None


def save_state_dict(model: nn.Module, path: str | Path) -> None:
    """Write ``model.state_dict()`` atomically (temp file + rename), on the CPU."""
    import io

    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())
