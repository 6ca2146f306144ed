"""The benchmark's grid: one persisted unlearning run per (method, learning rate, seed).

Each run lasts ``max_epochs`` epochs and is evaluated after every epoch (the model after epoch e is
that of an e-epoch run); it is persisted as it finishes, with the fingerprint of the code that made
it (:func:`sftc.codeprint.run_code`), so a resumed benchmark redoes no finished run, and a run whose
method (or the engine under it) changed since is run again.
"""
from __future__ import annotations

import time

from ..codeprint import run_code
from .config import BenchmarkConfig, method_key, method_label, number_text
from .evaluation import accuracies, accuracy_errors, model_logits
from .progress import Progress, Unit
from .seed_models import OriginalsAndOracles, SeedModels
from .selection import selection_score
from .store import Store
from .unlearning import attempt_unlearn

#: Results by method key, then by (learning rate, seed).
GridResults = dict[str, dict[tuple[float, int], dict]]


class Grid:
    def __init__(self, config: BenchmarkConfig, split, store: Store, seed_models: OriginalsAndOracles, *,
                 device_name: str, progress: bool = True, log=None):
        self.config = config
        self.split = split
        self.store = store
        self.seed_models = seed_models
        self.device_name = device_name
        self.progress_enabled = progress
        self.log = log
        #: the code of each method's runs, fixed when the benchmark starts
        self.code = {method_key(n, h): run_code(n, config.model) for n, h in config.methods}

    @staticmethod
    def unit_key(name: str, hparams: dict, lr: float, seed: int) -> str:
        return f"run:{method_key(name, hparams)}:{number_text(lr)}:{seed}"

    def units(self, seed: int) -> list[Unit]:
        c = self.config
        return [Unit(self.unit_key(name, hp, lr, seed), "run",
                     f"{method_label(name, hp)} lr={number_text(lr)} seed {seed}",
                     c.max_epochs * len(self.split.train),
                     done=self.load(name, hp, lr, seed) is not None)
                for name, hp in c.methods for lr in c.lrs]

    def load(self, name: str, hparams: dict, lr: float, seed: int) -> dict | None:
        """The finished run's result, or None (also when other code computed it)."""
        mkey = method_key(name, hparams)
        return self.store.read_result(self.store.run_dir(mkey, lr, seed) / "result.json",
                                      self.code[mkey])

    def run_unit(self, name: str, hp: dict, lr: float, seed: int, ref, progress) -> dict:
        """:meth:`run_one` as one unit of the display; a run that did not finish is reported."""
        unit = self.unit_key(name, hp, lr, seed)
        progress.start(unit)
        result = self.run_one(name, hp, lr, seed, ref)
        progress.finish(unit)
        if result["status"] != "ok":
            progress.write(f"{method_label(name, hp)} lr={number_text(lr)} seed {seed}: "
                           f"{result['status']}: {result['reason']}")
        return result

    def run_one(self, name: str, hparams: dict, lr: float, seed: int,
                ref: SeedModels) -> dict:
        """One run, evaluated after every epoch; its logits and result are stored (result last)."""
        c = self.config
        members = self.seed_models.members(seed)
        acc_o, acc_r = ref.acc["original"], ref.acc["oracle"]
        rows = [{"epoch": 0, "seconds": 0.0, **acc_o, **accuracy_errors(acc_o, acc_o, acc_r)}]
        rows[0]["score"] = selection_score(rows[0])
        logits_by_epoch: dict[int, dict] = {}

        def on_epoch_end(epoch, model, row):
            lg = model_logits(model, self.split, members, self.seed_models.device,
                              population=bool(c.attack_references))
            acc = accuracies(lg, self.split, members)
            entry = {"epoch": epoch, "seconds": row["seconds"], "loss": row["loss"], **acc,
                     **accuracy_errors(acc, acc_o, acc_r)}
            entry["score"] = selection_score(entry)
            rows.append(entry)
            logits_by_epoch[epoch] = lg

        started = time.perf_counter()
        status, reason = attempt_unlearn(ref, self.split, name, hparams, config=c, lr=lr,
                                         epochs=c.max_epochs, seed=seed, device=self.device_name,
                                         progress=self.progress_enabled,
                                         on_epoch_end=on_epoch_end, log=self.log)
        if status != "ok":
            reason = f"{reason} (after {len(rows) - 1} of {c.max_epochs} epochs)"
        result = {"method": name, "hparams": hparams, "lr": lr, "seed": seed, "status": status,
                  "reason": reason, "epochs_completed": len(rows) - 1, "rows": rows,
                  "wall_seconds": time.perf_counter() - started}
        run_dir = self.store.run_dir(method_key(name, hparams), lr, seed)
        self.store.save_logits(run_dir / "logits.pt", logits_by_epoch)
        self.store.write_result(run_dir / "result.json", result,   # last: marks the run finished
                                self.code[method_key(name, hparams)])
        return result

    def run(self, progress: Progress) -> GridResults:
        """Every run of the grid, loaded when finished before, else run now."""
        c = self.config
        results: GridResults = {method_key(n, h): {} for n, h in c.methods}
        for seed in c.seeds:
            pending = [(n, h, lr) for n, h in c.methods for lr in c.lrs
                       if self.load(n, h, lr, seed) is None]
            ref = self.seed_models.get(seed, need_model=bool(pending), progress=progress)
            acc_o, acc_r = ref.acc["original"], ref.acc["oracle"]
            progress.write(f"seed {seed}: the gap to close: forget accuracy "
                           f"{acc_o['acc_forget']:.4f} (original) against {acc_r['acc_forget']:.4f} (oracle); test "
                           f"{acc_o['acc_test']:.4f} against {acc_r['acc_test']:.4f}")
            for name, hp in c.methods:
                for lr in c.lrs:
                    result = self.load(name, hp, lr, seed)
                    if result is None:
                        result = self.run_unit(name, hp, lr, seed, ref, progress)
                    results[method_key(name, hp)][(lr, seed)] = result
            ref.release()
        return results
