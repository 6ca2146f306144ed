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


def load_into(model: nn.Module, path: str | Path, model_name: str = "the model") -> nn.Module:
    """Load ``path`` into ``model`` after checking that every name and shape matches."""
    state = load_state_dict(path)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        what = f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}"
        raise SftcError(f"checkpoint {path} is not a {model_name} ({what}); pass the --model the "
                        "checkpoint was trained with")
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise SftcError(f"checkpoint {path} does not fit {model_name}: {key} is "
                            f"{tuple(state[key].shape)} in the checkpoint and "
                            f"{tuple(tensor.shape)} in the model{_shape_hint(key, model)}")
    model.load_state_dict(state)
    return model


def _shape_hint(key: str, model: nn.Module) -> str:
    """Say what a mismatch of the first or last layer usually means."""
    names = [k for k, v in model.state_dict().items() if v.dim() > 1]
    if names and key == names[0]:
        return " (its input channels or first layer differ: another dataset or architecture?)"
    if names and key in (names[-1], names[-1].replace("weight", "bias")):
        return " (its number of classes differs: another dataset?)"
    return " (another architecture or variant?)"


def save_state_dict(model: nn.Module, path: str | Path) -> None:
    """Write ``model.state_dict()`` atomically (temp file + rename), on the CPU."""
    import io

    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())
