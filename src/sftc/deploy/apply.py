"""Applying one request to the latest version: unlearn it with a retain set that excludes every
request so far, audit it and every earlier one, and write the candidate version into a staging
folder with the record the ledger will hold (``outcome.json``, written last).

By default the setting is found by ``--until forgotten`` (:func:`sftc.bench.until.
unlearn_until_forgotten`: an Optuna search of the learning rate, stopped on the audit's evidence
on a selection split carved from the validation split; its final audit on the test split is the
request's audit); ``--epochs``/``--lr`` give a fixed setting (:func:`sftc.api.unlearn`) audited
the same way (:func:`sftc.bench.audit.audit`). The references are retrained on the cumulative
retain set (:class:`~sftc.bench.reference_pool.ReferencePool`): they never saw any removed
sample, so they serve this request and the re-audit of every earlier one.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..bench.audit import AuditConfig, audit
from ..bench.evidence import EvidenceSettings
from ..errors import SftcError
from ..io import atomic_write_json, file_sha256
from ..records import machine, package_versions
from ..recipes import TrainingRecipe
from .audits import POLICIES, failures, line, reaudit_all, summary, write_audit
from .retention import pruned_versions
from .samples import Samples, split_of


@dataclass
class ForgetOptions:
    """How a request is applied and judged (recorded in the ledger)."""

    request_id: str
    method: str = "sftc"
    hparams: dict = field(default_factory=dict)
    epochs: int | None = None          # a fixed setting when epochs or lr is given
    lr: float | None = None
    batch_size: int = 64
    seed: int = 0
    trials: int = 8
    max_epochs: int = 4
    lrs: tuple[float, ...] | None = None
    max_accuracy_drop: float = 0.02
    require: str = "forgotten"
    references: int = 8
    attack: str = "rmia"
    alpha: float = 0.05
    resolution: str = EvidenceSettings.resolution
    paper_metrics: bool = True
    mia: bool = True
    device: str = "auto"
    progress: bool = True
    data_dir: str | None = None        # where the data lies now (default: as recorded at init)

    @property
    def fixed(self) -> bool:
        return self.epochs is not None or self.lr is not None

    def audit_config(self, recipe: TrainingRecipe, cache_dir: str) -> AuditConfig:
        return AuditConfig(references=self.references, attack=self.attack, alpha=self.alpha,
                           resolution=self.resolution, recipe=recipe, cache_dir=cache_dir,
                           device=self.device, paper_metrics=self.paper_metrics, mia=self.mia,
                           seed=self.seed, progress=self.progress)


def unlearn(original, split, options: ForgetOptions, config: AuditConfig, model_name: str):
    """The new model, the request's audit, the setting and how it was chosen."""
    if options.fixed:
        from .. import api

        result = api.unlearn(original, split, options.method, epochs=options.epochs,
                             lr=options.lr, batch_size=options.batch_size, seed=options.seed,
                             device=options.device, progress=options.progress,
                             model_name=model_name, **options.hparams)
        chosen = {"how": "fixed (--epochs/--lr)", "setting": result.config,
                  "seconds": result.seconds}
        return result.model, None, chosen
    from ..bench.until import SearchConfig, unlearn_until_forgotten

    search = SearchConfig(method=options.method, hparams=options.hparams, trials=options.trials,
                          max_epochs=options.max_epochs, lrs=options.lrs,
                          max_accuracy_drop=options.max_accuracy_drop,
                          batch_size=options.batch_size, seed=options.seed,
                          model_name=model_name).check()
    result = unlearn_until_forgotten(original, split, config=search, audit_config=config,
                                     device=options.device, progress=options.progress)
    t = result.timings
    chosen = {"how": "until forgotten: Optuna over the learning rate, each run stopped at its "
                     "first check inside the retrain band on the selection split (validation "
                     "halves) within the accuracy budget; the cheapest passing model kept",
              "setting": {"lr": result.chosen["lr"], "epochs": result.chosen["epoch"],
                          "batch_size": options.batch_size, "seed": options.seed,
                          **options.hparams},
              "certified_on_selection": result.certified, "chosen": result.chosen,
              "trials_run": t["trials_run"], "epochs_run": t["epochs_run"],
              "checks": len(result.trace), "seconds": t["search_seconds"],
              "search_over_retrain": t.get("search_over_retrain")}
    return result.model, result, chosen


def training_sets(history, samples: Samples, request: list[str],
                  request_id: str) -> tuple[list[str], list[str]]:
    """The samples still in the model (every recorded one no earlier request removed) and the
    retain set (those, less this request), checked present and unchanged before any work."""
    removed_before = history.removed_ids()
    kept = [s["id"] for s in samples.record["train"]
            if samples.names.of_sample(s) not in removed_before]
    asked = set(request)
    retain = [i for i in kept if i not in asked]
    samples.check_unchanged(retain, "training samples")
    gone = samples.missing(request)
    if gone:
        raise SftcError(f"{len(gone)} samples of request {request_id} are missing from the data "
                        f"(first: {gone[0]}); unlearning and its audit need them: restore them, "
                        "and delete them once the request is published")
    samples.check_unchanged(request, f"samples of request {request_id}")
    return kept, retain


