"""One run spread over the ranks of a job: DistributedDataParallel on the engine's batch plan.

A run with N ranks and global batch B computes the updates one process computes with batch B,
up to the order of float sums, for every method, without any method knowing about it:

* **The plan is global.** Every rank makes the same epoch plan (same seeds, same generator) and
  loads every planned batch whole (the same augmentation draws as one process); SFTC's mixed,
  pseudo-labelled batches, SCRUB's max-then-min passes and NegGrad+'s retain/forget pairs are
  batches of that plan, so they stay as they are.
* **Rows are sharded.** Rank r forwards rows ``[lo, hi)`` of each batch: contiguous slices in
  rank order whose sizes differ by at most one (no padding; a slice may be empty). B must be a
  multiple of N so that full batches split evenly; the trailing batch (its one-sample remainder
  folded in, as in one process) and NegGrad+'s pairs may split unevenly.
* **The loss is the global batch's.** The logits of every rank are gathered, and each rank
  evaluates the method's loss on the whole batch, its own rows carrying gradients. The loss
  differentiated on rank r is therefore exactly the global loss, whose gradient reaches the
  model through rank r's rows only: SFTC's CE over the batch's retain rows and KL over all rows,
  NegGrad+'s two means, SCRUB's means keep their global normalisers with no per-method code.
  The gradient of the global loss is the *sum* of the ranks' gradients, so DDP's all-reduce is
  given a summing communication hook instead of its default average.
* **Batch norm** uses the global batch's statistics: :mod:`sftc.engine.syncbn` (PyTorch's
  SyncBatchNorm on GPUs, its CPU counterpart on Gloo). The running statistics are updated
  identically on every rank.
* **Random draws** made inside the model's forward (dropout) come from a stream of the rank's
  own; every other draw (plan, augmentation, generator, loss) is made on every rank alike.
* **Frozen models' outputs** (teachers, computed once) and tracked accuracies are computed by
  each rank on its slice of the samples and all-gathered: computed once, shared by all.
* **Speed choices** are the rule's (:mod:`sftc.engine.rule`), the same on every rank; measure
  mode gives way to the rule (a timing could decide differently on each rank). Forced choices
  (``Accel(... "on")``) apply on every rank.

A run is data-parallel only when its caller says so: ``sftc.engine.run(..., parallel=job)``
(``sftc.train(..., data_parallel=True)`` and ``sftc.unlearn(...)`` pass the current job).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch
import torch.distributed as dist
from torch import nn

from ..errors import SftcError
from . import syncbn
from .process_group import Job, error_text, is_comm_failure


def split_sizes(n: int, world: int) -> list[int]:
    """Rows per rank of an ``n``-row batch: ``n // world``, one more for the first
    ``n % world`` ranks."""
    return [n // world + (1 if r < n % world else 0) for r in range(world)]


def row_range(n: int, world: int, rank: int) -> tuple[int, int]:
    """The rows ``[lo, hi)`` of an ``n``-row batch that rank ``rank`` takes."""
    sizes = split_sizes(n, world)
    lo = sum(sizes[:rank])
    return lo, lo + sizes[rank]


def check_batch_size(batch_size: int, world: int) -> None:
    """A global batch that does not split evenly over the ranks is refused in one line."""
    if batch_size % world:
        below = batch_size - batch_size % world
        above = below + world
        options = f"{below} or {above}" if below else f"{above}"
        raise SftcError(f"--batch-size {batch_size} does not split over the {world} processes of "
                        f"this job (each takes batch-size / {world} rows of every batch); use a "
                        f"multiple of {world}, e.g. {options}, or another --nproc-per-node")


def _sum_gradients(group, bucket):  # no annotations: DDP checks them against its own types
    """DDP communication hook: the sum of the ranks' gradients (not their mean)."""
    work = dist.all_reduce(bucket.buffer(), group=group, async_op=True)
    return work.get_future().then(lambda fut: fut.value()[0])


