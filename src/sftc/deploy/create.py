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
import secrets
import shutil
from pathlib import Path

import torch

from ..bench.cache import default_cache_dir
from ..data import Split, dataset_info
from ..data.images import ChannelMismatch
from ..errors import SftcError
from ..io import atomic_write_json, file_sha256, output_directory
from ..models import absolute_spec, spec_file_sha256
from ..records import machine, package_versions
from ..recipes import TrainingRecipe
from .folder import Deployment
from .ledger import FORMAT, Ledger, write_pointer
from .names import check_value, default_key_file, read_key
from .retention import check_keep
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
    trained_on = (record or {}).get("trained_on") or {}
    recorded = trained_on.get("preprocessing") or {} if trained_on.get("dataset") in (
        None, dataset) else {}          # another dataset's statistics are not this one's
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


def recorded_dataset(record: dict | None, dataset: str | None, data_dir) -> tuple[str, object]:
    """The dataset (and its folder) to use: as given, else as the checkpoint's run.json records
    it, else digits."""
    if dataset:
        return dataset, data_dir
    trained_on = (record or {}).get("trained_on") or {}
    config = (record or {}).get("config") or {}
    named = trained_on.get("dataset") or config.get("dataset")
    if not isinstance(named, str) or not named:
        return "digits", data_dir
    return named, data_dir if data_dir else config.get("data_dir")


def check_cache_dir(cache_dir) -> Path:
    """The model cache folder: absent (made on first use) or a folder, never a file."""
    path = Path(cache_dir or default_cache_dir()).expanduser().resolve()
    for parent in (path, *path.parents):
        if parent.exists():
            if not parent.is_dir():
                where = "is a file" if parent == path else f"lies under {parent}, a file"
                raise SftcError(f"--cache-dir {cache_dir or path} {where}; give a folder (it "
                                "holds the reference models the audits train)")
            break
    return path


def init(root, *, checkpoint, dataset: str | None = None, data_dir=None, model: str | None = None,
         image_size: int | None = None, split_seed: int = 0, subsets: dict | None = None,
         cache_dir=None, recipe_overrides: dict | None = None, keep: str = "published",
         key_file=None, table: dict | None = None, say=print) -> dict:
    """Create the deployment at ``root``; returns the init entry's payload."""
    from .. import api
    from ..fingerprint import verify

    dep = Deployment(root)
    checkpoint = Path(checkpoint)
    if dep.root.exists() and (not dep.root.is_dir() or any(dep.root.iterdir())):
        raise SftcError(f"--dir {dep.root} already holds files; a deployment is never "
                        "overwritten: choose a new folder")
    cache = check_cache_dir(cache_dir)
    keys = _key(dep, key_file)
    retention = {"keep": check_keep(keep)}
    record = read_record(checkpoint)
    dataset, data_dir = recorded_dataset(record, dataset, data_dir)
    trained_on = (record or {}).get("trained_on") or {}
    if trained_on.get("dataset") not in (None, dataset):
        trained_on = {}            # another dataset's subsets are not this one's (refused below)
    name = absolute_spec(model or ((record or {}).get("config") or {}).get("model")
                         or dataset_info(dataset).default_model)
    subsets = {**(trained_on.get("subsets") or {}), **{k: v for k, v in (subsets or {}).items()
                                                       if v}}
    config = data_config(dataset, data_dir, image_size, split_seed, record, table)
    data = Path(config["data_dir"]).resolve() if config["data_dir"] else None
    if data is not None and (dep.root.resolve() == data or data in dep.root.resolve().parents):
        raise SftcError(f"--dir {dep.root} lies inside --data-dir {data}: the deployment would "
                        "be read as data; choose a folder outside it")
    say(f"[1/2] reading {dataset} and checking {checkpoint} against it")
    try:
        loaded = load(config)
    except ChannelMismatch as exc:
        if config["mean"] is None:
            raise
        raise exc.recorded(checkpoint, dataset) from None
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
    extra = {"retention": retention, "pseudonyms": keys[0]}
    payload = _write(dep, checkpoint, config, subsets, name, recipe, samples, notes, cache, extra,
                     say)
    keys[1]()
    return payload


def _key(dep: Deployment, key_file) -> tuple[dict, object]:
    """The key's record for the ledger (its path and check value, never the key) and what
    writes a new key file once the deployment is in place."""
    path = Path(os.path.abspath(Path(key_file).expanduser())) if key_file else \
        default_key_file(dep.root)
    if path == dep.root or dep.root in path.parents:
        raise SftcError(f"--key-file {path} lies inside --dir {dep.root}: the key must stay "
                        "outside the deployment (whoever holds both can undo the pseudonyms)")
    if path.exists():
        key, write = read_key(path), (lambda: None)
    else:
        if not path.parent.is_dir():
            raise SftcError(f"--key-file {path}: its folder {path.parent} does not exist")
        key = secrets.token_bytes(32)

        def write():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(key.hex() + "\n")
    return {"key_file": str(path), "check": check_value(key),
            "scheme": "HMAC-SHA-256, first 80 bits, prefixes req-/smp-"}, write


def _write(dep, checkpoint, config, subsets, name, recipe, samples, notes, cache, extra,
           say) -> dict:
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
                             "sha256": sha, **spec_file_sha256(name)},
                   "recipe": recipe.key_dict(), "recipe_source": recipe.source,
                   "cache_dir": str(cache),
                   "samples": {"file": "samples.json",
                               "sha256": file_sha256(tmp / "samples.json"),
                               "ids": samples["ids"], "train": len(samples["train"]),
                               "val": len(samples["val"]["positions"]),
                               "test": len(samples["test"]["positions"])},
                   "not_verified": notes, "versions": package_versions(), "machine": machine(),
                   **extra}
        entries = []
        Ledger(tmp / "ledger.jsonl").append(entries, "init", payload)
        write_pointer(tmp / "published.json", entries, 0, "versions/v0/model.pt", sha)
    return payload
