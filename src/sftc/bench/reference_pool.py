"""The audit's reference models: ordinary training runs on random halves of a sample pool,
cached and keyed by everything that determines them.

LiRA (Carlini et al., S&P 2022) and RMIA (Zarifzadeh et al., ICML 2024) calibrate a target
model's output on a sample against models that did and did not train on it. Here:

* **Pool** = the training set ∪ the test split (the never-seen comparison samples), in that order.
  The **population** (RMIA's z samples, never in any reference's training data) is the
  validation split.
* **Balanced halves.** References come in pairs: reference 2j trains on a random half of the pool
  (drawn from ``seed`` and j) and reference 2j + 1 on the other half. Every pool sample is IN for
  exactly half of K (even) references, so D_f and D_t samples have IN and OUT models alike and the
  attack treats them symmetrically; K = 32 reuses the 16 of K = 16.
* **Recipe** = the original model's (architecture, epochs, learning rate, batch size,
  augmentation; Adam with cosine annealing as ``sftc train``): :class:`ReferenceRecipe`.
* **Cache.** Each reference is one entry ``CACHE_DIR/audit/<dataset>-<model>-<key[:20]>/`` with
  ``model.pt`` (weights only), ``logits.pt`` (its logits on the pool and the population, with the
  dataset indices they belong to) and ``meta.json`` (written last: an entry without it is an
  interrupted one and is trained again). The key is a SHA-256 of: the entry format, the sftc
  version, the dataset's name, classes, input shape and preprocessing, the contents of the
  training, test and validation sets (:meth:`Split.content_sha256`), the queried indices, the
  reference's IN mask, its recipe and training seed, and the fingerprint of the code that trains
  it (:func:`sftc.codeprint.training_code`); an entry for the same reference made by other code
  is left alone, trained again under the new key, and the run says so (a ``StaleCache``
  warning). The forget set is not part of it: one pool
  serves every forget set of the same data. An entry that exists but was not written by this code
  for this key is refused in one line (remove it or choose another cache directory), never
  silently used or overwritten.
"""
from __future__ import annotations

import hashlib
import json
import math
import warnings
import time
from dataclasses import asdict, dataclass, field
from io import BytesIO
from pathlib import Path

import numpy as np
import torch

from .. import distributed
from ..checkpoints import save_state_dict
from ..codeprint import StaleCache, training_code
from ..data import Split
from ..errors import SftcError
from ..fingerprint import input_shape
from ..io import atomic_write_bytes, atomic_write_json, run_lock
from ..models import canonical_model_name
from .cache import default_cache_dir, safe_name

FORMAT = "sftc-audit-reference/1"