class RankStream:
    """The random stream of this rank's model forwards (dropout); the shared stream is put back
    after each forward, so draws outside the forward stay identical on every rank."""

    def __init__(self, seed: int, rank: int, device: torch.device):
        self.index = (device.index if device.index is not None else torch.cuda.current_device()) \
            if device.type == "cuda" else None
        with torch.random.fork_rng(devices=[] if self.index is None else [self.index]):
            torch.manual_seed((int(seed) * 1_000_003 + rank + 1) % (2 ** 63))
            self.state = self._get()

    def _get(self):
        cuda = torch.cuda.get_rng_state(self.index) if self.index is not None else None
        return torch.get_rng_state(), cuda

    def _set(self, state) -> None:
        torch.set_rng_state(state[0])
        if self.index is not None:
            torch.cuda.set_rng_state(state[1], self.index)

    @contextmanager
    def __call__(self) -> Iterator[None]:
        shared = self._get()
        self._set(self.state)
        try:
            yield
        finally:
            self.state = self._get()
            self._set(shared)


class DataParallel:
    """The data parallelism of one run (see the module docstring)."""

    def __init__(self, job: Job, device: torch.device, seed: int):
        self.job = job
        self.rank, self.world = job.rank, job.world
        self.group = job.group
        self.device = device
        self.stream = RankStream(seed, self.rank, device)
        self.ddp: nn.Module | None = None
        self.swapped: dict[nn.Module, nn.Module] = {}
        self.converted = 0

    @classmethod
    def for_run(cls, job: Job | None, batch_size: int, device: torch.device,
                seed: int) -> "DataParallel | None":
        """The data parallelism of a run over ``job``'s ranks (None without a job, or with one
        rank)."""
        if job is None or job.world < 2:
            return None
        check_batch_size(batch_size, job.world)
        if (job.backend == "nccl") != (device.type == "cuda"):
            raise SftcError(f"this job's processes communicate with {job.backend}, but the run "
                            f"asks for device {device}; give the job and the run the same device")
        return cls(job, device, seed)

    def rows(self, n: int) -> tuple[int, int]:
        return row_range(n, self.world, self.rank)

    # -- the model ----------------------------------------------------------------------------
    def wrap(self, model: nn.Module, frozen: list[nn.Module]) -> None:
        """Batch norm over the global batch, then DDP with summed gradients. ``frozen`` (the
        layers the run keeps in eval mode) is updated in place to the converted layers."""
        from torch.nn.parallel import DistributedDataParallel

        self.swapped = syncbn.convert(model, self.job.stats, cpu=self.device.type != "cuda")
        self.converted = len(self.swapped)
        back = {old: new for new, old in self.swapped.items()}
        frozen[:] = [back.get(m, m) for m in frozen]
        ids = [self.device.index if self.device.index is not None
               else torch.cuda.current_device()] if self.device.type == "cuda" else None
        try:
            self.ddp = DistributedDataParallel(model, device_ids=ids, process_group=self.group)
        except RuntimeError as exc:
            if is_comm_failure(exc):
                raise
            raise SftcError(f"the model cannot be spread over the ranks (DDP): "
                            f"{error_text(exc)}") from None
        self.ddp.register_comm_hook(self.group, _sum_gradients)

    def unwrap(self, model: nn.Module) -> None:
        """The model as it was (plain batch norm, no DDP), holding the run's weights."""
        syncbn.restore(model, self.swapped)
        self.swapped, self.ddp = {}, None

    # -- one step -----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the whole batch ``x``: this rank's rows from its forward (with gradients),
        the others' gathered (constants)."""
        lo, hi = self.rows(len(x))
        with self.stream():
            local = self.ddp(x[lo:hi])
        parts = self.gather(local.detach(), len(x))
        parts[self.rank] = local
        return torch.cat(parts)

    def gather(self, local: torch.Tensor, n: int) -> list[torch.Tensor]:
        """Every rank's rows of an ``n``-row result, in rank order (``local``: this rank's)."""
        sizes = split_sizes(n, self.world)
        most = max(sizes)
        padded = local
        if len(local) < most:
            padded = torch.cat([local, local.new_zeros((most - len(local), *local.shape[1:]))])
        buffers = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(buffers, padded.contiguous(), group=self.group)
        return [b[:s] for b, s in zip(buffers, sizes)]

    def predict(self, index: torch.Tensor,
                logits_of: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """``logits_of(index)`` computed in slices, one per rank, and shared with every rank."""
        lo, hi = self.rows(len(index))
        return torch.cat(self.gather(logits_of(index[lo:hi]).contiguous(), len(index)))

    def record(self) -> dict:
        return {"world_size": self.world, "backend": self.job.backend,
                "sync_batch_norm_layers": self.converted,
                "gradients": "summed over ranks (each rank's loss is the global batch's)"}
