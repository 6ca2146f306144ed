"""What decides a run's floating-point bits on this machine, beside its inputs and its code.

Two runs of the same command with the same seed give the same bits when everything here is
equal: the device and its kernels (device type and name, the CPU's vector instruction set that
PyTorch dispatches to), the torch version, the number of intra-op threads (a different count
splits reductions differently), the deterministic-algorithm flags, and the speed choices of the
engine (:mod:`sftc.engine.rule`; a rule, so equal whenever the rest is). A cache of trained
models keyed by the inputs and the code alone can hand one caller a model that another thread
count or machine computed: put :func:`numerics_identity` in the key.
"""
from __future__ import annotations

import platform
from functools import lru_cache

import torch

from .options import Accel
from .rule import RULE_VERSION


@lru_cache(maxsize=None)
def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``; elsewhere what :mod:`platform` says)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.cuda.get_device_name(index)
    return cpu_name()


def machine(device: torch.device | str = "cpu") -> dict:
    """The device and software whose kernels compute a run: device type and name, the CPU's
    dispatch level, torch's version and intra-op thread count (now)."""
    device = torch.device(device)
    out = {"device": device.type, "device_name": device_name(device),
           "cpu_capability": _cpu_capability(), "torch": torch.__version__,
           "threads": torch.get_num_threads()}
    if device.type == "cuda":
        out["cuda"] = torch.version.cuda
        out["cudnn"] = torch.backends.cudnn.version()
    return out


def numerics_identity(device: torch.device | str = "cpu", accel: Accel | None = None) -> dict:
    """Everything beside the inputs and the code that decides the bits of a run made now on
    ``device`` with the speed options ``accel`` (default: the rule): :func:`machine`, the
    deterministic-algorithm and TF32 flags, and the speed mode with the rule's version.

    A JSON-able dict of plain values; equal dicts mean the same bits for the same inputs and
    code (on CUDA only with ``torch.use_deterministic_algorithms(True)``, which it records). In
    measure mode (``accel.mode == "measure"``) the choices come from a measurement kept in a
    decision file: ``accel`` names the directory, and equal identities no longer guarantee equal
    bits across machines or caches. Call it where the run is made (the thread count is read
    now: a pool that lowers torch's threads around its work changes it)."""
    accel = accel or Accel()
    out = machine(device)
    out["deterministic_algorithms"] = torch.are_deterministic_algorithms_enabled()
    out["float32_matmul_precision"] = torch.get_float32_matmul_precision()
    if torch.device(device).type == "cuda":
        out["cudnn_deterministic"] = torch.backends.cudnn.deterministic
        out["cudnn_benchmark"] = torch.backends.cudnn.benchmark
        out["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
        out["cuda_matmul_allow_tf32"] = torch.backends.cuda.matmul.allow_tf32
    options = {k: v for k, v in vars(accel).items() if k != "decisions_dir"}
    out["accel"] = {**options, "rule": RULE_VERSION}
    if accel.measuring:
        out["accel"]["decisions_dir"] = accel.decisions_dir
    return out


def _cpu_capability() -> str:
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return "unknown"
