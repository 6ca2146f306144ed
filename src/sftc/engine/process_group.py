"""The process group of a job that ``torchrun`` started: PyTorch's own ``torch.distributed``.

``torchrun --nproc-per-node N -m sftc COMMAND ...`` starts N copies of the command (on each of
``--nnodes`` machines) with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and a rendezvous address in
their environment. :func:`job` joins them into one process group for the block's life:

* **the groups**: NCCL when the ranks run on GPUs (each on ``cuda:LOCAL_RANK``), Gloo on CPUs; a
  second, Gloo group carries coordination (small Python objects, waits), a third the batch-norm
  statistics of a data-parallel run;
* **who this rank is** (:func:`rank`, :func:`world`, :func:`is_main`) and **coordination**:
  :func:`exchange` (every rank's object, in rank order), :func:`share` and :func:`mine` (shares
  of independent work), :func:`barrier` (waits between phases);
* **failures of a collective** (:class:`LostContact`, :func:`is_comm_failure`).

A data-parallel run is asked for explicitly: ``sftc.engine.run(..., parallel=job)`` (the API's
``data_parallel=True``), see :mod:`sftc.engine.data_parallel`. What a command does as one rank
(the agreement at start, rank 0 writing, one exit status) is the command line's:
:mod:`sftc.cli.ranks`. No queue, scheduler or RPC of our own: ``torch.distributed`` only.

Timeouts: a collective inside a run gives up after ``SFTC_DIST_TIMEOUT`` seconds (default 1800);
a rank waiting for the others between phases, or for rank 0's outputs, after
``SFTC_DIST_PHASE_TIMEOUT`` (default 86400: phases can legitimately take hours). Both are read
when the job starts. A rank that dies is noticed sooner: its connections close, and ``torchrun``
stops the other ranks of its job.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterator, Sequence, TypeVar

from ..errors import SftcError

T = TypeVar("T")

TIMEOUT_ENV = "SFTC_DIST_TIMEOUT"
PHASE_TIMEOUT_ENV = "SFTC_DIST_PHASE_TIMEOUT"
DEFAULT_TIMEOUT = 1800
DEFAULT_PHASE_TIMEOUT = 86400


class LostContact(SftcError):
    """A collective failed: another rank died, or could no longer be reached."""


@dataclass(eq=False)
class Job:
    """The process group of this job and what this rank knows about it."""

    rank: int
    world: int
    local_rank: int
    backend: str                 # "nccl" (GPUs) or "gloo" (CPUs)
    device: str                  # "cuda:LOCAL_RANK" or "cpu"
    group: object                # the default group: DDP's gradients, a run's gathers
    coord: object                # Gloo: agreement, shares, barriers, the end (long timeout)
    stats: object                # batch-norm statistics of SyncBatchNorm (apart from DDP's)
    created: bool                # this job initialised the process group (and destroys it)


_job: Job | None = None


# -- the environment torchrun sets ---------------------------------------------------------------

def env_world() -> int:
    """``WORLD_SIZE`` as torchrun sets it (1 when not launched by torchrun)."""
    try:
        return max(int(os.environ.get("WORLD_SIZE", "1")), 1)
    except ValueError:
        raise SftcError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a whole number; launch "
                        "with torchrun, which sets it") from None


def env_rank() -> int:
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def launched() -> bool:
    """Whether this process is one of several that torchrun (or srun) started as one job."""
    return env_world() > 1


def seconds_from_env(name: str, default: int) -> float:
    text = os.environ.get(name)
    if not text:
        return float(default)
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise SftcError(f"{name}={text!r} must be a positive number of seconds")
    return value


# -- the job ---------------------------------------------------------------------------------------

def current() -> Job | None:
    return _job


def active() -> bool:
    """Inside :func:`job` with more than one rank."""
    return _job is not None and _job.world > 1


def rank() -> int:
    return _job.rank if _job is not None else 0


def world() -> int:
    return _job.world if _job is not None else 1


def is_main() -> bool:
    """Rank 0, or a single process: the one that writes outputs and prints."""
    return rank() == 0


def _device_for(device: str | None, local_rank: int) -> str:
    import torch

    name = (device or "auto").lower()
    if name == "cpu" or name == "mps":
        return "cpu"
    if name == "auto" and not torch.cuda.is_available():
        return "cpu"
    if not torch.cuda.is_available():
        raise SftcError(f"--device {device} asked for, but no CUDA GPU is available; use "
                        "--device cpu")
    if name not in ("auto", "cuda"):
        raise SftcError(f"--device {device}: under torchrun every rank uses its own GPU, "
                        "cuda:LOCAL_RANK; pass --device cuda (or auto), or --device cpu")
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise SftcError(f"torchrun started local rank {local_rank}, but this machine has {count} "
                        f"GPU(s); use --nproc-per-node {count} (one process per GPU), or "
                        "--device cpu")
    return f"cuda:{local_rank}"


@contextmanager
def job(device: str | None = "auto") -> Iterator[Job]:
    """Join (or create) the process group of the job torchrun started, for the block's life.

    ``device``: the command's ``--device``; on GPUs every rank takes ``cuda:LOCAL_RANK`` and the
    group uses NCCL, otherwise Gloo. A process group initialised by the caller is used as it is
    (and left alive at the end). One rank alone (``WORLD_SIZE`` 1) is a job of one.
    """
    global _job
    import torch
    import torch.distributed as dist

    if _job is not None:
        raise RuntimeError("sftc.engine.process_group.job() is already active")
    created = not (dist.is_available() and dist.is_initialized())
    local_rank = int(os.environ.get("LOCAL_RANK", "0") or 0)
    where = _device_for(device, local_rank)
    backend = "nccl" if where.startswith("cuda") else "gloo"
    timeout = timedelta(seconds=seconds_from_env(TIMEOUT_ENV, DEFAULT_TIMEOUT))
    phase = timedelta(seconds=seconds_from_env(PHASE_TIMEOUT_ENV, DEFAULT_PHASE_TIMEOUT))
    if where.startswith("cuda"):
        torch.cuda.set_device(local_rank)
    if created:
        if not dist.is_available():
            raise SftcError("this PyTorch build has no torch.distributed; run without torchrun")
        missing = [v for v in ("MASTER_ADDR", "MASTER_PORT", "RANK") if not os.environ.get(v)]
        if missing:
            raise SftcError(f"WORLD_SIZE is set but {', '.join(missing)} is not: start the "
                            "processes with torchrun (or srun torchrun), which sets them all")
        try:
            dist.init_process_group(backend, timeout=timeout)
        except (RuntimeError, ValueError) as exc:
            raise SftcError(f"cannot join the torchrun job ({backend} at "
                            f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}): "
                            f"{_first_line(exc)}") from None
    else:
        backend = dist.get_backend()
    try:
        coord = dist.new_group(backend="gloo", timeout=phase)
        stats = dist.new_group(backend=backend, timeout=timeout)
        _job = Job(dist.get_rank(), dist.get_world_size(), local_rank, backend, where,
                   dist.group.WORLD, coord, stats, created)
        yield _job
    finally:
        _job = None
        if created and dist.is_initialized():
            dist.destroy_process_group()


# -- coordination ---------------------------------------------------------------------------------

def exchange(payload: object) -> list:
    """Every rank's ``payload``, in rank order, over the coordination group."""
    import torch.distributed as dist

    gathered: list = [None] * _job.world
    try:
        dist.all_gather_object(gathered, payload, group=_job.coord)
    except RuntimeError as exc:
        raise LostContact(lost_contact_text(exc)) from None
    return gathered


