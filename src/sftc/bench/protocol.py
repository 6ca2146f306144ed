"""The protocol of Table 1 (paper, section 5.5), resumable.

For each seed: the original model M and the retrained oracle M_R (from the reference cache, see
:mod:`sftc.bench.cache`). For each method and learning rate of the grid: one unlearning run of
``max_epochs`` epochs with a constant learning rate, evaluated after every epoch (the model after
epoch e of that run is the model of an e-epoch run). Per method the kept (learning rate, epoch) is
the argmin of Eq. 5 + 6 + 7 averaged over seeds (:mod:`sftc.bench.selection`); JS and MIA are
computed for the kept settings only; the table reports means and standard deviations over seeds.

Everything is persisted under ``out`` as it finishes (atomic writes), so an interrupted benchmark
run again with the same arguments redoes nothing finished::

    out/benchmark.json                          the configuration (checked on resume)
    out/references/seed-S.json, seed-S.pt       M and M_R of seed S: accuracies, logits, times
    out/runs/METHOD/lr-LR/seed-S/result.json    per-epoch accuracies and errors (written last)
    out/runs/METHOD/lr-LR/seed-S/logits.pt      per-epoch logits on forget / test / MIA members
    out/final/ROW/...seed-S.json                JS and MIA at the kept setting
    out/table1.{md,csv,json,tex}, convergence.png, report.md, selection.csv
"""
from __future__ import annotations

import io
import json
import math
import statistics
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..data import dataset_info, load_split
from ..engine import resolve_device
from ..errors import DivergedError, SftcError
from ..io import atomic_write_bytes, atomic_write_json
from ..methods import create_method, method_class
from ..metrics.mia import ATTACKERS
from ..models import canonical_model_name
from .cache import TrainSpec, default_cache_dir, get_or_train, lookup
from .evaluation import (accuracies, accuracy_errors, costly_metrics, is_number, member_sample,
                         model_logits)
from .presets import methods_for
from .progress import Progress, Unit
from .selection import Setting, candidate_scores, select_setting, selection_score

MANIFEST = "benchmark.json"
NUMERIC_KEYS = ("acc_err_retrain", "acc_dis", "acc_err_original", "js", "js_paper", "mia",
                "mia_attacker_acc", "acc_retain", "acc_forget", "acc_test", "unlearn_seconds",
                "retrain_seconds", "time_ratio", "score")


@dataclass
class ReferenceConfig:
    """What the benchmark and the sweep share: the data, the reference models' recipe, the seeds
    and the attacker (all compared on resume)."""

    dataset: str = "digits"
    model: str = "small-cnn"
    train_epochs: int = 30
    train_lr: float = 1e-3
    seeds: tuple[int, ...] = (0,)
    batch_size: int = 64
    image_size: int | None = None
    train_subset: int | None = None
    forget: str | None = None
    forget_seed: int = 0
    split_seed: int = 0
    data_dir: str | None = None
    augment: bool = False
    mia_iterations: int = 1000
    mia_features: str = "logits"
    mia_attacker: str = "catboost"
    mia_folds: int = 5

    def validate_reference(self) -> None:
        dataset_info(self.dataset)
        self.model = canonical_model_name(self.model)
        self.seeds = tuple(int(s) for s in self.seeds)
        if not self.seeds:
            raise SftcError("no seeds given; pass --seeds 0,1,... (at least one)")
        if len(set(self.seeds)) != len(self.seeds):
            raise SftcError(f"--seeds repeats a seed: {list(self.seeds)}")
        if self.train_subset is not None and self.train_subset < 2:
            raise SftcError(f"--train-subset must be at least 2 images, got {self.train_subset}")
        if self.train_epochs < 1:
            raise SftcError(f"--train-epochs must be at least 1, got {self.train_epochs}")
        if self.batch_size < 1:
            raise SftcError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.mia_iterations < 1:
            raise SftcError(f"--mia-iterations must be at least 1, got {self.mia_iterations}")
        if self.mia_attacker not in ATTACKERS:
            raise SftcError(f"--mia-attacker must be one of {', '.join(ATTACKERS)}, "
                            f"got {self.mia_attacker!r}")
        if self.mia_features not in ("logits", "softmax"):
            raise SftcError(f"--mia-features must be logits or softmax, got {self.mia_features!r}")

    def reference_dict(self) -> dict:
        d = asdict(self)
        if d["mia_attacker"] == "catboost":  # the default: absent, so older outputs still resume
            del d["mia_attacker"]
        d["seeds"] = list(self.seeds)
        return d


