"""Retention as a policy: what a deployment keeps of the versions that still hold removed samples.

Every version before the published one was made before at least one later request was applied:
its weights still carry those samples. The policy recorded at ``deploy init --keep`` says what
stays once a later version is published:

* ``published`` (the default): only the published version. Earlier versions and the audits of
  refused attempts are removed; the cache purge is run again. Earlier requests are no longer
  re-audited (their re-audit needs the version that still held them); their last verdict stays.
* ``last:N``: the N newest versions (the published one included), and the attempts made since the
  oldest of them was published. Re-audits continue while the version they need is kept.
* ``all``: nothing is removed (the operator's own retention rule applies).

What is removed is listed in a ``pruned`` ledger entry first (each version's files with their
SHA-256, which stay in the ledger, and why), carried out (idempotent), then acknowledged by the
pointer, so ``verify`` still checks the chain and a ``kill -9`` is finished by the next command.
The samples of published requests are renamed to their pseudonyms in ``samples.json`` too (the
entry records its new SHA-256), so the deployment keeps no plain name of a removed sample.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

from ..errors import SftcError
from ..io import atomic_write_text, file_sha256
from . import purge
from .folder import Deployment, History, fault_point
from .names import Names
from .publish import advance_pointer, removed_digests

KEEP = re.compile(r"published|all|last:([1-9][0-9]{0,5})")
SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")      # a name inside one folder, never '..'



def check_keep(text: str) -> str:
    if not KEEP.fullmatch(text or ""):
        raise SftcError(f"--keep {text!r}: give published (only the published version), all, or "
                        "last:N (the N newest versions, N >= 1)")
    return text


def kept_versions(keep: str, published: list[int]) -> set[int]:
    """The version numbers a policy keeps, given every version so far (0 first)."""
    if keep == "all":
        return set(published)
    n = 1 if keep == "published" else int(keep.split(":")[1])
    return set(published[-n:])


def pruned_versions(history: History) -> set[int]:
    return {v["version"] for e in history.entries if e["kind"] == "pruned"
            for v in e["payload"]["versions"]}


def pruned_attempts(history: History) -> set[str]:
    return {a["attempt"] for e in history.entries if e["kind"] == "pruned"
            for a in e["payload"]["attempts"]}


def due(history: History) -> tuple[str, list[int], list[dict]]:
    """(policy, versions, refused entries) the recorded policy removes now, from the ledger
    alone (the same on every read, before or after a prune killed half-way)."""
    keep = (history.init.get("retention") or {}).get("keep", "all")
    versions = [0, *(p["version"] for p in history.published)]
    kept = kept_versions(keep, versions)
    gone = pruned_versions(history)
    drop = [v for v in versions if v not in kept and v not in gone]
    oldest = min(kept)
    since = next((e["seq"] for e in history.entries if e["kind"] == "published"
                  and e["payload"]["version"] == oldest), 0) if oldest else 0
    done = pruned_attempts(history)
    attempts = [e for e in history.entries if e["kind"] == "refused" and keep != "all"
                and e["seq"] < since and e["payload"]["attempt"] not in done]
    return keep, drop, attempts


def check_pending(entries: list[dict]) -> None:
    """A ``pruned`` entry beyond the pointer (never acknowledged) is carried out only when it
    removes exactly what the policy says of the acknowledged ledger, and cache items by plain
    names: a forged entry cannot make a command delete anything else."""
    entry, payload = entries[-1], entries[-1].get("payload") or {}
    _, drop, attempts = due(History(entries[:-1]))
    versions = [v.get("version") for v in payload.get("versions") or []]
    named = [a.get("attempt") for a in payload.get("attempts") or []]
    plain = all(isinstance(i.get("entry"), str) and SAFE.fullmatch(i["entry"]) and
                (i.get("file") is None or isinstance(i["file"], str) and SAFE.fullmatch(i["file"]))
                for i in payload.get("cache") or [])
    if versions != drop or named != [e["payload"]["attempt"] for e in attempts] or not plain:
        raise SftcError(f"entry {entry.get('seq')} (pruned) lies beyond the published pointer "
                        "and is not what the deployment's retention policy removes: the ledger "
                        "was edited; nothing was removed")


def plan(dep: Deployment, history: History, names: Names) -> dict | None:
    """What the recorded policy removes now (None when nothing is due)."""
    keep, drop, attempts = due(history)
    renamed = _renamed_samples(dep, history, names, set(drop))
    if not drop and not attempts and renamed is None:
        return None
    files = {f"v{v}": _version_files(history, v) for v in drop}
    return {"keep": keep, "published": history.version,
            "why": f"--keep {keep} (recorded at init): versions before v{history.version} still "
                   "hold samples of later requests",
            "versions": [{"version": v, "path": f"versions/v{v}", "files": files[f"v{v}"]}
                         for v in drop],
            "attempts": [{"attempt": e["payload"]["attempt"], "entry": e["seq"],
                          "files": e["payload"]["files"]} for e in attempts],
            "samples": renamed}


def _version_files(history: History, version: int) -> dict:
    if version == 0:
        return {"model.pt": history.init["model"]["sha256"]}
    return next(p["files"] for p in history.published if p["version"] == version)


def _renamed_samples(dep: Deployment, history: History, names: Names,
                     dropped: set[int] = frozenset()) -> dict | None:
    """samples.json with the samples of every request that can no longer be re-audited (the
    version before it is pruned) under their pseudonyms (None when nothing changes)."""
    if names.key is None:
        return None
    gone = pruned_versions(history) | set(dropped)
    removed = {s["id"] for p in history.published if p["version"] - 1 in gone
               for s in p["removed"]}
    record = json.loads(dep.samples_path.read_text())
    changed = False
    for sample in record["train"]:
        if not sample.get("pseudonymised") and names.sample(sample["id"]) in removed:
            sample.update(id=names.sample(sample["id"]), pseudonymised=True)
            changed = True
    return {"record": record} if changed else None


def apply(dep: Deployment, entries: list[dict], pointer: dict, names: Names, say) -> dict | None:
    """Plan, record, carry out and acknowledge the policy's prune (under the lock)."""
    history = History(entries)
    todo = plan(dep, history, names)
    if todo is None:
        return None
    samples = todo.pop("samples")
    if samples is not None:
        todo["samples"] = {"file": "samples.json", "sha256": _sha256(_json(samples["record"])),
                           "renamed": sum(s.get("pseudonymised", False)
                                          for s in samples["record"]["train"])}
    todo["cache"] = purge.plan(history.init["cache_dir"], removed_digests(entries),
                               history.init["data"]["dataset"])
    entry = dep.ledger.append(entries, "pruned", todo)
    fault_point("after-prune-entry")
    finish(dep, entries, entry, names)
    advance_pointer(dep, entries, pointer)
    say(summary(entry["payload"]))
    return entry


