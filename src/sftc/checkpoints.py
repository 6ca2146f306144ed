"""Checkpoints: safe loading (weights_only), architecture checks, atomic writes."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .errors import SftcError
from .io import atomic_write_bytes


def load_state_dict(path: str | Path) -> dict:
    """Load a state_dict with ``weights_only=True``: a checkpoint from elsewhere is untrusted."""
    path = Path(path)
    if not path.is_file():
        raise SftcError(f"checkpoint {path} does not exist; train one with 'sftc train' first")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or unsafe file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SftcError(f"cannot load checkpoint {path}: {first}") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise SftcError(f"checkpoint {path} is not a state_dict of tensors")
    return obj


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
            raise SftcError(f"checkpoint {path} does not fit {model_name}: {key} has shape "
                            f"{tuple(state[key].shape)}, expected {tuple(tensor.shape)} (another "
                            "class count or input channels?)")
    model.load_state_dict(state)
    return model


def save_state_dict(model: nn.Module, path: str | Path) -> None:
    """Write ``model.state_dict()`` atomically (temp file + rename), on the CPU."""
    import io

    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())
