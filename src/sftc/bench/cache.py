"""One cache for every model sftc trains from scratch: the benchmark's originals M and oracles
M_R, the forgetting score's N originals and N oracles, and the audit's reference models.

A model is keyed by everything that determines it, and by nothing else:

* the data it trained on, by **content**: the SHA-256 of the training subset's inputs and labels
  in order (:meth:`Split.content_sha256`), with the dataset's name, classes, input shape and
  preprocessing; not the split's other parts (an oracle of D_r is the same model whatever else
  the split holds, and stays valid when the files of removed samples are deleted);
* its :class:`~sftc.recipes.TrainingRecipe` (architecture, epochs, learning rate, batch size,
  augmentation, optimiser, scheduler) and its training seed;
* the fingerprint of the code that trains it (:func:`sftc.codeprint.training_code`; for a batched
  model also :mod:`sftc.engine.batched` and :mod:`sftc.bench.grouped`);
* the numerics it was trained with (:func:`sftc.engine.numerics_identity`: device and its name,
  torch version, thread count, deterministic flags, the engine's speed choices; for a batched
  model its group; the same recipe on another device or thread count rounds differently, so the
  same key always means the same bits).

Never by an object's identity. An entry for the same model made by other code is *stale*: it is
left alone, a new one is trained, and the run says so (one line). An entry whose ``meta.json``
does not belong to its key (written by other code or by hand) is refused in one line naming it.

Layout: ``CACHE_DIR/models/<dataset>-<model>-<key[:20]>/``: ``model.pt`` (weights only),
``logits-<index[:16]>.pt`` (its logits on a queried set of samples, computed once) with
``logits-<index[:16]>.members.json`` beside it (written first), and ``meta.json``, written last
(an entry without it is an interrupted one and is trained again).

**Members.** ``meta.json`` lists the per-sample content digests of the training subset, and each
logits file's ``.members.json`` those of its queried samples (:mod:`sftc.bench.members`): what a
deletion must purge is then known exactly, by content, after the data itself is gone (``sftc
deploy`` removes every entry that trained on, and every logits file that holds outputs of, a
removed sample).
"""
from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoints import load_into, save_state_dict
from ..codeprint import CodePrint, StaleCache, code_print, combine, training_code
from ..data import Split
from ..errors import SftcError
from ..fingerprint import input_shape
from ..io import atomic_write_json, run_lock
from ..models import create_model
from ..recipes import OPTIMIZER, SCHEDULER, TrainingRecipe
from .members import members_record

FORMAT = "sftc-model/2"


def default_cache_dir() -> Path:
    """``$SFTC_CACHE_DIR``, else ``$XDG_CACHE_HOME/sftc/references``, else
    ``~/.cache/sftc/references`` (:func:`sftc.settings.cache_root`)."""
    from ..settings import cache_root

    return cache_root()


def split_fingerprint(split: Split) -> str:
    """SHA-256 of the samples, labels and index sets of a split (what the data contributes).

    Computed from the split's contents every time (the index sets are small); only the data's
    own digest, which reads every sample, is kept, on the split itself. Never keyed by an
    object's identity: a split garbage-collected and another created can share an ``id``."""
    h = hashlib.sha256(split.data_fingerprint().encode())
    for name in ("train", "retain", "forget", "val", "test"):
        h.update(name.encode())
        h.update(split.indices(name).cpu().numpy().astype("<i8").tobytes())
    return h.hexdigest()


def numerics(device: str = "auto", accel=None) -> dict:
    """What rounds a training run's floats besides its inputs and code
    (:func:`sftc.engine.numerics_identity`: the device and its name, torch's version and thread
    count, the deterministic flags, the engine's speed choices), read where the model trains."""
    from ..engine import Accel, numerics_identity, resolve_device

    return numerics_identity(resolve_device(device), Accel.parse(accel))


