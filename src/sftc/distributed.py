"""One job over several processes: PyTorch's own ``torch.distributed``, as ``torchrun`` starts it.

``torchrun --nproc-per-node N -m sftc COMMAND ...`` starts N copies of the command (on each of
``--nnodes`` machines) with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and a rendezvous address in
their environment. :func:`job` joins them into one process group and gives every rank what it
needs to act as one program:

* **the process group**: NCCL when the ranks run on GPUs (each on ``cuda:LOCAL_RANK``), Gloo on
  CPUs; a second, Gloo group carries the coordination below (small Python objects, waits);
* **agreement at start** (:func:`agree`): every rank states what it is about to work on (the
  arguments, SHA-256 digests of the data, the forget set and every input file, the software
  versions) and all of them compare; a rank that failed before that point sends its error
  instead. Any difference or failure stops every rank with the same status, and rank 0 names it
  in one line;
* **rank 0 writes** (:func:`output_directory`): only rank 0 takes ``--out``'s lock and writes
  (atomically, as a single process does); the others never touch it;
* **shares of independent work** (:func:`share`, :func:`mine`) and **waits between phases**
  (:func:`barrier`), for the benchmark's and the audit's units;
* **the end** (:func:`conclude`): every rank waits for the others and exits with one status.

Data parallelism inside one run (DDP) is opt-in: runs made inside :func:`data_parallel` are
spread over the ranks (:mod:`sftc.engine.data_parallel`); anything else runs as a single process
on each rank. No queue, scheduler or RPC of our own: ``torch.distributed`` collectives only.

Timeouts: a collective inside a run gives up after ``SFTC_DIST_TIMEOUT`` seconds (default 1800);
a rank waiting for the others between phases, or for rank 0's outputs, after
``SFTC_DIST_PHASE_TIMEOUT`` (default 86400: phases can legitimately take hours). A rank that dies
is noticed sooner: its connections close, and ``torchrun`` stops the other ranks of its job.
"""
from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Iterator, Sequence, TypeVar

from .errors import SftcError
from .io import file_sha256

T = TypeVar("T")

TIMEOUT_ENV = "SFTC_DIST_TIMEOUT"
PHASE_TIMEOUT_ENV = "SFTC_DIST_PHASE_TIMEOUT"
DEFAULT_TIMEOUT = 1800
DEFAULT_PHASE_TIMEOUT = 86400


class PeerFailed(SftcError):
    """Another rank failed (or disagreed) before the work started; rank 0 reports it."""


class LostContact(SftcError):
    """A collective failed: another rank died, or could no longer be reached."""


@dataclass
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
    exchanged: bool = False      # the start-up agreement has been exchanged
    data_parallel: int = 0       # depth of data_parallel() blocks
    facts: dict = field(default_factory=dict)


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
        raise RuntimeError("sftc.distributed.job() is already active")
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


@contextmanager
def data_parallel() -> Iterator[None]:
    """Runs of the engine made inside this block are one data-parallel run over every rank of
    the job (DDP; :mod:`sftc.engine.data_parallel`); every rank must make the same calls. Outside
    a job (or with one rank) it changes nothing."""
    if not active():
        yield
        return
    _job.data_parallel += 1
    try:
        yield
    finally:
        _job.data_parallel -= 1


def data_parallel_active() -> bool:
    return active() and _job.data_parallel > 0


# -- agreement at start ----------------------------------------------------------------------------

def _software() -> dict:
    """The versions, and a SHA-256 of sftc's own source files (two checkouts of one version that
    differ are told apart)."""
    import torch

    from . import __version__
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return {"sftc": __version__, "sftc source": h.hexdigest(), "torch": torch.__version__}


HINTS = {
    "arguments": "start every rank with the same command line",
    "software": "install the same sftc (the same code) and torch on every machine",
    "data": "give every rank the same data (--dataset, --data-dir, --split-seed, --image-size)",
    "forget set": "give every rank the same --forget (and --seed)",
    "output": "give every rank the same --out on a shared file system",
    "cache": "give every rank the same --cache-dir (or SFTC_CACHE_DIR) on a shared file system",
    "model": "give every rank the same model code (--model, --plugin) and checkpoint",
}


def _exchange(payload: dict) -> list[dict]:
    import torch.distributed as dist

    gathered: list = [None] * _job.world
    try:
        dist.all_gather_object(gathered, payload, group=_job.coord)
    except RuntimeError as exc:
        raise LostContact(lost_contact_text(exc)) from None
    return gathered