@dataclass
class BenchmarkConfig(ReferenceConfig):
    """Everything that determines a benchmark's numbers (compared on resume)."""

    lrs: tuple[float, ...] = (1e-3,)
    max_epochs: int = 4
    methods: tuple[tuple[str, dict], ...] = field(default_factory=lambda: methods_for("small-cnn"))
    js: str = "textbook"

    def validate(self) -> None:
        self.validate_reference()
        self.lrs = tuple(float(v) for v in self.lrs)
        if not self.lrs:
            raise SftcError("the learning-rate grid is empty; pass --lrs with at least one value")
        bad = [v for v in self.lrs if not (v > 0 and math.isfinite(v))]
        if bad:
            raise SftcError(f"learning rates must be positive numbers, got {bad[0]!r} in --lrs")
        if len(set(self.lrs)) != len(self.lrs):
            raise SftcError(f"--lrs repeats a value: {list(self.lrs)}")
        if self.max_epochs < 1:
            raise SftcError(f"--max-epochs must be at least 1, got {self.max_epochs}")
        if self.js not in ("textbook", "paper"):
            raise SftcError(f"--js must be textbook or paper, got {self.js!r}")
        if not self.methods:
            raise SftcError("no methods given; pass --methods (see 'sftc methods')")
        methods = []
        for name, hparams in self.methods:
            cls = method_class(name)
            if cls.fresh_start:
                raise SftcError(f"{cls.name!r} starts from a fresh model: it is the RT reference "
                                "row of every benchmark; leave it out of --methods")
            create_method(cls.name, **hparams)          # rejects unknown or invalid hparams
            methods.append((cls.name, dict(hparams)))
        keys = [method_key(n, h) for n, h in methods]
        if len(set(keys)) != len(keys):
            raise SftcError(f"--methods lists a method twice: {', '.join(keys)}")
        self.methods = tuple(methods)

    def to_dict(self) -> dict:
        d = self.reference_dict()
        d["lrs"] = list(self.lrs)
        d["methods"] = [{"name": n, "hparams": dict(h)} for n, h in self.methods]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "BenchmarkConfig":
        d = dict(d)
        d["seeds"] = tuple(d["seeds"])
        d["lrs"] = tuple(d["lrs"])
        d["methods"] = tuple((m["name"], dict(m["hparams"])) for m in d["methods"])
        return cls(**d)


def make_split(config) -> "Split":
    """The benchmark's split: the dataset, optionally a stratified subset of its training images
    (``train_subset``: the same share of every class, drawn with ``split_seed``), and the forget
    set drawn with ``forget_seed`` (one forget set for every seed, as in the paper)."""
    from ..data import Split, load_dataset

    if not getattr(config, "train_subset", None):
        return load_split(config.dataset, forget=config.forget, data_dir=config.data_dir,
                          image_size=config.image_size, seed=config.forget_seed,
                          split_seed=config.split_seed)
    loaded = load_dataset(config.dataset, data_dir=config.data_dir, image_size=config.image_size,
                          split_seed=config.split_seed)
    spec = (config.forget or getattr(loaded, "default_forget", None)
            or dataset_info(config.dataset).default_forget)
    if not isinstance(spec, str) or not spec.startswith(("random:", "classes:")):
        raise SftcError(f"--train-subset needs a forget set drawn from the subset (random:... or "
                        f"classes:...), not {spec if isinstance(spec, str) else 'a fixed index set'}"
                        "; drop --train-subset or change --forget")
    train = loaded.train
    if config.train_subset < len(train):
        labels = loaded.data.labels[train]
        gen = torch.Generator().manual_seed(config.split_seed)
        order = torch.randperm(len(train), generator=gen)
        share = config.train_subset / len(train)
        keep = []
        for c in range(loaded.data.num_classes):
            members = order[labels[order] == c]
            keep.append(members[:max(1, round(share * len(members)))])
        train = torch.sort(train[torch.cat(keep)]).values
    return Split.create(loaded.data, train, loaded.val, loaded.test, spec, seed=config.forget_seed)