@dataclass(frozen=True)
class TrainSpec:
    """A model trained from scratch: a recipe, the subset it trains on (``train``: an original;
    ``retain``: an oracle) and a seed."""

    recipe: TrainingRecipe
    subset: str
    seed: int
    #: the seeds of the models trained with it as one batched computation, itself included, in
    #: their order (:mod:`sftc.engine.batched`); () when trained alone. Part of its numerics:
    #: a batched model rounds differently, and its bits are fixed by its group and slot.
    group: tuple = ()

    def __post_init__(self):
        if self.subset not in ("train", "retain"):
            raise SftcError(f"a cached model trains on train or retain, got {self.subset!r}")
        if (self.recipe.optimizer, self.recipe.scheduler) != (OPTIMIZER, SCHEDULER):
            raise SftcError(f"models trained from scratch use the paper's {OPTIMIZER} with "
                            f"{SCHEDULER} annealing, not {self.recipe.optimizer} with "
                            f"{self.recipe.scheduler}; keep the recipe's defaults")
        if self.group and (self.seed not in self.group or len(set(self.group)) != len(self.group)):
            raise SftcError(f"a batched model's group lists distinct seeds, its own ({self.seed}) "
                            f"among them; got {self.group!r}")

    @property
    def numerics_extra(self) -> dict:
        """What batching adds to the numerics: the group's seeds and this model's slot."""
        if not self.group:
            return {}
        return {"batched": {"seeds": [int(s) for s in self.group],
                            "slot": self.group.index(self.seed)}}

    @property
    def role(self) -> str:
        return "oracle M_R" if self.subset == "retain" else "original M"

    def code(self) -> CodePrint:
        """The fingerprint of the code that trains it (the batched path's too, when batched)."""
        plain = training_code(self.recipe.model)
        if self.recipe.dp_epsilon is not None:   # trained by sftc.dp
            plain = combine(plain, code_print("sftc.dp"))
        if not self.group:
            return plain
        return combine(plain, code_print("sftc.engine.batched", "sftc.bench.grouped"))

    def key_inputs(self, split: Split, device: str = "auto", accel=None) -> dict:
        data = split.data
        return {"format": FORMAT, "dataset": data.name, "num_classes": data.num_classes,
                "input_shape": input_shape(split), "mean": list(data.mean or ()),
                "std": list(data.std or ()), "data": split.content_sha256(self.subset),
                "size": int(len(split.indices(self.subset))), "recipe": self.recipe.key_dict(),
                "seed": int(self.seed),
                "numerics": {**numerics(device, accel), **self.numerics_extra},
                "code": self.code().sha256}


