"""The sensitivity study of section 5.6 (Figure 5): vary one of the learning rate, the KL
temperature τ or the confusion fraction c of SFTC with the others fixed; report forget accuracy,
test accuracy and MIA against the parameter, the oracle's accuracies as reference lines.

Reference models come from the same cache as :mod:`sftc.bench.protocol` (a sweep on the settings
of a finished benchmark trains nothing), and every point is persisted as it finishes::

    out/sweep.json                         configuration (checked on resume) and sessions
    out/references/seed-S.{json,pt}        M and M_R of seed S
    out/runs/PARAM-VALUE/seed-S.json       the point's metrics (written when it finishes)
    out/sensitivity.csv, sensitivity.png, sensitivity.json, report.md
"""
from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import DivergedError, SftcError
from ..io import atomic_write_json, atomic_write_text
from ..methods import create_method
from ..metrics.mia import ATTACKER_NAMES
from .evaluation import accuracies, accuracy_errors, costly_metrics, model_logits
from .progress import Progress, Unit
from .protocol import Benchmark, ReferenceConfig, _first_line, aggregate, session_machine
from .selection import selection_score

PARAMS = ("lr", "tau", "c")
#: The paper's ranges (section 5.6): learning rate 8e-5 ... 5e-3, τ in [0.5, 5] step 0.5, c in [0, 1].
DEFAULT_VALUES = {
    "lr": (8e-5, 9e-5) + tuple(m * 1e-4 for m in range(1, 10)) + tuple(m * 1e-3 for m in range(1, 6)),
    "tau": tuple(0.5 * i for i in range(1, 11)),
    "c": tuple(round(0.1 * i, 1) for i in range(0, 11)),
}
SWEEP_KEYS = ("acc_retain", "acc_forget", "acc_test", "acc_err_retrain", "acc_dis",
              "acc_err_original", "score", "js", "js_paper", "mia", "mia_attacker_acc",
              "unlearn_seconds")


@dataclass
class SweepConfig(ReferenceConfig):
    """Everything that determines a sweep's numbers (compared on resume): the shared reference
    settings plus the swept parameter, its values and the fixed ones."""

    param: str = "lr"
    values: tuple[float, ...] = ()
    lr: float = 1e-3
    tau: float = 1.0
    c: float = 0.0
    epochs: int = 2

    def validate(self) -> None:
        if self.param not in PARAMS:
            raise SftcError(f"unknown sweep parameter {self.param!r}; choose one of: lr, tau, c")
        self.validate_reference()
        if not self.values:
            self.values = DEFAULT_VALUES[self.param]
        self.values = tuple(float(v) for v in self.values)
        if len(set(self.values)) != len(self.values):
            raise SftcError(f"--values repeats a value: {list(self.values)}")
        if self.epochs < 1:
            raise SftcError(f"--epochs must be at least 1, got {self.epochs}")
        for value in self.values:
            point = self.point(value)
            if not (point["lr"] > 0 and math.isfinite(point["lr"])):
                raise SftcError(f"learning rates must be positive numbers, got {point['lr']!r}")
            create_method("sftc", tau=point["tau"], c=point["c"])   # checks τ > 0, c in [0, 1]

    def point(self, value: float) -> dict:
        p = {"lr": self.lr, "tau": self.tau, "c": self.c}
        p[self.param] = value
        return p

    def to_dict(self) -> dict:
        d = self.reference_dict()
        d["values"] = list(self.values)
        return d


def value_text(value: float) -> str:
    return f"{value:g}"