@dataclass(frozen=True)
class ReferenceRecipe:
    """How each reference model is trained: the original model's recipe (``sftc train``: Adam,
    cosine annealing). ``source`` says where it came from and is not part of the key."""

    model: str = "small-cnn"
    epochs: int = 30
    lr: float = 1e-3
    batch_size: int = 64
    augment: bool = False
    source: str = "defaults"

    def __post_init__(self):
        object.__setattr__(self, "model", canonical_model_name(self.model))
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise SftcError(f"reference epochs must be a whole number 1 or more, got "
                            f"{self.epochs!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise SftcError(f"reference learning rate must be a positive number, got {self.lr!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise SftcError(f"reference batch size must be a whole number 1 or more, got "
                            f"{self.batch_size!r}")

    def key_dict(self) -> dict:
        d = asdict(self)
        del d["source"]
        d["lr"] = float(self.lr)
        return {**d, "optimizer": "adam", "scheduler": "cosine"}

    @classmethod
    def from_record(cls, record: dict | None, model: str, **overrides) -> "ReferenceRecipe":
        """The recipe of a run record (``run.json`` beside the original, its ``config``), with
        ``overrides`` (values not None) taking precedence; ``source`` says which was used."""
        config = (record or {}).get("config") or {}
        values, sources = {"model": model}, []
        for name, default in (("epochs", 30), ("lr", 1e-3), ("batch_size", 64),
                              ("augment", False)):
            if overrides.get(name) is not None:
                values[name] = overrides[name]
                sources.append("options")
            elif config.get(name) is not None:
                values[name] = config[name]
                sources.append("run.json beside the original")
            else:
                values[name] = default
                sources.append("defaults")
        source = ", ".join(dict.fromkeys(sources))
        if record is not None and config.get("subset") not in (None, "train"):
            source += " (note: that run.json is not an original model's)"
        return cls(values["model"], int(values["epochs"]), float(values["lr"]),
                   int(values["batch_size"]), bool(values["augment"]), source)


def pool_indices(split: Split) -> tuple[torch.Tensor, torch.Tensor]:
    """(pool, population): dataset indices of train ∪ test, and of the validation split."""
    return torch.cat([split.train.cpu(), split.test.cpu()]), split.val.cpu()


def half_masks(n_pool: int, references: int, seed: int = 0) -> np.ndarray:
    """IN masks [references, n_pool]: pairs of complementary random halves (``references`` even)."""
    check_reference_count(references)
    masks = np.zeros((references, n_pool), dtype=bool)
    for pair in range(references // 2):
        rng = np.random.default_rng(np.random.SeedSequence([seed, pair, 0x4A1F]))
        order = rng.permutation(n_pool)
        masks[2 * pair, order[: n_pool // 2]] = True
        masks[2 * pair + 1] = ~masks[2 * pair]
    return masks


def reference_seed(seed: int, k: int) -> int:
    """The training seed of reference ``k`` (initialisation and batch order)."""
    return int(np.random.SeedSequence([seed, k, 0x5EED]).generate_state(1)[0])


def check_reference_count(references) -> int:
    if isinstance(references, bool) or not isinstance(references, (int, np.integer)) \
            or references < 2 or references % 2:
        raise SftcError(f"--references must be an even number 2 or more (every sample is IN for "
                        f"half of them), got {references!r}")
    return int(references)


def _sha(array) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


@dataclass
class ReferenceLogits:
    """The references' logits where the audit queries them, and who trained on what.

    ``index``: dataset indices of the columns (the pool, then the population); ``logits``:
    float32 [K, len(index), C]; ``in_mask``: bool [K, n_pool] over the pool's columns.
    """

    index: torch.Tensor
    logits: torch.Tensor
    in_mask: np.ndarray
    n_pool: int
    entries: list[dict] = field(default_factory=list)

    def columns(self, dataset_indices: torch.Tensor) -> np.ndarray:
        """Column positions of ``dataset_indices`` (each must be pool or population)."""
        lookup = {int(v): i for i, v in enumerate(self.index.tolist())}
        try:
            return np.array([lookup[int(v)] for v in dataset_indices.tolist()], dtype=np.int64)
        except KeyError as missing:
            raise SftcError(f"sample {missing} is neither in the reference pool (train ∪ test) "
                            "nor in the population (validation): the references cannot score "
                            "it") from None


class ReferencePool:
    """Reference models for ``split`` trained with ``recipe``, from the cache or trained now."""

    def __init__(self, split: Split, recipe: ReferenceRecipe, *, cache_dir=None, seed: int = 0,
                 device: str = "auto", progress: bool = True, accel=None):
        self.split = split
        self.recipe = recipe
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.seed = seed
        self.device = device
        self.progress = progress
        self.accel = accel      # the engine's speed options (None: auto); not part of the key
        self.pool, self.population = pool_indices(split)
        self.index = torch.cat([self.pool, self.population])
        self._base: dict | None = None

    # -- keys ------------------------------------------------------------------------------
    def _base_inputs(self) -> dict:
        if self._base is None:
            from .. import __version__

            data, split = self.split.data, self.split
            self._base = {
                "format": FORMAT, "sftc": __version__, "dataset": data.name,
                "num_classes": data.num_classes, "input_shape": input_shape(split),
                "mean": list(data.mean or ()), "std": list(data.std or ()),
                "train_sha256": split.content_sha256("train"),
                "test_sha256": split.content_sha256("test"),
                "population_sha256": split.content_sha256("val"),
                "index_sha256": _sha(self.index.numpy().astype("<i8")),
                "recipe": self.recipe.key_dict(), "pool_seed": self.seed,
                "code": training_code(self.recipe.model).sha256}
        return self._base

    def key_inputs(self, k: int, mask: np.ndarray) -> dict:
        return {**self._base_inputs(), "reference": k, "mask_sha256": _sha(mask),
                "train_seed": reference_seed(self.seed, k)}

    @staticmethod
    def key(inputs: dict) -> str:
        return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()

    def entry_dir(self, key: str) -> Path:
        return self.cache_dir / "audit" / f"{self._prefix()}{key[:20]}"

    def _prefix(self) -> str:
        return f"{safe_name(self.split.data.name)}-{safe_name(self.recipe.model)}-"

    def _identity(self, inputs: dict) -> str:
        """The key of a reference's inputs without its code (the same for a stale entry)."""
        return self.key({k: v for k, v in inputs.items() if k not in ("code", "sftc")})

    def stale(self, inputs: list[dict]) -> list[list[str]]:
        """What changed, for each of these references that the cache holds only as made by other
        code (the same inputs but the code; older entries of one reference count once, their
        changes together)."""
        identities = {self._identity(i) for i in inputs}
        keys = {self.key(i) for i in inputs}
        code = training_code(self.recipe.model)
        found: dict[str, set[str]] = {}
        for meta_path in sorted((self.cache_dir / "audit").glob(f"{self._prefix()}*/meta.json")):
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                continue
            theirs = meta.get("inputs") if isinstance(meta, dict) else None
            if isinstance(theirs, dict) and meta.get("key") not in keys \
                    and self._identity(theirs) in identities:
                found.setdefault(self._identity(theirs), set()).update(
                    code.changes(meta.get("code")) or [])
        return [sorted(changes) for changes in found.values()]

    # -- entries ---------------------------------------------------------------------------
    def _foreign(self, entry: Path, why: str) -> SftcError:
        return SftcError(f"reference cache entry {entry} was not written by this sftc for this "
                         f"reference ({why}); remove it (rm -r {entry}) or pass another "
                         "--cache-dir")

    def lookup(self, key: str) -> tuple[torch.Tensor, dict] | None:
        """The cached logits and meta of ``key``; None when absent or interrupted; refused when
        the entry holds something else."""
        entry = self.entry_dir(key)
        meta_path = entry / "meta.json"
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise self._foreign(entry, "its meta.json is not readable JSON") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise self._foreign(entry, f"its meta.json is not of format {FORMAT}")
        if meta.get("key") != key:
            raise self._foreign(entry, "its key differs")
        try:
            stored = torch.load(entry / "logits.pt", map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a corrupt or unsafe file
            raise self._foreign(entry, f"logits.pt does not load: {type(exc).__name__}") from None
        shape = (len(self.index), self.split.data.num_classes)
        if not (isinstance(stored, dict) and isinstance(stored.get("logits"), torch.Tensor)
                and isinstance(stored.get("index"), torch.Tensor)
                and tuple(stored["logits"].shape) == shape
                and torch.equal(stored["index"].long(), self.index)
                and bool(torch.isfinite(stored["logits"]).all())):
            raise self._foreign(entry, f"logits.pt is not {shape[0]}x{shape[1]} finite logits of "
                                       "this pool")
        return stored["logits"].float(), meta

    def _train(self, k: int, mask: np.ndarray, key: str, inputs: dict) -> tuple[torch.Tensor, dict]:
        from .. import api
        from ..engine import predict_logits, resolve_device
        from ..records import machine

        entry = self.entry_dir(key)
        with run_lock(entry, what="the reference cache entry", wait=True):
            found = self.lookup(key)
            if found is not None:
                return found
            members = self.pool[torch.from_numpy(mask)]
            empty = members[:0]
            half = Split(self.split.data, members, members, empty, self.split.val,
                         self.split.test, empty, forget_spec="none (reference model)")
            r = self.recipe
            result = api.train(half, r.model, epochs=r.epochs, lr=r.lr, batch_size=r.batch_size,
                               seed=inputs["train_seed"], device=self.device, augment=r.augment,
                               progress=False, accel=self.accel)
            device = resolve_device(self.device)
            logits = predict_logits(result.model, self.split.data, self.index.to(device),
                                    device).float().cpu()
            save_state_dict(result.model, entry / "model.pt")
            buffer = BytesIO()
            torch.save({"index": self.index.clone(), "logits": logits}, buffer)
            atomic_write_bytes(entry / "logits.pt", buffer.getvalue())
            meta = {"format": FORMAT, "key": key, "inputs": inputs,
                    "code": training_code(self.recipe.model).to_dict(), "seconds": result.seconds,
                    "members": int(mask.sum()), "device": str(device), "machine": machine(),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            atomic_write_json(entry / "meta.json", meta)
        return logits, meta

    def get(self, references: int) -> ReferenceLogits:
        """The logits of references 0 .. ``references`` − 1, training those the cache lacks
        (with a progress bar: models done, rate, ETA). Under torchrun every rank must call it:
        each trains its share of the missing references, and all return every reference."""
        from tqdm.auto import tqdm

        references = check_reference_count(references)
        masks = half_masks(len(self.pool), references, self.seed)
        plans = []
        for k in range(references):
            inputs = self.key_inputs(k, masks[k])
            plans.append((k, inputs, self.key(inputs)))
        found = {k: self.lookup(key) for k, _, key in plans}
        missing = [p for p in plans if found[p[0]] is None]
        stale = self.stale([inputs for _, inputs, _ in missing]) if missing else []
        if stale:
            changed = sorted({c for changes in stale for c in changes})
            warnings.warn(StaleCache(
                f"{len(stale)} audit reference model(s) in {self.cache_dir / 'audit'} were trained "
                f"by other code (changed: {', '.join(changed[:4])}); training them again"),
                stacklevel=2)
        spread = distributed.active()   # under torchrun: each rank trains its share
        share = distributed.mine(distributed.share(missing)) if spread else missing
        bar = tqdm(total=references, initial=references - len(missing), unit="model",
                   desc="reference models", dynamic_ncols=True,
                   disable=not self.progress or not missing or not distributed.is_main())
        try:
            for k, inputs, key in share:
                bar.set_postfix_str(f"training #{k}")
                logits, meta = self._train(k, masks[k], key, inputs)
                found[k] = (logits, {**meta, "trained_now": True})
                bar.update(1)
        finally:
            bar.close()
        if spread:
            distributed.barrier("training the audit's reference models")
            for k, _, key in missing:
                if found[k] is None:   # trained by another rank of this job
                    logits, meta = self.lookup(key)
                    found[k] = (logits, {**meta, "trained_now": True})
        entries = [{"reference": k, "key": key, "entry": str(self.entry_dir(key)),
                    "cached": not found[k][1].get("trained_now", False),
                    "seconds": found[k][1].get("seconds"), "members": int(masks[k].sum())}
                   for k, _, key in plans]
        logits = torch.stack([found[k][0] for k in range(references)])
        return ReferenceLogits(self.index, logits, masks, len(self.pool), entries)