def _digest(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def identity_key(inputs: dict) -> str:
    """The key of what determines a model besides its code (the same for stale entries)."""
    return _digest({k: v for k, v in inputs.items() if k != "code"})


def safe_name(text: str) -> str:
    """``text`` as one file-name component (a model spec such as ``my_pkg.models:make`` too)."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)[:60]


@dataclass
class Cached:
    """A model from the cache (or trained now and stored)."""

    model: torch.nn.Module
    seconds: float          # training wall time (the oracle's is the denominator of the time ratio)
    history: list
    cached: bool            # True when loaded from the cache rather than trained now
    key: str
    path: Path
    spec: TrainSpec | None = None


Reference = Cached          # the earlier name (the benchmark's M and M_R)


class ModelCache:
    """The cache of trained models under ``root`` (default :func:`default_cache_dir`)."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()

    def entry_dir(self, spec: TrainSpec, split: Split, key: str) -> Path:
        return self.root / "models" / f"{self._prefix(spec, split)}{key[:20]}"

    @staticmethod
    def _prefix(spec: TrainSpec, split: Split) -> str:
        return f"{safe_name(split.data.name)}-{safe_name(spec.recipe.model)}-"

    def _foreign(self, entry: Path, why: str) -> SftcError:
        return SftcError(f"cache entry {entry} was not written by this sftc for this model "
                         f"({why}); remove it (rm -r {entry}) or pass another --cache-dir")

    def _meta(self, entry: Path, key: str) -> dict | None:
        path = entry / "meta.json"
        if not path.is_file():
            return None
        try:
            meta = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise self._foreign(entry, "its meta.json is not readable JSON") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise self._foreign(entry, f"its meta.json is not of format {FORMAT}")
        if meta.get("key") != key:
            raise self._foreign(entry, "its key differs")
        if not (entry / "model.pt").is_file():
            return None
        return meta

    def lookup(self, spec: TrainSpec, split: Split, device: str = "auto",
               accel=None) -> Cached | None:
        """The cached model of ``spec`` on ``split``, or None."""
        inputs = spec.key_inputs(split, device, accel)
        key = _digest(inputs)
        entry = self.entry_dir(spec, split, key)
        meta = self._meta(entry, key)
        if meta is None:
            return None
        model = create_model(spec.recipe.model, in_channels=split.data.in_channels,
                             num_classes=split.data.num_classes, seed=spec.seed)
        load_into(model, entry / "model.pt", model_name=spec.recipe.model)
        return Cached(model, float(meta["seconds"]), meta.get("history", []), True, key, entry,
                      spec)

    def stale(self, spec: TrainSpec, split: Split, device: str = "auto",
              accel=None) -> list[tuple[Path, list]]:
        """Entries for the same model made by other code, with what changed."""
        inputs = spec.key_inputs(split, device, accel)
        key, identity = _digest(inputs), identity_key(inputs)
        code = spec.code()
        found = []
        for path in sorted((self.root / "models").glob(f"{self._prefix(spec, split)}*/meta.json")):
            try:
                meta = json.loads(path.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                continue
            theirs = meta.get("inputs") if isinstance(meta, dict) else None
            if isinstance(theirs, dict) and meta.get("key") != key \
                    and identity_key(theirs) == identity:
                found.append((path.parent, code.changes(meta.get("code")) or []))
        return found

    def get(self, spec: TrainSpec, split: Split, *, device: str = "auto", progress: bool = False,
            accel=None, log=None) -> Cached:
        """The model of ``spec`` on ``split``: from the cache, or trained now and stored. Two runs
        that need the same entry train it once: the second waits, then loads it."""
        if spec.group:    # a batched model is made only with its group
            group = [TrainSpec(spec.recipe, spec.subset, s, spec.group) for s in spec.group]
            return self.get_many(group, split, device=device, progress=progress, accel=accel,
                                 log=log)[spec.group.index(spec.seed)]
        found = self.lookup(spec, split, device, accel)
        if found is not None:
            return found
        inputs = spec.key_inputs(split, device, accel)
        key = _digest(inputs)
        entry = self.entry_dir(spec, split, key)
        with run_lock(entry, what="the model cache entry", wait=True):
            found = self.lookup(spec, split, device, accel)
            if found is not None:
                return found
            stale = self.stale(spec, split, device, accel)
            if stale:
                say(log, f"the {spec.role} of seed {spec.seed} cached in {stale[0][0]} was "
                         f"trained by other code (changed: {', '.join(stale[0][1][:4])}); "
                         "training it again")
            from .grouped import train_one

            result = train_one(spec.recipe, spec.subset, spec.seed, split, device, progress, accel)
            return self._store(spec, split, device, result.model, result.history, accel=accel)

    def _store(self, spec: TrainSpec, split: Split, device: str, model: torch.nn.Module,
               history, extra: dict | None = None, accel=None) -> Cached:
        """Write a trained model's entry (``model.pt``, then ``meta.json`` last)."""
        from ..records import machine

        inputs = spec.key_inputs(split, device, accel)
        key = _digest(inputs)
        entry = self.entry_dir(spec, split, key)
        save_state_dict(model, entry / "model.pt")
        atomic_write_json(entry / "meta.json", {
            "format": FORMAT, "key": key, "inputs": inputs, "role": spec.role,
            "code": spec.code().to_dict(), "seconds": history.seconds,
            "history": history.rows, "machine": machine(), **(extra or {}),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "members": members_record(split.data, split.indices(spec.subset))})
        return Cached(model, history.seconds, history.rows, False, key, entry, spec)

    def get_many(self, specs: list[TrainSpec], split: Split, *, device: str = "auto",
                 progress: bool = False, accel=None, log=None) -> list[Cached]:
        """The models of ``specs``. A batched group (each spec's ``group`` the seeds of
        ``specs``, in order) comes from the cache, or its missing entries are trained now
        together (:func:`sftc.engine.batched.train_group`: the whole group, since a model's bits
        depend on its group) and each stored as :meth:`get` stores one. Specs without a group:
        :meth:`get` for each. The group's lock is its first entry's."""
        if not specs or not specs[0].group:
            return [self.get(s, split, device=device, progress=progress, accel=accel, log=log)
                    for s in specs]
        seeds = tuple(s.seed for s in specs)
        if any(s.group != seeds or (s.recipe, s.subset) != (specs[0].recipe, specs[0].subset)
               for s in specs):
            raise SftcError("get_many() takes one batched group: specs of one recipe and subset "
                            "whose group is their seeds, in order")
        found = [self.lookup(s, split, device, accel) for s in specs]
        if all(f is not None for f in found):
            return found
        first = self.entry_dir(specs[0], split, cache_key(specs[0], split, device, accel))
        with run_lock(first, what="the model cache entry", wait=True):
            found = [self.lookup(s, split, device, accel) for s in specs]
            if all(f is not None for f in found):
                return found
            stale = [st for s, f in zip(specs, found) if f is None
                     for st in self.stale(s, split, device, accel)]
            if stale:
                say(log, f"{len(stale)} {specs[0].role} model(s) of this batched group cached in "
                         f"{stale[0][0].parent} were trained by other code (changed: "
                         f"{', '.join(stale[0][1][:4])}); training the group again")
            from .grouped import train_group

            trained = train_group(specs[0].recipe, specs[0].subset, seeds, split, device, accel)
            return [f if f is not None else self._store(
                        s, split, device, model, history,
                        {"batched": {"models": len(specs), "slot": i, "vmap": True}}, accel)
                    for i, (s, f, (model, history)) in enumerate(zip(specs, found, trained))]

    def logits(self, cached: Cached, split: Split, index: torch.Tensor,
               device: str = "auto") -> tuple[torch.Tensor, bool]:
        """The cached model's logits on the samples at ``index`` (float32, CPU), from its entry
        or computed now and stored beside it (:mod:`sftc.bench.entry_logits`); returns them with
        whether they were cached."""
        from .entry_logits import entry_logits

        return entry_logits(cached, split, index, device, self._foreign)

def say(log, text: str) -> None:
    """``log(text)``, or a :class:`~sftc.codeprint.StaleCache` warning without a ``log``."""
    if log is not None:
        log(text)
    else:
        warnings.warn(StaleCache(text), stacklevel=3)


# -- the benchmark's earlier functions, on the one cache ------------------------------------------

def cache_key(spec: TrainSpec, split: Split, device: str = "auto", accel=None) -> str:
    return _digest(spec.key_inputs(split, device, accel))


def lookup(cache_dir, spec: TrainSpec, split: Split, device: str = "auto",
           accel=None) -> Cached | None:
    return ModelCache(cache_dir).lookup(spec, split, device, accel)


def get_or_train(cache_dir, spec: TrainSpec, split: Split, device: str = "auto",
                 progress: bool = False, log=None, accel=None) -> Cached:
    return ModelCache(cache_dir).get(spec, split, device=device, progress=progress, log=log,
                                     accel=accel)
