"""The deployment's samples: what the model was trained on, as ids and content hashes, never data.

``samples.json`` records the training set as sample ids (for an image folder, each image's path
relative to its ``train/`` folder; otherwise its position in the dataset's training part) with
each sample's content SHA-256 (:func:`sftc.bench.members.sample_digests`: the decoded image's
bytes and its label; for image files also the file's own SHA-256), and the validation and test
splits as positions in their parts with one SHA-256 each.

Every later command loads the data with the preprocessing frozen at ``deploy init`` (the mean
and std an image folder would otherwise recompute from whatever images are left) and maps it
onto the record (:class:`Samples`): a sample of no request that is missing or whose content
changed is refused in one line, the samples of earlier requests are excluded by id whether or
not their files are still there, and files the record does not know are ignored. The splits
of a request and of the re-audit of an earlier one are built here (:func:`split_of`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch

from ..bench.members import sample_digests
from ..data import LoadedDataset, Split, load_dataset
from ..data.subsets import SEED_OFFSET, stratified_subset
from ..errors import SftcError
from ..io import file_sha256
from .names import Names

FORMAT = "sftc-deploy-samples/1"


def load(config: dict) -> LoadedDataset:
    """The dataset as the deployment reads it (its preprocessing as recorded at init)."""
    mean, std = config.get("mean"), config.get("std")
    return load_dataset(config["dataset"], data_dir=config.get("data_dir"),
                        image_size=config.get("image_size"), split_seed=config["split_seed"],
                        mean=tuple(mean) if mean else None, std=tuple(std) if std else None,
                        table=config.get("table"))


def train_ids(loaded: LoadedDataset) -> list[str]:
    """The id of each training sample: its name (an image's path), else its position."""
    if loaded.train_names is not None:
        return list(loaded.train_names)
    return [str(i) for i in range(len(loaded.train))]


def check_layout(config: dict) -> None:
    """An image folder without ``train/`` draws val and test from its images: deleting files
    would move samples between the splits."""
    if config["dataset"] == "imagefolder" and not (Path(config["data_dir"]) / "train").is_dir():
        raise SftcError(f"--data-dir {config['data_dir']} has no train/ folder: without one, val "
                        "and test are drawn from the images, and deleting a request's files "
                        "would move samples between the splits; put the images under train/ "
                        "(and val/, test/ beside it)")


def choose(loaded: LoadedDataset, subsets: dict, split_seed: int) -> dict:
    """Positions within each part of the samples the deployment uses (stratified subsets drawn
    as ``--train-subset`` etc. draw them, else every sample)."""
    labels, classes = loaded.data.labels, loaded.data.num_classes
    chosen = {}
    for part in ("train", "val", "test"):
        indices = getattr(loaded, part)
        size = subsets.get(part)
        if size:
            if size > len(indices):
                raise SftcError(f"--{part}-subset {size} is more than the {len(indices)} samples "
                                f"of the {part} part")
            picked = stratified_subset(indices, labels, size, classes,
                                       split_seed + SEED_OFFSET[part])
        else:
            picked = indices
        where = {int(v): p for p, v in enumerate(indices.tolist())}
        chosen[part] = [where[int(v)] for v in picked.tolist()]
    return chosen


def build_record(loaded: LoadedDataset, config: dict, chosen: dict) -> dict:
    """``samples.json``: the training samples' ids and content SHA-256, the held-out parts'
    positions and digests."""
    ids = train_ids(loaded)
    index = loaded.train[chosen["train"]]
    digests = sample_digests(loaded.data, index)
    folder = _train_folder(config)
    train = []
    for position, digest in zip(chosen["train"], digests):
        sample = {"id": ids[position], "sha256": digest}
        if folder is not None:
            sample["file_sha256"] = file_sha256(folder / ids[position])
        train.append(sample)
    table = (config.get("table") or {}).get("encoding") or {}
    ids_are = ("path in train/" if folder is not None else
               f"row id (--id-column {table['id_column']})" if table.get("id_column") else
               "row number in the table" if table else "position in the dataset's training part")
    record = {"format": FORMAT, "ids": ids_are, "train": train}
    for part in ("val", "test"):
        idx = getattr(loaded, part)[chosen[part]]
        record[part] = {"positions": chosen[part], "sha256": loaded.data.digest(idx, part)}
    return record


def _train_folder(config: dict) -> Path | None:
    if config["dataset"] != "imagefolder":
        return None
    return Path(config["data_dir"]) / "train"


@dataclass
class Samples:
    """The recorded samples as this load of the data gives them."""

    data: object                      # the loaded ImageData
    index: dict                       # id -> index into data, for the recorded ids present
    val: torch.Tensor
    test: torch.Tensor
    record: dict
    names: Names = field(default_factory=Names)

    @classmethod
    def load(cls, config: dict, record: dict) -> "Samples":
        loaded = load(config)
        where = dict(zip(train_ids(loaded), loaded.train.tolist()))
        index = {s["id"]: where[s["id"]] for s in record["train"] if s["id"] in where}
        held = {}
        for part in ("val", "test"):
            indices, positions = getattr(loaded, part), record[part]["positions"]
            if positions and max(positions) >= len(indices):
                raise SftcError(f"the {part} split has {len(indices)} samples, fewer than when "
                                "the deployment was made; restore it (the audits compare with it)")
            held[part] = indices[positions]
            if loaded.data.digest(held[part], part) != record[part]["sha256"]:
                raise SftcError(f"the {part} split of {config['dataset']} changed since 'deploy "
                                "init' (its SHA-256 differs); restore it: every audit compares "
                                "with it")
        return cls(loaded.data, index, held["val"], held["test"], record)

    @cached_property
    def recorded(self) -> dict:
        """id -> the sample's record (its content SHA-256, and its file's)."""
        return {s["id"]: s for s in self.record["train"]}

    @cached_property
    def sha256(self) -> dict:
        return {i: s["sha256"] for i, s in self.recorded.items()}

    def plain_ids(self, names: list[str]) -> list[str] | None:
        """The plain ids of samples the ledger names (None when one was pseudonymised in
        samples.json by a prune: it cannot be found again)."""
        back = {self.names.of_sample(s): s["id"] for s in self.record["train"]
                if not s.get("pseudonymised")}
        found = [back.get(n) for n in names]
        return None if None in found else found

    def missing(self, ids) -> list[str]:
        return [i for i in ids if i not in self.index]

    def check_unchanged(self, ids: list[str], what: str) -> None:
        """Every sample of ``ids`` is present and holds the content it was trained with."""
        gone = self.missing(ids)
        if gone:
            raise SftcError(f"{len(gone)} {what} are missing from the data (first: {gone[0]}) "
                            "though no request removed them; restore them, or name them in a "
                            "request")
        digests = sample_digests(self.data, torch.tensor([self.index[i] for i in ids]))
        recorded = self.sha256
        changed = [i for i, d in zip(ids, digests) if d != recorded[i]]
        if changed:
            raise SftcError(f"{len(changed)} {what} changed since 'deploy init' (first: "
                            f"{changed[0]}: its content SHA-256 differs); restore the files the "
                            "model was trained on")

    def tensor(self, ids) -> torch.Tensor:
        return torch.tensor(sorted(self.index[i] for i in ids), dtype=torch.long)


def split_of(samples: Samples, train: list[str], forget: list[str], spec: str) -> Split:
    """The split whose training set is ``train`` and forget set ``forget`` (ids), with the
    deployment's validation and test splits."""
    train_idx = samples.tensor(train)
    forget_idx = set(samples.tensor(forget).tolist())
    positions = torch.tensor([p for p, v in enumerate(train_idx.tolist()) if v in forget_idx],
                             dtype=torch.long)
    split = Split.create(samples.data, train_idx, samples.val, samples.test, positions)
    split.forget_spec = spec
    return split


def read_request(path: str | Path, record: dict, pruned=lambda sample: False) -> list[str]:
    """The sample ids a request file names (one per line; blank lines, a UTF-8 byte-order mark
    and ``#`` comments are skipped: a whole line starting with ``#``, or after a digits id, or
    after whitespace that follows an image path, so ``a#1.png`` stays a name; an image path may
    also start with ``train/``), each checked against the record (``pruned(id)``: whether the
    record holds that sample by pseudonym only, removed and pruned)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise SftcError(f"--request {path} does not exist; give a text file naming the "
                        "request's samples, one per line") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SftcError(f"--request {path} is not a readable text file ({exc})") from None
    known = {s["id"] for s in record["train"]}
    paths = record["ids"].startswith("path")
    named = record["ids"].startswith("row id")     # a table's --id-column: names, kept as given
    ids, seen = [], set()
    for number, raw in enumerate(lines, 1):
        text = raw.strip()
        text = INLINE_COMMENT.split(text, 1)[0].strip() if paths else text.split("#", 1)[0].strip()
        if not text or text.startswith("#"):
            continue
        sample = text if named else _normalise(text, paths)
        if not paths and not named and not DIGITS.fullmatch(text):
            raise SftcError(f"--request {path} line {number}: {text!r} is not a sample id (ids "
                            "are positions in the training part, written with the digits 0-9 "
                            "only)")
        if sample not in known and pruned(sample):
            raise SftcError(f"--request {path} line {number}: {text} was removed already by a "
                            "published request (the record keeps it by pseudonym only); leave "
                            "it out of this request")
        if sample not in known:
            kind = "image path relative to train/" if paths else record["ids"]
            raise SftcError(f"--request {path} line {number}: {text} is not a sample of the "
                            f"deployment's training set (ids are the {kind})")
        if sample in seen:
            raise SftcError(f"--request {path} line {number}: {text} is named twice")
        seen.add(sample)
        ids.append(sample)
    if not ids:
        raise SftcError(f"--request {path} names no sample; list the ids to delete, one per line")
    return ids


#: An inline comment after an image path: whitespace, then ``#``.
INLINE_COMMENT = re.compile(r"\s+#")
DIGITS = re.compile(r"[0-9]+")


def _normalise(text: str, paths: bool) -> str:
    if not paths:
        try:
            return str(int(text))
        except ValueError:
            return text
    text = text.replace("\\", "/")
    return text[len("train/"):] if text.startswith("train/") else text