def share(items: Sequence[T]) -> list[T]:
    """Rank 0's ``items`` on every rank (so that all ranks split the same list)."""
    if not active():
        return list(items)
    import torch.distributed as dist

    box = [list(items) if _job.rank == 0 else None]
    try:
        dist.broadcast_object_list(box, src=0, group=_job.coord)
    except RuntimeError as exc:
        raise LostContact(lost_contact_text(exc)) from None
    return box[0]


def mine(items: Sequence[T]) -> list[T]:
    """This rank's share of ``items``: those at positions ``i`` with ``i % world == rank``."""
    return list(items[rank()::world()])


def barrier(what: str) -> None:
    """Wait until every rank got here (``what`` names the phase, for the error message)."""
    if not active():
        return
    import torch.distributed as dist

    try:
        dist.barrier(group=_job.coord)
    except RuntimeError as exc:
        raise LostContact(f"while waiting for the other ranks to finish {what}: "
                          f"{lost_contact_text(exc)}") from None



# -- failures --------------------------------------------------------------------------------

def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def error_text(exc: BaseException) -> str:
    return _first_line(exc) if isinstance(exc, SftcError) else \
        f"{type(exc).__name__}: {_first_line(exc)}"


def is_comm_failure(exc: BaseException) -> bool:
    """A failure of a collective: a peer died or cannot be reached, or a wait timed out."""
    import torch.distributed as dist

    if isinstance(exc, LostContact):
        return True
    if isinstance(exc, getattr(dist, "DistError", ())):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        mark in text for mark in ("gloo", "nccl", "connection reset", "connection closed",
                                  "broken pipe", "timed out", "watchdog"))


def lost_contact_text(exc: BaseException) -> str:
    detail = _first_line(exc)
    if "] " in detail and detail.startswith("["):   # Gloo prefixes its source file
        detail = detail.split("] ", 1)[1]
    detail = detail.split(". ", 1)[0]              # and appends advice of its own
    return (f"lost contact with the other processes of this job ({detail[:160]}): another rank "
            "stopped (its own message, or torchrun's log, says why) or cannot be reached; nothing "
            "half-written was kept")
