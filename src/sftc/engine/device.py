"""Device selection and synchronised timing."""
from __future__ import annotations

import time

import torch

from ..errors import SftcError


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """``auto`` picks CUDA when available, then MPS, else CPU; an unavailable device is an error."""
    if isinstance(name, torch.device):
        return name
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SftcError(f"--device {name} asked for, but no CUDA GPU is available; use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise SftcError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stopwatch:
    """Wall-clock seconds, synchronised with the device so that queued GPU work is counted."""

    def __init__(self, device: torch.device):
        self.device = device
        self.total = 0.0
        self._start: float | None = None

    def __enter__(self) -> "Stopwatch":
        synchronize(self.device)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        synchronize(self.device)
        self.total += time.perf_counter() - self._start


def import_lazy_torch() -> None:
    """Import what PyTorch imports on a process's first optimizer (its compiler front end,
    ``torch._dynamo``: about 2.5 s on this project's CPU), so that the first run of a process
    is not billed for a one-off cost of the process (as the ``import torch`` itself is not)."""
    try:
        import torch._dynamo  # noqa: F401
    except Exception:  # noqa: BLE001 - a build without it: nothing to import ahead
        pass
