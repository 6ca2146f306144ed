"""The Table-1 protocol (section 5.5) as one resumable run: store, references, grid, final.

:mod:`sftc.report.benchmark` writes its data as tables, a figure and a report.

For each seed: the original model M and the retrained oracle M_R (from the reference cache,
:mod:`sftc.bench.cache`). For each method and learning rate: one run of ``max_epochs`` epochs at a
constant learning rate, evaluated after every epoch (:mod:`sftc.bench.grid`). Per method the kept
(learning rate, epoch) is the argmin of Eq. 5 + 6 + 7 averaged over seeds
(:mod:`sftc.bench.selection`); JS and MIA are computed for the kept settings only and the table
reports means and standard deviations over seeds (:mod:`sftc.bench.final`). Everything is
persisted in ``out`` as it finishes (:mod:`sftc.bench.store`), so an interrupted benchmark run
again with the same arguments redoes nothing finished. Under torchrun the units are spread over
the ranks (:mod:`sftc.bench.ranks`) and rank 0 writes the tables.
"""
from __future__ import annotations

from pathlib import Path

from .. import distributed
from .attack_columns import AttackColumns
from .config import BenchmarkConfig
from .final import Final
from .grid import Grid
from .progress import Progress, Unit
from .ranks import run_spread
from .session import Session


class Benchmark:
    """One benchmark in one output directory (see the module docstring)."""

    def __init__(self, config: BenchmarkConfig, out: str | Path, *, preset=None, **kwargs):
        self.session = Session(config, out, kind="benchmark", **kwargs)
        self.config = config
        self.preset = preset
        self.store, self.split, self.seed_models = (self.session.store, self.session.split,
                                                   self.session.seed_models)
        self.grid = Grid(config, self.split, self.store, self.seed_models,
                         device_name=self.session.device_name, progress=self.session.progress,
                         log=self.session.log)
        self.attack = AttackColumns(config, self.split, self.seed_models.cache_dir,
                                    device_name=self.session.device_name)
        self.final = Final(config, self.split, self.store, self.seed_models, self.attack)

    @property
    def out(self) -> Path:
        return self.store.out

    def units(self) -> list[Unit]:
        units = []
        for seed in self.config.seeds:
            units += self.seed_models.units(seed) + self.grid.units(seed)
        return units + self.final.units()

    def run(self) -> dict:
        """Run (or resume) every step, then write the tables, figure and report; returns the
        table data (``rows``, ``per_row``, ``selection_grid``, ``results``)."""
        from ..report.benchmark import write_benchmark

        def steps(progress: Progress) -> dict | None:
            if distributed.active():   # under torchrun: the units spread over the ranks
                return run_spread(self, progress)
            return self.final.table(self.grid.run(progress), progress)

        try:
            table = self.session.run(self.units(), steps, desc="benchmark")
            if distributed.is_main():
                write_benchmark(self.out, table, self.config.to_dict(), self.store.manifest,
                                self.split, self.preset)
        finally:
            self.store.close()    # --out is free for the next run only now
        return table


def run_benchmark(config: BenchmarkConfig, out: str | Path, **kwargs) -> dict:
    """Run (or resume) the Table-1 protocol into ``out`` and write its tables, figure and report.

    Keyword arguments: ``device``, ``cache_dir``, ``progress``, ``resume``, ``command``, ``split``
    (a prepared :class:`sftc.Split` instead of loading ``config.dataset``), ``log``, ``preset``
    (the :class:`~sftc.bench.presets.Preset` the config came from, named in the report).
    Returns ``{"rows": [...], ...}`` with one aggregated row per Table-1 row (under torchrun: on
    rank 0; None on the other ranks).
    """
    return Benchmark(config, out, **kwargs).run()