def apply_request(*, history, samples: Samples, request: list[str], options: ForgetOptions,
                  staging: Path, load_version, say) -> dict:
    """Unlearn and audit ``request`` into ``staging``; returns the outcome (also written as
    ``staging/outcome.json``, last). ``load_version(n, split)`` gives (model, path) of version
    n."""
    from ..checkpoints import save_state_dict

    init, started = history.init, time.perf_counter()
    kept, retain = training_sets(history, samples, request, options.request_id)
    version = history.version + 1
    split = split_of(samples, kept, request, f"request {options.request_id}")
    original, original_path = load_version(version - 1, split)
    recipe = TrainingRecipe(**init["recipe"], source="recorded at deploy init")
    config = options.audit_config(recipe, init["cache_dir"])
    say(f"[2/4] unlearning request {options.request_id} ({len(request)} samples) from "
        f"v{version - 1} with {options.method} "
        f"({'fixed setting' if options.fixed else 'until forgotten'}); retain set "
        f"{len(retain)} samples, excluding {len(history.published)} earlier request(s)")
    t0 = time.perf_counter()
    model, search, chosen = unlearn(original, split, options, config, init["model"]["name"])
    unlearn_seconds = time.perf_counter() - t0
    staging.mkdir(parents=True, exist_ok=True)
    save_state_dict(model, staging / "model.pt")
    say(f"[3/4] auditing request {options.request_id} and {len(history.published)} earlier "
        f"request(s) on v{version} (policy --require {options.require})")
    t0 = time.perf_counter()
    result = search.audit if search is not None else audit(
        original, model, split, config=config,
        checkpoints={"original": original_path, "unlearned": staging / "model.pt"})
    path = staging / "audits" / f"{options.request_id}.json"
    write_audit(result, path, {"request": options.request_id, "reaudit": False,
                               "original_version": version - 1, "version_audited": version,
                               "require": options.require, "setting": chosen["setting"]})
    new = summary(result, options.request_id, version - 1, version, options.require, path,
                  staging)
    say(f"request {options.request_id}: {line(new)}")
    earlier, _ = reaudit_all(history.published, samples, retain, model, load_version, config,
                             options.require, staging, version, say,
                             pruned=pruned_versions(history))
    timings = {"unlearn_seconds": unlearn_seconds, "audits_seconds": time.perf_counter() - t0}
    if search is not None:
        atomic_write_json(staging / "search.json", search.to_dict())
    references = search.settings["references"] if search is not None else result.references
    outcome = _outcome(history, samples, request, retain, split, options, version,
                       original_path, staging, chosen, [new, *earlier], references)
    outcome["timings"] = {**timings, "total_seconds": time.perf_counter() - started}
    outcome["cost"] = request_cost(outcome["timings"]["total_seconds"], references)
    outcome["files"] = {p.relative_to(staging).as_posix(): file_sha256(p)
                        for p in sorted(staging.rglob("*")) if p.is_file()}
    atomic_write_json(staging / "outcome.json", outcome)
    return outcome


def request_cost(total_seconds: float, references: dict) -> dict:
    """The request's whole cost, references and every audit included, against one retraining
    (the references' median training time: each is a retraining on the cumulative retain set
    with the original's recipe)."""
    one = references.get("one_retraining_seconds")
    retrainings = total_seconds / one if one else None
    return {"total_seconds": total_seconds, "one_retraining_seconds": one,
            "retrainings": retrainings,
            "retraining_cheaper": bool(retrainings is not None and retrainings > 1.0)}


def _outcome(history, samples, request, retain, split, options, version, original_path,
             staging, chosen, audits, references) -> dict:
    """What the ledger records of a request (its ``published`` or ``refused`` entry)."""
    earlier = [p["request"] for p in history.published]
    return {
        "request": options.request_id, "version": version,
        "parent": {"version": version - 1, "sha256": file_sha256(original_path)},
        "child": {"version": version, "path": f"versions/v{version}/model.pt",
                  "sha256": file_sha256(staging / "model.pt")},
        "removed": [{**samples.recorded[i], "id": samples.names.sample(i)} for i in request],
        "retain": {"size": len(retain), "sha256": split.content_sha256("retain"),
                   "excludes": [*earlier, options.request_id]},
        "method": options.method, "hparams": options.hparams, "chosen": chosen,
        "policy": {"require": options.require, "accepts": list(POLICIES[options.require])},
        "evidence": {"references": options.references, "attack": options.attack,
                     "alpha": options.alpha, "resolution": options.resolution,
                     "rule": "retrain band"},
        "audits": audits, "failed": failures(audits, options.require),
        "references": {k: references.get(k) for k in ("count", "trained_now", "from_cache",
                                                      "train_seconds", "train_size",
                                                      "one_retraining_seconds")},
        "options": asdict(options), "versions": package_versions(), "machine": machine(),
        "cache_dir": history.init["cache_dir"]}
