"""What every command writes beside its model: the run record (run.json)."""
from __future__ import annotations

import platform
import sys
import time
from importlib import metadata


def package_versions() -> dict:
    versions = {"python": sys.version.split()[0]}
    for name in ("sftc", "torch", "torchvision", "numpy", "scikit-learn", "catboost", "matplotlib"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine() -> dict:
    import torch

    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def run_record(command: str, config: dict, split=None, history=None, metrics: dict | None = None,
               **extra) -> dict:
    """The content of run.json: resolved configuration, versions, seeds, forget set, timings,
    per-epoch history, the engine's speed choices (``accel``) and metrics."""
    from .models import spec_file_sha256

    config = {**config, **spec_file_sha256(config.get("model"))} if isinstance(config, dict) \
        else config
    record = {"command": command, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "config": config, "versions": package_versions(), "machine": machine()}
    if split is not None:
        record["dataset"] = {"name": split.data.name, "sizes": split.sizes(),
                             "image_size": split.data.input_size, "num_classes": split.data.num_classes}
        record["forget"] = split.forget_summary()
    if history is not None:
        record["timings"] = {"seconds": history.seconds, "setup_seconds": history.setup_seconds}
        record["history"] = history.rows
        if getattr(history, "accel", None):   # the speed choices and how they were made
            record["accel"] = history.accel
    if metrics is not None:
        record["metrics"] = metrics
    record.update(extra)
    return record


def ranks_record(result) -> dict:
    """``{"data_parallel": ...}`` for a run spread over the ranks of a torchrun job (world size,
    backend), else nothing."""
    spread = (getattr(result.history, "accel", None) or {}).get("data_parallel")
    return {"data_parallel": spread} if spread else {}


def input_files(files: dict) -> dict:
    """``{flag: {"path", "sha256"}}`` of a command's input checkpoints (``{flag: path}``; those
    not given are left out): what run.json records of every file a run read a model from."""
    from .io import file_sha256

    return {flag: {"path": str(path), "sha256": file_sha256(path)}
            for flag, path in files.items() if path}


def architecture_facts(model) -> dict:
    """What ranks compare about the model they build (the class, the number of parameters and a
    SHA-256 of every tensor's name, shape and values): a model that differs per rank (a factory
    that depends on the machine or the rank) is named before any step."""
    import hashlib

    import torch

    names, values = hashlib.sha256(), hashlib.sha256()
    count = 0
    for key, tensor in model.state_dict().items():
        names.update(f"{key}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        values.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
                      .numpy().tobytes())
        count += tensor.numel()
    return {"class": type(model).__name__, "parameters": count, "shapes": names.hexdigest(),
            "weights": values.hexdigest()}
