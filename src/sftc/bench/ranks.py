"""The benchmark's independent units spread over the ranks of a torchrun job.

Every unit of the protocol is a file when it is finished (a reference model in the cache, a
run's ``result.json``, a final evaluation's JSON), so ranks need no queue: after each phase's
barrier, rank 0 lists what is still missing, every rank takes the items at positions
``i % world == rank`` of that list and runs them as a single process on its own device, and
writes each result atomically into the shared output directory (or cache) as it finishes.

1. **The originals and oracles**: the original M and the oracle M_R of every seed (one unit each), then the
   per-seed record of their accuracies and logits (one unit per seed).
2. **Grid**: every (method, learning rate, seed) run.
3. **Final**: the per-example attack's reference models when the benchmark has attack columns
   (spread like the audit's, :meth:`sftc.bench.reference_pool.ReferencePool.get`), then JS, MIA
   (and the attack's figures) of every (Table-1 row, seed) at the kept setting; then rank 0 alone
   reads everything back and writes the tables.

A job that dies (one rank or all) leaves only whole files; running the same command again, with
any number of ranks, redoes only what is missing, exactly as a single process resumes. Only
rank 0 holds ``--out``'s lock (:meth:`sftc.bench.store.Store.open`): a second benchmark into the
same ``--out`` is refused by it, while the ranks of this job write their own units.
"""
from __future__ import annotations

from .. import distributed
from .cache import get_or_train, lookup
from .final import Final
from .progress import Progress
from .seed_models import ROLES


def run_spread(bench, progress: Progress) -> dict | None:
    """Run (or resume) every unit of ``bench`` over the job's ranks; the table on rank 0
    (None on the other ranks)."""
    references(bench, progress)
    grid(bench, progress)
    return final(bench, progress)


def _catch_up(bench, progress: Progress) -> None:
    """Mark the units other ranks finished (rank 0's display counts them too)."""
    for unit in bench.units():
        if unit.done and not progress.units[unit.key].done:
            progress.finish(unit.key, measured=False)


def _run_units(items, run, what: str, bench, progress: Progress) -> None:
    """Rank 0's list of ``items`` shared, this rank's share run, then wait for every rank."""
    for item in distributed.mine(distributed.share(items)):
        run(item)
    distributed.barrier(what)
    _catch_up(bench, progress)


def references(bench, progress: Progress) -> None:
    refs, split, store, seeds = bench.seed_models, bench.split, bench.store, bench.config.seeds

    def recorded(seed: int) -> bool:
        return store.read_result(store.reference_path(seed), refs.code) is not None

    missing = [(seed, role, subset) for seed in seeds if not recorded(seed)
               for role, subset, _ in ROLES
               if lookup(refs.cache_dir, refs.spec(subset, seed), split) is None]

    def train(item) -> None:
        seed, role, subset = item
        key = f"ref:{role}:{seed}"
        progress.start(key)
        get_or_train(refs.cache_dir, refs.spec(subset, seed), split, device=refs.device_name,
                     progress=False, log=refs.log)
        progress.finish(key)

    _run_units(missing, train, "training the reference models", bench, progress)
    records = [seed for seed in seeds if not recorded(seed)]
    _run_units(records, lambda seed: refs.get(seed), "recording the reference models", bench,
               progress)


def grid(bench, progress: Progress) -> None:
    g, c = bench.grid, bench.config
    pending = [(name, hp, lr, seed) for seed in c.seeds for name, hp in c.methods
               for lr in c.lrs if g.load(name, hp, lr, seed) is None]

    def run(item) -> None:
        name, hp, lr, seed = item
        g.run_unit(name, hp, lr, seed, bench.seed_models.get(seed, need_model=True), progress)

    _run_units(pending, run, "the grid's runs", bench, progress)
    for seed in c.seeds:
        bench.seed_models.get(seed).release()


class _ShareOfFinal(Final):
    """:class:`Final` that computes (and stores) only this rank's share of the (row, seed)
    evaluations, in the order :meth:`Final.table` visits them; the others are left to their
    ranks (the table it returns is thrown away)."""

    def __init__(self, final: Final):
        super().__init__(final.config, final.split, final.store, final.seed_models, final.attack)
        self.visited = 0

    def metrics(self, row, seed, setting, logits, base, progress):
        ours = self.visited % distributed.world() == distributed.rank()
        self.visited += 1
        if ours:
            return super().metrics(row, seed, setting, logits, base, progress)
        return {**base, "seed": seed}


def final(bench, progress: Progress) -> dict | None:
    results = bench.grid.run(progress)   # every run is finished: read back
    _ShareOfFinal(bench.final).table(results, progress)
    distributed.barrier("the final evaluations")
    _catch_up(bench, progress)
    if not distributed.is_main():
        return None
    return bench.final.table(results, progress)   # everything stored: read back