def method_key(name: str, hparams: dict) -> str:
    """A file-system-safe key: ``sftc``, ``cf-k_k-1``, ``sftc_c-0.5_tau-2``."""
    parts = [name.replace("+", "plus")]
    parts += [f"{k}-{v:g}" if isinstance(v, float) else f"{k}-{v}" for k, v in sorted(hparams.items())]
    return "_".join(parts)


def method_label(name: str, hparams: dict) -> str:
    """The Table-1 row label (``CF-5`` for cf-k with k = 5)."""
    return create_method(name, **hparams).label or name


def lr_text(lr: float) -> str:
    return f"{lr:g}"


def describe_difference(stored: dict, current: dict) -> str:
    diffs = []
    for key in sorted(set(stored) | set(current)):
        if stored.get(key) != current.get(key):
            diffs.append(f"{key}: {json.dumps(stored.get(key))} there, "
                         f"{json.dumps(current.get(key))} now")
    return "; ".join(diffs)


def prepare_output(out: Path, config: BenchmarkConfig, resume: bool, kind: str = "benchmark",
                   manifest: str = MANIFEST) -> bool:
    """Create ``out`` or check that it holds the same benchmark; True when resuming."""
    path = out / manifest
    if out.exists() and not out.is_dir():
        raise SftcError(f"--out {out} exists and is not a directory; choose another path")
    if path.is_file():
        try:
            stored = json.loads(path.read_text())["config"]
        except (OSError, json.JSONDecodeError, KeyError):
            raise SftcError(f"{path} is unreadable; remove it or choose a new --out") from None
        current = json.loads(json.dumps(config.to_dict()))
        if stored != current:
            raise SftcError(f"--out {out} holds a {kind} with different arguments, refusing to mix "
                            f"results ({describe_difference(stored, current)}); rerun with the "
                            "same arguments or choose a new --out")
        return True
    if resume:
        raise SftcError(f"nothing to resume: {out} holds no {manifest}; drop --resume to start")
    if out.is_dir() and any(p for p in out.iterdir() if not p.name.startswith(".")):
        raise SftcError(f"--out {out} already holds files that are not a {kind}; choose a new "
                        "directory")
    return False


def session_machine() -> dict:
    """The machine as :func:`sftc.records.machine` describes it, plus the CPU count and the thread
    settings that decide CPU speed on a shared machine."""
    import os

    from ..records import machine

    info = machine()
    info["cpu_count"] = os.cpu_count()
    info["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS")
    commit = code_commit()
    if commit:
        info["sftc_commit"] = commit
    return info