def agree(**facts) -> None:
    """Compare what every rank is about to work on, once per job; a no-op for a single process.

    Each keyword is one fact, a JSON-able value (``forget_set=...`` is named "forget set"), and
    ``files={flag: path}`` adds each file's SHA-256; the software versions are always compared. A
    rank that failed before this point (:func:`report_failure`) makes every rank stop, and so
    does any fact that differs between ranks: rank 0 raises a one-line :class:`SftcError` naming
    it, the other ranks a :class:`PeerFailed` (which the command line does not print).
    """
    if not active() or _job.exchanged:
        return
    files = facts.pop("files", None) or {}
    named = {key.replace("_", " "): value for key, value in facts.items()}
    named["software"] = _software()
    for flag, path in files.items():
        if path:
            named[f"{flag} {path}"] = file_sha256(path)
    _job.exchanged = True
    payloads = _exchange({"stage": "start", "facts": json.loads(json.dumps(named, default=str))})
    _judge(payloads)
    _job.facts = named


def report_failure(exc: BaseException) -> None:
    """This rank failed before the agreement: tell the others (they stop too). Idempotent; a
    no-op outside a job or once the agreement was exchanged."""
    if not active() or _job.exchanged or isinstance(exc, LostContact):
        return
    _job.exchanged = True
    try:
        _exchange({"stage": "start", "error": error_text(exc), "code": exit_code(exc)})
    except LostContact:
        pass


@contextmanager
def setup_phase() -> Iterator[None]:
    """Wrap the work before :func:`agree`: a failure inside is reported to the other ranks."""
    try:
        yield
    except BaseException as exc:
        report_failure(exc)
        raise


def _judge(payloads: list[dict]) -> None:
    for r, p in enumerate(payloads):
        if p.get("stage") != "start":
            raise _stop(f"rank {r} finished without starting the work the others started; "
                        "start every rank with the same command line")
        if "error" in p:
            text = p["error"] if r == _job.rank or _job.rank != 0 else f"rank {r}: {p['error']}"
            raise _stop(text)
    mine_ = payloads[0]["facts"]
    for r, p in enumerate(payloads[1:], 1):
        theirs = p["facts"]
        for key in list(mine_) + [k for k in theirs if k not in mine_]:
            if mine_.get(key) != theirs.get(key):
                raise _stop(f"the ranks of this job disagree on the {key}: "
                            f"{_difference(mine_.get(key), theirs.get(key), r)}; "
                            f"{_hint(key)}")


def _hint(key: str) -> str:
    if key.startswith("--"):   # an input file
        return "give every rank the same file (one shared file system, or identical copies)"
    return HINTS.get(key, "give every rank the same input")


def _difference(ours, theirs, r: int) -> str:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        keys = [k for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k)]
        return ", ".join(f"{k}: {_short(ours.get(k))} on rank 0, {_short(theirs.get(k))} on "
                         f"rank {r}" for k in keys[:3])
    return f"{_short(ours)} on rank 0, {_short(theirs)} on rank {r}"


def _short(value) -> str:
    text = json.dumps(value, default=str)
    if isinstance(value, str) and len(value) == 64:   # a SHA-256
        return f"SHA-256 {value[:12]}…"
    return text if len(text) <= 60 else text[:57] + "…"


def _stop(text: str) -> SftcError:
    return SftcError(text) if _job.rank == 0 else PeerFailed(text)


# -- shares of independent work, waits, the end ------------------------------------------------------

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


def conclude(code: int) -> int:
    """Every rank waits for the others to finish and all return the same exit status (the
    first non-zero one by rank)."""
    if not active():
        return code
    payloads = _exchange({"stage": "end", "code": int(code)})
    codes = [int(p.get("code", 1)) for p in payloads]
    return next((c for c in codes if c), 0)


@contextmanager
def output_directory(out, overwrite: bool = False, inputs=(), what: str = "--out",
                     notify=None) -> Iterator[Path | None]:
    """:func:`sftc.io.output_directory` on rank 0 (lock, checks, temporary folder, atomic
    replace); ``None`` on the other ranks, which write nothing."""
    from .io import output_directory as single

    if is_main():
        with single(out, overwrite, inputs=inputs, what=what, notify=notify) as tmp:
            yield tmp
    else:
        yield None


# -- errors ----------------------------------------------------------------------------------------

def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def error_text(exc: BaseException) -> str:
    return _first_line(exc) if isinstance(exc, SftcError) else \
        f"{type(exc).__name__}: {_first_line(exc)}"


def exit_code(exc: BaseException) -> int:
    if isinstance(exc, SftcError):
        return 2
    if isinstance(exc, KeyboardInterrupt):
        return 130
    return 1


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
