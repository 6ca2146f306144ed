"""The sensitivity study of section 5.6 (Figure 5) as one resumable run of points.

One parameter varies with the others fixed: the learning rate, or any hyperparameter of the method
(the paper's: SFTC's learning rate, KL temperature τ or confusion fraction c): one evaluated run
per (value, seed), aggregated over seeds, written by :mod:`sftc.report.sensitivity`. Each point is
stored with the fingerprint of the code that computed it; a point whose method changed since is
run again.

Reference models come from the same cache as the benchmark's (a sweep on the settings of a
finished benchmark trains nothing); the store (:mod:`sftc.bench.store`) keeps every point as it
finishes.
"""
from __future__ import annotations

from pathlib import Path

from ..codeprint import run_code
from ..report.sensitivity import SWEEP_KEYS
from ..methods import method_class
from .config import DEFAULT_VALUES, PARAMS, SweepConfig, number_text
from .evaluation import accuracies, accuracy_errors, costly_metrics, model_logits
from .progress import Progress, Unit
from .seed_models import SeedModels
from .selection import selection_score
from .session import Session
from .stats import aggregate
from .unlearning import attempt_unlearn

__all__ = ["DEFAULT_VALUES", "PARAMS", "SWEEP_KEYS", "Sweep", "SweepConfig", "run_sweep"]


class Sweep:
    """One sweep in one output directory (see the module docstring)."""

    def __init__(self, config: SweepConfig, out: str | Path, **kwargs):
        self.session = Session(config, out, kind="sweep", **kwargs)
        self.config = config
        self.store, self.split, self.seed_models = (self.session.store, self.session.split,
                                                   self.session.seed_models)
        self.code = run_code(config.method, config.model)

    @property
    def out(self) -> Path:
        return self.store.out

    def point_key(self, value: float, seed: int) -> str:
        return f"point:{number_text(value)}:{seed}"

    def load_point(self, value: float, seed: int) -> dict | None:
        return self.store.read_result(self.store.point_path(self.config.param, value, seed),
                                      self.code)

    def units(self) -> list[Unit]:
        c = self.config
        units = []
        for seed in c.seeds:
            units += self.seed_models.units(seed)
            units += [Unit(self.point_key(value, seed), "point",
                           f"{c.param}={number_text(value)} seed {seed}",
                           c.epochs * len(self.split.train),
                           done=self.load_point(value, seed) is not None) for value in c.values]
        return units

    def run_point(self, value: float, seed: int, ref: SeedModels) -> dict:
        """One run at ``value``, evaluated with every metric after its last epoch."""
        c = self.config
        point = c.point(value)
        members = self.seed_models.members(seed)
        final: dict = {}

        def on_epoch_end(epoch, model, row):
            if epoch == c.epochs:
                final["logits"] = model_logits(model, self.split, members, self.session.device)
                final["seconds"] = row["seconds"]

        status, reason = attempt_unlearn(ref, self.split, c.method, c.hparams_at(value), config=c,
                                         lr=point["lr"], epochs=c.epochs, seed=seed,
                                         device=self.session.device_name,
                                         progress=self.session.progress,
                                         on_epoch_end=on_epoch_end, log=self.session.log)
        record = {"param": c.param, "value": value, "seed": seed, **point, "status": status,
                  "reason": reason}
        if status == "ok":
            logits = final["logits"]
            acc = accuracies(logits, self.split, members)
            record.update(acc, **accuracy_errors(acc, ref.acc["original"], ref.acc["oracle"]))
            record["score"] = selection_score(record)
            record["unlearn_seconds"] = final["seconds"]
            record.update(costly_metrics(logits, ref.logits["original"], self.split, members,
                                         seed=seed, mia_iterations=c.mia_iterations,
                                         mia_features=c.mia_features, mia_folds=c.mia_folds,
                                         mia_attacker=c.mia_attacker))
        self.store.write_result(self.store.point_path(c.param, value, seed), record, self.code)
        return record

    def run(self) -> dict:
        """Run (or resume) every point, then write the sensitivity outputs; returns the summary."""
        from ..report.sensitivity import write_sweep

        c = self.config
        try:
            summary = self.summarise(self.session.run(self.units(), self.run_points,
                                                      desc=f"sweep {c.param}"))
            write_sweep(self.out, summary, c.to_dict(), self.store.manifest, self.split)
        finally:
            self.store.close()    # --out is free for the next run only now
        return summary

    def run_points(self, progress: Progress) -> list[dict]:
        """Every point's record, loaded when finished before, else run now."""
        c = self.config
        records = []
        for seed in c.seeds:
            pending = [v for v in c.values if self.load_point(v, seed) is None]
            ref = self.seed_models.get(seed, need_model=bool(pending), progress=progress)
            for value in c.values:
                record = self.load_point(value, seed)
                if record is None:
                    progress.start(self.point_key(value, seed))
                    record = self.run_point(value, seed, ref)
                    progress.finish(self.point_key(value, seed))
                    if record["status"] != "ok":
                        progress.write(f"{c.param}={number_text(value)} seed {seed}: "
                                       f"{record['status']}: {record['reason']}")
                records.append(record)
            ref.release()
        return records

    def summarise(self, records: list[dict]) -> dict:
        """Per value: the means and spreads over seeds (and what failed); the references' means."""
        c = self.config
        points = []
        for value in c.values:
            group = [r for r in records if r["value"] == value]
            ok = [r for r in group if r["status"] == "ok"]
            point = {"value": value, "n_seeds": len(ok), **c.point(value)}
            if ok:
                point.update(aggregate(ok, SWEEP_KEYS))
            failed = [r for r in group if r["status"] != "ok"]
            if failed:
                point["status"] = "; ".join(f"seed {r['seed']}: {r['status']} ({r['reason']})"
                                            for r in failed)
            points.append(point)
        refs = {}
        for role in ("original", "oracle"):
            accs = [self.seed_models.get(s).acc[role] for s in c.seeds]
            refs[role] = aggregate(accs, ("acc_retain", "acc_forget", "acc_test"))
        fixed = {k: v for k, v in {"lr": c.lr, **c.fixed()}.items() if k != c.param}
        return {"param": c.param, "method": c.method,
                "label": method_class(c.method).label or c.method, "fixed": fixed,
                "points": points, "references": refs, "records": records}


def run_sweep(config: SweepConfig, out: str | Path, **kwargs) -> dict:
    """Run (or resume) a sensitivity sweep into ``out``; writes sensitivity.{csv,png,json} and
    report.md. Keyword arguments as for :func:`sftc.bench.run_benchmark` (without ``preset``)."""
    return Sweep(config, out, **kwargs).run()