def code_commit() -> str | None:
    """The git commit of the sftc source in use (``+dirty`` with uncommitted changes), if any."""
    import subprocess

    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, text=True,
                              capture_output=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=here.parent,
                               text=True, capture_output=True, timeout=10)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _save_logits(path: Path, logits: dict) -> None:
    buffer = io.BytesIO()
    torch.save(logits, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _load_logits(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _mean_std(values: list) -> tuple[float | None, float | None]:
    nums = [float(v) for v in values if is_number(v)]
    if not nums:
        return None, None
    if any(math.isinf(v) for v in nums):
        return float("inf") if sum(1 for v in nums if v > 0) else float("-inf"), None
    mean = statistics.fmean(nums)
    std = statistics.stdev(nums) if len(nums) > 1 else None
    return mean, std


def aggregate(per_seed: list[dict], keys=NUMERIC_KEYS) -> dict:
    """Mean and (sample) standard deviation over seeds, as ``key`` and ``key_std``."""
    out = {}
    for key in keys:
        mean, std = _mean_std([r.get(key) for r in per_seed])
        if mean is not None:
            out[key] = mean
            if std is not None:
                out[f"{key}_std"] = std
    return out


class Benchmark:
    """One benchmark in one output directory (see the module docstring)."""

    kind = "benchmark"
    manifest_name = MANIFEST

    def __init__(self, config: BenchmarkConfig, out: str | Path, *, device: str = "auto",
                 cache_dir: str | Path | None = None, progress: bool = True,
                 resume: bool = False, command: str | None = None, split=None, log=None):
        config.validate()
        self.config = config
        self.out = Path(out)
        self.device = resolve_device(device)
        self.device_name = device
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.progress_enabled = progress
        self.command = command
        self.log = log or (lambda text: None)
        self.preset = None
        self.resuming = prepare_output(self.out, config, resume, self.kind, self.manifest_name)
        self.split = split if split is not None else make_split(config)
        self._refs: dict[int, dict] = {}
        self._members: dict[int, torch.Tensor] = {}

    # -- paths -----------------------------------------------------------------------------
    def run_dir(self, mkey: str, lr: float, seed: int) -> Path:
        return self.out / "runs" / mkey / f"lr-{lr_text(lr)}" / f"seed-{seed}"

    def final_path(self, row: str, seed: int, setting: Setting | None = None) -> Path:
        name = (f"lr-{lr_text(setting.lr)}_epoch-{setting.epoch}_seed-{seed}.json" if setting
                else f"seed-{seed}.json")
        return self.out / "final" / row / name

    def ref_path(self, seed: int) -> Path:
        return self.out / "references" / f"seed-{seed}.json"

    # -- references ------------------------------------------------------------------------
    def spec(self, subset: str, seed: int) -> TrainSpec:
        c = self.config
        return TrainSpec(model=c.model, subset=subset, epochs=c.train_epochs, lr=c.train_lr,
                         batch_size=c.batch_size, seed=seed, augment=c.augment)

    def members(self, seed: int) -> torch.Tensor:
        if seed not in self._members:
            self._members[seed] = member_sample(self.split, seed)
        return self._members[seed]

    def references(self, seed: int, need_model: bool, progress: Progress | None = None) -> dict:
        """M and M_R of ``seed``: accuracies, logits and times (and M itself if ``need_model``)."""
        ref = self._refs.get(seed)
        if ref is not None and (ref.get("original") is not None or not need_model):
            return ref
        path = self.ref_path(seed)
        members = self.members(seed)
        if path.is_file() and not need_model:
            ref = json.loads(path.read_text())
            ref["logits"] = _load_logits(path.with_suffix(".pt"))
            ref["original"] = None
            self._refs[seed] = ref
            return ref
        models = {}
        info = {}
        for role, subset in (("original", "train"), ("oracle", "retain")):
            key = f"ref:{role}:{seed}"
            if progress:
                progress.start(key)
            found = get_or_train(self.cache_dir, self.spec(subset, seed), self.split,
                                 device=self.device_name, progress=self.progress_enabled)
            if progress:
                progress.finish(key, measured=not found.cached)
            models[role] = found.model
            info[role] = {"seconds": found.seconds, "cached": found.cached, "key": found.key,
                          "cache_entry": str(found.path), "history": found.history}
        logits = {role: model_logits(m, self.split, members, self.device)
                  for role, m in models.items()}
        acc = {role: accuracies(logits[role], self.split, members) for role in models}
        ref = {"seed": seed, "acc": acc, "train_seconds": info["original"]["seconds"],
               "retrain_seconds": info["oracle"]["seconds"], "models": info,
               "member_count": int(len(members))}
        if not path.is_file():
            _save_logits(path.with_suffix(".pt"), logits)
            atomic_write_json(path, ref)
        ref["logits"] = logits
        ref["original"] = models["original"]
        self._refs[seed] = ref
        return ref

    # -- one unlearning run ----------------------------------------------------------------
    def run_one(self, name: str, hparams: dict, lr: float, seed: int, ref: dict) -> dict:
        c = self.config
        members = self.members(seed)
        acc_o, acc_r = ref["acc"]["original"], ref["acc"]["oracle"]
        rows = [{"epoch": 0, "seconds": 0.0, **acc_o, **accuracy_errors(acc_o, acc_o, acc_r)}]
        rows[0]["score"] = selection_score(rows[0])
        logits_by_epoch: dict[int, dict] = {}

        def on_epoch_end(epoch, model, row):
            lg = model_logits(model, self.split, members, self.device)
            acc = accuracies(lg, self.split, members)
            entry = {"epoch": epoch, "seconds": row["seconds"], "loss": row["loss"], **acc,
                     **accuracy_errors(acc, acc_o, acc_r)}
            entry["score"] = selection_score(entry)
            rows.append(entry)
            logits_by_epoch[epoch] = lg

        from .. import api

        status, reason = "ok", None
        started = time.perf_counter()
        try:
            api.unlearn(ref["original"], self.split, name, epochs=c.max_epochs, lr=lr,
                        batch_size=c.batch_size, seed=seed, device=self.device_name,
                        progress=self.progress_enabled, model_name=c.model,
                        on_epoch_end=on_epoch_end, **hparams)
        except KeyboardInterrupt:
            raise
        except DivergedError as exc:
            status, reason = "diverged", str(exc)
        except Exception as exc:  # a failing run is recorded and the benchmark goes on
            status, reason = "failed", _first_line(exc)
            self.log(f"{name} lr={lr_text(lr)} seed={seed} failed: {reason}\n"
                     + "".join(traceback.format_exception_only(type(exc), exc)).strip())
        if status != "ok":
            reason = f"{reason} (after {len(rows) - 1} of {c.max_epochs} epochs)"
        result = {"method": name, "hparams": hparams, "lr": lr, "seed": seed, "status": status,
                  "reason": reason, "epochs_completed": len(rows) - 1, "rows": rows,
                  "wall_seconds": time.perf_counter() - started}
        run_dir = self.run_dir(method_key(name, hparams), lr, seed)
        _save_logits(run_dir / "logits.pt", logits_by_epoch)
        atomic_write_json(run_dir / "result.json", result)   # last: marks the run finished
        return result

    def load_run(self, name: str, hparams: dict, lr: float, seed: int) -> dict | None:
        path = self.run_dir(method_key(name, hparams), lr, seed) / "result.json"
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None   # a torn file cannot exist (atomic writes), but never trust it

    # -- the whole protocol ----------------------------------------------------------------
    def units(self) -> list[Unit]:
        c, split = self.config, self.split
        n_train, n_retain = len(split.train), len(split.retain)
        units = []
        for seed in c.seeds:
            ref_done = self.ref_path(seed).is_file()
            for role, subset, n in (("original", "train", n_train), ("oracle", "retain", n_retain)):
                cached = ref_done or lookup(self.cache_dir, self.spec(subset, seed), split) is not None
                units.append(Unit(f"ref:{role}:{seed}", "train",
                                  f"train {'M' if role == 'original' else 'M_R'} seed {seed}",
                                  c.train_epochs * n, done=cached))
            for name, hp in c.methods:
                for lr in c.lrs:
                    units.append(Unit(f"run:{method_key(name, hp)}:{lr_text(lr)}:{seed}", "run",
                                      f"{method_label(name, hp)} lr={lr_text(lr)} seed {seed}",
                                      c.max_epochs * n_train,
                                      done=self.load_run(name, hp, lr, seed) is not None))
        rows = ["ORI", "RT"] + [method_key(n, h) for n, h in c.methods]
        for row in rows:
            for seed in c.seeds:
                done = any((self.out / "final" / row).glob(f"*seed-{seed}.json"))
                units.append(Unit(f"final:{row}:{seed}", "final", f"JS/MIA {row} seed {seed}",
                                  0.5 * n_train, done=done))
        return units

    def run(self) -> dict:
        c = self.config
        started = time.perf_counter()
        manifest_path = self.out / MANIFEST
        manifest = (json.loads(manifest_path.read_text()) if manifest_path.is_file()
                    else {"kind": "sftc benchmark", "config": c.to_dict(), "sessions": []})
        from ..records import package_versions

        session = {"command": self.command, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                   "device": str(self.device), "machine": session_machine(), "versions": package_versions(),
                   "finished": None, "wall_seconds": None}
        manifest["sessions"].append(session)
        atomic_write_json(manifest_path, manifest)

        units = self.units()
        done_before = sum(u.done for u in units)
        if self.resuming:
            self.log(f"resuming {self.out}: {done_before} of {len(units)} steps already done")
        progress = Progress(units, enabled=self.progress_enabled)
        try:
            results = self._run_grid(progress)
            table = self._finalise(results, progress)
        finally:
            progress.close()
        session["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        session["wall_seconds"] = time.perf_counter() - started
        atomic_write_json(manifest_path, manifest)
        from .outputs import write_outputs

        write_outputs(self, table, manifest)
        return table

    def _run_grid(self, progress: Progress) -> dict:
        c = self.config
        results: dict[str, dict] = {method_key(n, h): {} for n, h in c.methods}
        for seed in c.seeds:
            pending = [(n, h, lr) for n, h in c.methods for lr in c.lrs
                       if self.load_run(n, h, lr, seed) is None]
            ref = self.references(seed, need_model=bool(pending), progress=progress)
            for name, hp in c.methods:
                mkey = method_key(name, hp)
                for lr in c.lrs:
                    unit = f"run:{mkey}:{lr_text(lr)}:{seed}"
                    result = self.load_run(name, hp, lr, seed)
                    if result is None:
                        progress.start(unit)
                        result = self.run_one(name, hp, lr, seed, ref)
                        progress.finish(unit)
                        if result["status"] != "ok":
                            progress.write(f"{method_label(name, hp)} lr={lr_text(lr)} seed "
                                           f"{seed}: {result['status']}: {result['reason']}")
                    results[mkey][(lr, seed)] = result
            if ref.get("original") is not None:
                ref["original"] = None   # free the model; logits and accuracies are kept
        return results

    def _final_metrics(self, row: str, seed: int, setting: Setting | None, logits: dict,
                       base: dict, progress: Progress) -> dict:
        path = self.final_path(row, seed, setting)
        if path.is_file():
            return json.loads(path.read_text())
        unit = f"final:{row}:{seed}"
        progress.start(unit)
        ref = self.references(seed, need_model=False)
        c = self.config
        metrics = costly_metrics(logits, ref["logits"]["original"], self.split, self.members(seed),
                                 seed=seed, mia_iterations=c.mia_iterations,
                                 mia_features=c.mia_features, mia_folds=c.mia_folds,
                                 mia_attacker=c.mia_attacker)
        record = {**base, **metrics, "seed": seed}
        atomic_write_json(path, record)
        progress.finish(unit)
        return record

    def _finalise(self, results: dict, progress: Progress) -> dict:
        c = self.config
        per_row: dict[str, dict] = {}
        # reference rows
        ori, rt = [], []
        for seed in c.seeds:
            ref = self.references(seed, need_model=False)
            acc_o, acc_r = ref["acc"]["original"], ref["acc"]["oracle"]
            base_o = {**acc_o, **accuracy_errors(acc_o, acc_o, acc_r),
                      "retrain_seconds": ref["retrain_seconds"]}
            ori.append(self._final_metrics("ORI", seed, None, ref["logits"]["original"], base_o,
                                           progress))
            base_r = {**acc_r, **accuracy_errors(acc_r, acc_o, acc_r),
                      "unlearn_seconds": ref["retrain_seconds"],
                      "retrain_seconds": ref["retrain_seconds"], "time_ratio": 1.0}
            rt.append(self._final_metrics("RT", seed, None, ref["logits"]["oracle"], base_r,
                                          progress))
        per_row["ORI"] = {"label": "ORI", "method": "original", "seeds": ori}
        per_row["RT"] = {"label": "RT", "method": "retrain", "seeds": rt}

        selection_grid = {}
        for name, hp in c.methods:
            mkey = method_key(name, hp)
            label = method_label(name, hp)
            runs = results[mkey]
            points = {}
            problems = []
            for (lr, seed), result in runs.items():
                if result["status"] != "ok":
                    problems.append({"lr": lr, "seed": seed, "status": result["status"],
                                     "reason": result["reason"]})
                for r in result["rows"]:
                    if r["epoch"] >= 1:
                        points[(lr, r["epoch"], seed)] = r
            selection_grid[mkey] = candidate_scores(points, c.seeds)
            setting = select_setting(points, c.seeds)
            entry = {"label": label, "method": name, "hparams": hp, "problems": problems,
                     "setting": asdict(setting) if setting else None, "seeds": []}
            if setting is None:
                entry["failed"] = True
                entry["reason"] = ("no learning rate and epoch finished on every seed"
                                   + (f" ({problems[0]['status']}: {problems[0]['reason']})"
                                      if problems else ""))
                per_row[mkey] = entry
                for seed in c.seeds:
                    progress.finish(f"final:{mkey}:{seed}", measured=False)
                continue
            for seed in c.seeds:
                run = runs[(setting.lr, seed)]
                row = next(r for r in run["rows"] if r["epoch"] == setting.epoch)
                ref = self.references(seed, need_model=False)
                logits = _load_logits(self.run_dir(mkey, setting.lr, seed) / "logits.pt")
                lg = logits[setting.epoch]
                base = {k: row[k] for k in ("acc_retain", "acc_forget", "acc_test",
                                             "acc_err_retrain", "acc_dis", "acc_err_original",
                                             "score")}
                base["unlearn_seconds"] = row["seconds"]
                base["retrain_seconds"] = ref["retrain_seconds"]
                base["time_ratio"] = (row["seconds"] / ref["retrain_seconds"]
                                      if ref["retrain_seconds"] else None)
                entry["seeds"].append(self._final_metrics(mkey, seed, setting, lg, base, progress))
            per_row[mkey] = entry

        rows = []
        for key, entry in per_row.items():
            row = {"label": entry["label"], "key": key, "method": entry["method"],
                   "n_seeds": len(entry["seeds"])}
            if entry.get("failed"):
                row.update(failed=True, reason=entry["reason"])
            else:
                row.update(aggregate(entry["seeds"]))
            if entry.get("setting"):
                row["lr"] = entry["setting"]["lr"]
                row["epoch"] = entry["setting"]["epoch"]
            if entry.get("problems"):
                row["problems"] = entry["problems"]
            if entry.get("hparams"):
                row["hparams"] = entry["hparams"]
            if c.js == "paper":
                row["js_textbook"] = row.get("js")
                row["js"] = row.get("js_paper")
                if "js_paper_std" in row:
                    row["js_std"] = row["js_paper_std"]
            rows.append(row)
        return {"rows": rows, "per_row": per_row, "selection_grid": selection_grid,
                "results": results}


def run_benchmark(config: BenchmarkConfig, out: str | Path, **kwargs) -> dict:
    """Run (or resume) the Table-1 protocol into ``out`` and write its tables, figure and report.

    Keyword arguments: ``device``, ``cache_dir``, ``progress``, ``resume``, ``command``, ``split``
    (a prepared :class:`sftc.Split` instead of loading ``config.dataset``), ``log``.
    Returns ``{"rows": [...], ...}`` with one aggregated row per Table-1 row.
    """
    return Benchmark(config, out, **kwargs).run()
