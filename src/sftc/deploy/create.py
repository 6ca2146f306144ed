"""``sftc deploy init``: a deployment record of a deployed checkpoint.

It copies the checkpoint to ``versions/v0/model.pt`` (the user's file is only read), records the
training set as sample ids with content hashes (:mod:`sftc.deploy.samples`), freezes what every
later command needs to see the same data and retrain the same references (the dataset and its
options, the preprocessing, the subsets, the architecture, the training recipe of the original
from the ``run.json`` beside it, the cache folder), and starts the ledger with an ``init`` entry.
The folder is built beside ``--dir`` and renamed into place whole (:func:`sftc.io.
output_directory`).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from ..bench.cache import default_cache_dir
from ..data import Split, dataset_info
from ..errors import SftcError
from ..io import atomic_write_json, file_sha256, output_directory
from ..records import machine, package_versions
from ..recipes import TrainingRecipe
from .folder import Deployment
from .ledger import FORMAT, Ledger, write_pointer
from .samples import build_record, check_layout, choose, load


def read_record(checkpoint: Path) -> dict | None:
    """The run.json beside a checkpoint (None when there is none)."""
    path = checkpoint.with_name("run.json")
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SftcError(f"{path} beside {checkpoint} is not readable JSON ({exc})") from None
    return record if isinstance(record, dict) else None


def data_config(dataset: str, data_dir, image_size, split_seed: int, record: dict | None,
                table: dict | None = None) -> dict:
    """The data options, with the preprocessing recorded beside the checkpoint where given (a
    table's encoding too: ``table``, the table's options, gets it as ``encoding``)."""
    recorded = ((record or {}).get("trained_on") or {}).get("preprocessing") or {}
    config = {"dataset": dataset, "data_dir": os.path.abspath(data_dir) if data_dir else None,
              "image_size": image_size if image_size is not None else recorded.get("image_size"),
              "split_seed": split_seed, "mean": recorded.get("mean"), "std": recorded.get("std")}
    table = {k: v for k, v in (table or {}).items() if v is not None}
    if table or recorded.get("table"):
        if table.get("file"):
            table["file"] = os.path.abspath(table["file"])
        config["table"] = {**table, **({"encoding": recorded["table"]}
                                       if recorded.get("table") else {})}
    if dataset == "imagefolder" and not data_dir:
        raise SftcError("--dataset imagefolder needs --data-dir DIR (with train/, val/, test/)")
    if config["dataset"] == "imagefolder":
        check_layout(config)
    return config


def init(root, *, checkpoint, dataset: str, data_dir=None, model: str | None = None,
         image_size: int | None = None, split_seed: int = 0, subsets: dict | None = None,
         cache_dir=None, recipe_overrides: dict | None = None, table: dict | None = None,
         say=print) -> dict:
    """Create the deployment at ``root``; returns the init entry's payload."""
    from .. import api
    from ..fingerprint import verify

    dep = Deployment(root)
    checkpoint = Path(checkpoint)
    if dep.root.exists() and (not dep.root.is_dir() or any(dep.root.iterdir())):
        raise SftcError(f"--dir {dep.root} already holds files; a deployment is never "
                        "overwritten: choose a new folder")
    record = read_record(checkpoint)
    trained_on = (record or {}).get("trained_on") or {}
    name = model or ((record or {}).get("config") or {}).get("model") \
        or dataset_info(dataset).default_model
    subsets = {**(trained_on.get("subsets") or {}), **{k: v for k, v in (subsets or {}).items()
                                                       if v}}
    config = data_config(dataset, data_dir, image_size, split_seed, record, table)
    data = Path(config["data_dir"]).resolve() if config["data_dir"] else None
    if data is not None and (dep.root.resolve() == data or data in dep.root.resolve().parents):
        raise SftcError(f"--dir {dep.root} lies inside --data-dir {data}: the deployment would "
                        "be read as data; choose a folder outside it")
    say(f"[1/2] reading {dataset} and checking {checkpoint} against it")
    loaded = load(config)
    config["mean"] = list(loaded.data.mean) if loaded.data.mean is not None else None
    config["std"] = list(loaded.data.std) if loaded.data.std is not None else None
    if getattr(loaded.data, "table", None):          # frozen as the loader fitted it
        config["table"] = {**config.get("table", {}), "encoding": loaded.data.table}
    chosen = choose(loaded, subsets, split_seed)
    part = {p: getattr(loaded, p)[chosen[p]] for p in ("train", "val", "test")}
    split = Split.create(loaded.data, part["train"], part["val"], part["test"],
                         torch.tensor([0]))
    split.subsets = {k: v for k, v in subsets.items() if v} or None
    notes = verify(record, split, "original", checkpoint, "--checkpoint")
    api.load_model(checkpoint, name, split)            # the architecture fits, weights finite
    trained = record if (record or {}).get("command") in (None, "train") else None
    if record is not None and trained is None:
        notes.append(f"--checkpoint {checkpoint} was made by 'sftc {record.get('command')}', not "
                     "'sftc train': the references' recipe is not taken from its run.json (give "
                     "--ref-epochs/--ref-lr/--ref-batch-size), and any samples it was made to "
                     "forget are still in the deployment's training set: apply them as a request")
    recipe = TrainingRecipe.from_record(trained, name, **(recipe_overrides or {}))
    samples = build_record(loaded, config, chosen)
    return _write(dep, checkpoint, config, subsets, name, recipe, samples, notes,
                  Path(cache_dir or default_cache_dir()).resolve(), say)


def _write(dep, checkpoint, config, subsets, name, recipe, samples, notes, cache, say) -> dict:
    say(f"[2/2] writing the deployment {dep.root}")
    inputs = (checkpoint, config["data_dir"], (config.get("table") or {}).get("file"))
    with output_directory(dep.root, inputs=inputs, what="--dir") as tmp:
        (tmp / "versions" / "v0").mkdir(parents=True)
        partial = tmp / "versions" / "v0" / ".model.pt.partial"
        shutil.copyfile(checkpoint, partial)
        os.replace(partial, tmp / "versions" / "v0" / "model.pt")
        sha = file_sha256(tmp / "versions" / "v0" / "model.pt")
        if sha != file_sha256(checkpoint):
            raise SftcError(f"copying {checkpoint} gave another file (it changed while being "
                            "copied?); try again")
        atomic_write_json(tmp / "samples.json", samples)
        payload = {"format": FORMAT, "data": config, "subsets": subsets,
                   "model": {"name": name, "checkpoint": str(checkpoint.resolve()),
                             "sha256": sha},
                   "recipe": recipe.key_dict(), "recipe_source": recipe.source,
                   "cache_dir": str(cache),
                   "samples": {"file": "samples.json",
                               "sha256": file_sha256(tmp / "samples.json"),
                               "ids": samples["ids"], "train": len(samples["train"]),
                               "val": len(samples["val"]["positions"]),
                               "test": len(samples["test"]["positions"])},
                   "not_verified": notes, "versions": package_versions(), "machine": machine()}
        entries = []
        Ledger(tmp / "ledger.jsonl").append(entries, "init", payload)
        write_pointer(tmp / "published.json", entries, 0, "versions/v0/model.pt", sha)
    return payload
