"""The cache forgets too: when a request is certified, every cached model that trained on a
removed sample, and every cached file of outputs on one, is removed.

What a cache entry trained on and what its logits files are of is recorded beside them, by
content (:mod:`sftc.bench.members`), so the rule is exact and needs no data:

* a model entry whose training members include a removed sample's digest: the whole entry goes
  (model, meta.json, every logits file): its weights carry that sample's influence;
* a logits file whose queried members include one: that file goes (its rows are the model's
  outputs on the removed samples); the model, which never saw them, stays;
* an entry of this dataset whose members are not recorded (written by older code, or an
  interrupted training) goes too, since nothing shows it did not train on them; likewise a
  logits file without its members. Entries of other datasets are left alone.

Removing is enough: sftc keeps nothing else derived from the samples (no decoded images, no
per-sample outputs) anywhere on disk; the deployment folder holds their ids and hashes only.
The plan is computed first and written into the ledger; carrying it out is idempotent, so a
command killed half-way finishes it on the next run. Every item is confined to the cache before
anything is removed: a plain folder name of ``models/`` (no ``..``, no absolute path, no link out)
and a plain file name in it; a plan that names anything else is refused whole.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..bench.cache import safe_name
from ..bench.members import cached_members, members_path
from ..errors import SftcError
from ..io import run_lock


def _entry_dataset(entry: Path) -> str | None:
    try:
        meta = json.loads((entry / "meta.json").read_text())
        return ((meta or {}).get("inputs") or {}).get("dataset")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return None


def _ours(entry: Path, dataset: str) -> bool:
    named = _entry_dataset(entry)
    return named == dataset if named is not None else \
        entry.name.startswith(f"{safe_name(dataset)}-")


def plan(cache_root: Path, removed: set[str], dataset: str) -> list[dict]:
    """What to remove from the cache at ``cache_root`` for the removed samples (their digests,
    full or the cache's 16-digit prefixes), and why."""
    prefixes = {d[:16] for d in removed}
    models = Path(cache_root) / "models"
    found = []
    if not models.is_dir():
        return found
    for entry in sorted(p for p in models.iterdir() if p.is_dir() and not p.name.startswith(".")):
        members = cached_members(entry)
        logits = sorted(members["logits"])
        if members["model"] is None:
            if _ours(entry, dataset):
                found.append(_item(entry, None, "its training members are not recorded (older "
                                   "code, or an interrupted training): it may have trained on "
                                   "a removed sample", len(logits)))
            continue
        hits = sum(1 for d in members["model"] if d in prefixes)
        if hits:
            found.append(_item(entry, None, f"trained on {hits} removed sample(s)", len(logits)))
            continue
        for name in logits:
            queried = members["logits"][name]
            if queried is None:
                found.append(_item(entry, name, "its queried samples are not recorded"))
            else:
                hits = sum(1 for d in queried if d in prefixes)
                if hits:
                    found.append(_item(entry, name, f"holds outputs on {hits} removed "
                                                    "sample(s)"))
    return found


def _item(entry: Path, logits: str | None, why: str, files: int = 0) -> dict:
    if logits is None:
        what = f"model entry (model.pt, meta.json and {files} logits file(s))"
    else:
        what = f"logits file {logits} (outputs of a model that never saw the removed samples)"
    return {"entry": entry.name, "file": logits, "what": what, "why": why}


def _plain(name, what: str, models: Path) -> str:
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name \
            or "\0" in name or Path(name).is_absolute():
        raise SftcError(f"the purge plan names {what} {name!r}, which is not a plain name in the "
                        f"cache {models}: the ledger was edited; nothing was removed")
    return name


def confined(cache_root: Path, items) -> list[tuple[Path, str | None]]:
    """Each item's cache entry and file, checked to lie inside ``cache_root/models`` (its
    resolved path included); one line naming the first that does not, before anything goes."""
    models = Path(cache_root) / "models"
    inside = models.resolve()
    if not isinstance(items, list):
        raise SftcError(f"the purge plan is a {type(items).__name__}, not a list: the ledger was "
                        "edited; nothing was removed")
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise SftcError("the purge plan holds a non-item: the ledger was edited; nothing was "
                            "removed")
        entry = models / _plain(item.get("entry"), "the cache entry", models)
        name = item.get("file")
        if name is not None:
            _plain(name, "the file", models)
        if entry.is_symlink() or (entry.exists() and entry.resolve().parent != inside):
            raise SftcError(f"the purge plan names {entry}, which leads outside the cache "
                            f"{models}: the ledger or the cache was edited; nothing was removed")
        out.append((entry, name))
    return out


def execute(cache_root: Path, items: list[dict]) -> int:
    """Carry out a plan (idempotent: what is gone already is skipped); returns the count of
    items that were still there. Every item is confined first (:func:`confined`)."""
    done = 0
    for entry, name in confined(cache_root, items):
        with run_lock(entry, what="the model cache entry", wait=True):
            if name is None:
                if entry.exists():
                    shutil.rmtree(entry)
                    done += 1
            else:
                target = entry / name
                done += int(target.exists())
                target.unlink(missing_ok=True)
                members_path(target).unlink(missing_ok=True)   # its members file goes with it
    return done