class Sweep(Benchmark):
    kind = "sweep"
    manifest_name = "sweep.json"

    def point_path(self, value: float, seed: int) -> Path:
        return self.out / "runs" / f"{self.config.param}-{value_text(value)}" / f"seed-{seed}.json"

    def load_point(self, value: float, seed: int) -> dict | None:
        path = self.point_path(value, seed)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def units(self) -> list[Unit]:
        from .cache import lookup

        c, split = self.config, self.split
        units = []
        for seed in c.seeds:
            ref_done = self.ref_path(seed).is_file()
            for role, subset, n in (("original", "train", len(split.train)),
                                    ("oracle", "retain", len(split.retain))):
                cached = ref_done or lookup(self.cache_dir, self.spec(subset, seed), split) is not None
                units.append(Unit(f"ref:{role}:{seed}", "train", f"train {role} seed {seed}",
                                  c.train_epochs * n, done=cached))
            for value in c.values:
                units.append(Unit(f"point:{value_text(value)}:{seed}", "point",
                                  f"{c.param}={value_text(value)} seed {seed}",
                                  c.epochs * len(split.train),
                                  done=self.load_point(value, seed) is not None))
        return units

    def run_point(self, value: float, seed: int, ref: dict) -> dict:
        from .. import api

        c = self.config
        point = self.point_for(value)
        members = self.members(seed)
        acc_o, acc_r = ref["acc"]["original"], ref["acc"]["oracle"]
        final: dict = {}

        def on_epoch_end(epoch, model, row):
            if epoch == c.epochs:
                final["logits"] = model_logits(model, self.split, members, self.device)
                final["seconds"] = row["seconds"]

        record = {"param": c.param, "value": value, "seed": seed, **point, "status": "ok",
                  "reason": None}
        try:
            api.unlearn(ref["original"], self.split, "sftc", epochs=c.epochs, lr=point["lr"],
                        batch_size=c.batch_size, seed=seed, device=self.device_name,
                        progress=self.progress_enabled, model_name=c.model,
                        on_epoch_end=on_epoch_end, tau=point["tau"], c=point["c"])
        except KeyboardInterrupt:
            raise
        except DivergedError as exc:
            record.update(status="diverged", reason=str(exc))
        except Exception as exc:  # recorded; the sweep goes on
            record.update(status="failed", reason=_first_line(exc))
        if record["status"] == "ok":
            logits = final["logits"]
            acc = accuracies(logits, self.split, members)
            record.update(acc, **accuracy_errors(acc, acc_o, acc_r))
            record["score"] = selection_score(record)
            record["unlearn_seconds"] = final["seconds"]
            record.update(costly_metrics(logits, ref["logits"]["original"], self.split, members,
                                         seed=seed, mia_iterations=c.mia_iterations,
                                         mia_features=c.mia_features, mia_folds=c.mia_folds,
                                         mia_attacker=c.mia_attacker))
        atomic_write_json(self.point_path(value, seed), record)
        return record

    def point_for(self, value: float) -> dict:
        return self.config.point(value)

    def run(self) -> dict:
        c = self.config
        started = time.perf_counter()
        manifest_path = self.out / self.manifest_name
        manifest = (json.loads(manifest_path.read_text()) if manifest_path.is_file()
                    else {"kind": "sftc sweep", "config": c.to_dict(), "sessions": []})
        from ..records import package_versions

        session = {"command": self.command, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                   "device": str(self.device), "machine": session_machine(),
                   "versions": package_versions(), "wall_seconds": None}
        manifest["sessions"].append(session)
        atomic_write_json(manifest_path, manifest)
        units = self.units()
        if self.resuming:
            self.log(f"resuming {self.out}: {sum(u.done for u in units)} of {len(units)} steps "
                     "already done")
        progress = Progress(units, enabled=self.progress_enabled, desc=f"sweep {c.param}")
        records = []
        try:
            for seed in c.seeds:
                pending = [v for v in c.values if self.load_point(v, seed) is None]
                ref = self.references(seed, need_model=bool(pending), progress=progress)
                for value in c.values:
                    record = self.load_point(value, seed)
                    if record is None:
                        key = f"point:{value_text(value)}:{seed}"
                        progress.start(key)
                        record = self.run_point(value, seed, ref)
                        progress.finish(key)
                        if record["status"] != "ok":
                            progress.write(f"{c.param}={value_text(value)} seed {seed}: "
                                           f"{record['status']}: {record['reason']}")
                    records.append(record)
                ref["original"] = None
        finally:
            progress.close()
        session["wall_seconds"] = time.perf_counter() - started
        atomic_write_json(manifest_path, manifest)
        summary = self.summarise(records)
        self.write_outputs(summary, manifest)
        return summary

    def summarise(self, records: list[dict]) -> dict:
        c = self.config
        points = []
        for value in c.values:
            group = [r for r in records if r["value"] == value]
            ok = [r for r in group if r["status"] == "ok"]
            point = {"value": value, "n_seeds": len(ok), **self.point_for(value)}
            if ok:
                point.update(aggregate(ok, SWEEP_KEYS))
            failed = [r for r in group if r["status"] != "ok"]
            if failed:
                point["status"] = "; ".join(f"seed {r['seed']}: {r['status']} ({r['reason']})"
                                            for r in failed)
            points.append(point)
        refs = {}
        for role in ("original", "oracle"):
            accs = [self.references(s, need_model=False)["acc"][role] for s in c.seeds]
            refs[role] = aggregate(accs, ("acc_retain", "acc_forget", "acc_test"))
        return {"param": c.param, "points": points, "references": refs, "records": records}

    def write_outputs(self, summary: dict, manifest: dict) -> None:
        from ..report.sensitivity import PARAM_LABELS, sensitivity_figure

        c = self.config
        out = self.out
        columns = ["value", "lr", "tau", "c", "n_seeds"]
        for key in SWEEP_KEYS:
            columns += [key, f"{key}_std"]
        columns.append("status")
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for p in summary["points"]:
            writer.writerow({k: ("" if p.get(k) is None else p.get(k)) for k in columns})
        atomic_write_text(out / "sensitivity.csv", buffer.getvalue())
        atomic_write_json(out / "sensitivity.json", {"config": c.to_dict(), **summary})
        ok_points = [p for p in summary["points"] if p.get("n_seeds")]
        title = (f"SFTC on {c.dataset} ({c.model}, {c.epochs} epochs, {len(c.seeds)} seed(s)): "
                 f"{PARAM_LABELS[c.param]}")
        sensitivity_figure(ok_points, c.param, summary["references"]["oracle"],
                           out / "sensitivity.png", title=title)
        atomic_write_text(out / "report.md", self.report(summary, manifest))

    def report(self, summary: dict, manifest: dict) -> str:
        c = self.config
        last = manifest["sessions"][-1]
        total = sum(s.get("wall_seconds") or 0.0 for s in manifest["sessions"])
        fixed = {k: v for k, v in {"lr": c.lr, "tau": c.tau, "c": c.c}.items() if k != c.param}
        ref_o, ref_r = summary["references"]["original"], summary["references"]["oracle"]

        def f(v, fmt="{:.4f}"):
            return "—" if v is None else fmt.format(v)

        lines = [f"# Sensitivity of SFTC to {c.param}", "", "```", last.get("command") or
                 "(Python API)", "```", "",
                 f"- dataset {c.dataset}" + (f" (training subset {c.train_subset})"
                                            if c.train_subset else "")
                 + f", image size {self.split.data.input_size}, forget `{self.split.forget_spec}` "
                 f"({len(self.split.forget)} samples); model "
                 f"{c.model} trained {c.train_epochs} epochs; seeds {', '.join(map(str, c.seeds))}",
                 f"- SFTC {c.epochs} epochs, fixed: " + ", ".join(f"{k} = {v:g}"
                                                                   for k, v in fixed.items()),
                 f"- MIA: {ATTACKER_NAMES[c.mia_attacker]} {c.mia_iterations} iterations, {c.mia_folds}-fold, "
                 f"{c.mia_features}",
                 f"- device {last.get('device')}; machine: "
                 + ", ".join(f"{k} {v}" for k, v in (last.get("machine") or {}).items()),
                 "- versions: " + ", ".join(f"{k} {v}" for k, v in (last.get("versions") or {}).items()),
                 f"- wall time: {f(last.get('wall_seconds'), '{:.0f}')} s this session, "
                 f"{total:.0f} s in all", "",
                 f"Original: forget {f(ref_o.get('acc_forget'))}, test {f(ref_o.get('acc_test'))}; "
                 f"oracle: forget {f(ref_r.get('acc_forget'))}, test {f(ref_r.get('acc_test'))}.",
                 "", "![sensitivity](sensitivity.png)", "",
                 f"| {c.param} | forget acc | test acc | MIA | JS | Eq.5+6+7 | seconds |",
                 "|---:|---:|---:|---:|---:|---:|---:|"]
        for p in summary["points"]:
            if not p.get("n_seeds"):
                lines.append(f"| {p['value']:g} | failed: {p.get('status')} | | | | | |")
                continue
            lines.append(f"| {p['value']:g} | {f(p.get('acc_forget'))} | {f(p.get('acc_test'))} | "
                         f"{f(p.get('mia'))} | {f(p.get('js'))} | {f(p.get('score'))} | "
                         f"{f(p.get('unlearn_seconds'), '{:.1f}')} |")
        return "\n".join(lines) + "\n"


def run_sweep(config: SweepConfig, out: str | Path, **kwargs) -> dict:
    """Run (or resume) a sensitivity sweep into ``out``; writes sensitivity.{csv,png,json} and
    report.md. Keyword arguments as for :func:`sftc.bench.run_benchmark`."""
    return Sweep(config, out, **kwargs).run()