def finish(dep: Deployment, entries: list[dict], entry: dict, names: Names) -> None:
    """Carry out a ``pruned`` entry (idempotent; also when resuming after a kill)."""
    payload = entry["payload"]
    folders = [_inside(dep, dep.versions, f"v{item['version']}", item["version"])
               for item in payload["versions"]]
    folders += [_inside(dep, dep.attempts, _attempt_name(item["attempt"]), item["attempt"])
                for item in payload["attempts"]]
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    history = History(entries)
    purge.execute(history.init["cache_dir"], payload["cache"])
    wanted = (payload.get("samples") or {}).get("sha256")
    if wanted and file_sha256(dep.samples_path) != wanted:
        renamed = _renamed_samples(dep, history, names)
        text = _json(renamed["record"]) if renamed else None
        if text is None or _sha256(text) != wanted:
            raise SftcError(f"{dep.samples_path} does not match entry {entry['seq']} (pruned); "
                            "restore it from a backup")
        atomic_write_text(dep.samples_path, text)


def _attempt_name(recorded) -> str | None:
    text = recorded if isinstance(recorded, str) else ""
    return text[len("attempts/"):] if text.startswith("attempts/") else None


def _inside(dep: Deployment, parent: Path, name: str | None, recorded) -> Path:
    """``parent/name`` when it names one folder directly inside ``parent`` (a version number, an
    attempt's folder), else a one-line refusal: the ledger was edited."""
    if not (isinstance(name, str) and SAFE.fullmatch(name)) or isinstance(recorded, bool) \
            or (parent == dep.versions and not isinstance(recorded, int)):
        raise SftcError(f"the ledger names {recorded!r} to prune, not a folder of the "
                        f"deployment's {parent.name}/: the ledger was edited; nothing was removed")
    return parent / name


def _json(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=False) + "\n"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def summary(payload: dict) -> str:
    versions = ", ".join(f"v{v['version']}" for v in payload["versions"]) or "no version"
    return (f"pruned under --keep {payload['keep']}: {versions}, "
            f"{len(payload['attempts'])} attempt(s), {len(payload['cache'])} cache item(s) "
            "(their SHA-256 stay in the ledger)")
