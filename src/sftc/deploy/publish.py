"""Publishing a certified version: the ledger entry (with the cache purge planned in it), the
purge carried out, and the published pointer moved, in that order.

The steps of ``deploy forget`` and what a ``kill -9`` between them leaves:

1. ``intent`` entry appended (write-ahead: the request, its samples' hashes, the parent version);
2. the new version built and audited in ``.work/vN/``, ``outcome.json`` written last;
3. ``.work/vN`` renamed to ``versions/vN`` (one ``rename``: the folder is whole or absent);
4. ``published`` entry appended: the outcome and the purge plan;
5. the purge carried out (idempotent);
6. ``published.json`` replaced atomically: the new version, the ledger's new head and count;
7. the retention policy's prune (:mod:`sftc.deploy.retention`): a ``pruned`` entry, the removal,
   the pointer at the new head (a kill before the pointer: the next command finishes it).

Killed before 3: the next command rolls back (the staging folder removed, a ``rolled-back``
entry appended; the previous version stays published). Killed after 3: it resumes (the
``published`` entry appended from ``outcome.json`` if it is missing, the purge finished, the
pointer moved). The pointer is always last, so what it names is always whole.

The purge runs in the cache recorded at ``init`` (the acknowledged first entry), never in one an
entry names. When resuming an entry the pointer never acknowledged, its plan is not trusted:
the entry is checked against the intent before it and ``versions/vN`` (:func:`sftc.deploy.
entries.check_resumable`), and the plan is computed again from the cache.
"""
from __future__ import annotations

from ..errors import SftcError
from ..io import file_sha256
from . import purge
from .entries import check_published, check_resumable
from .folder import Deployment, History, fault_point
from .ledger import write_pointer


def removed_digests(entries: list[dict], outcome: dict | None = None) -> set[str]:
    """The content digests of every sample removed so far (and of ``outcome``'s request)."""
    found = {s["sha256"] for p in History(entries).published for s in p["removed"]}
    if outcome is not None:
        found |= {s["sha256"] for s in outcome["removed"]}
    return found


def advance_pointer(dep: Deployment, entries: list[dict], pointer: dict) -> dict:
    """The pointer at the ledger's new head, the published version unchanged."""
    return write_pointer(dep.pointer_path, entries, pointer["version"], pointer["model"],
                         pointer["model_sha256"])


def publish(dep: Deployment, entries: list[dict], outcome: dict, intent: dict,
            dataset: str) -> dict:
    """Steps 4-6 for a version already in ``versions/`` (also when resuming)."""
    if not (dep.version_dir(outcome["version"]) / "model.pt").is_file():
        raise SftcError(f"versions/v{outcome['version']}/model.pt is missing: cannot publish "
                        f"request {outcome['request']}")
    plan = purge.plan(_cache(entries), removed_digests(entries, outcome), dataset)
    outcome_sha256 = file_sha256(dep.version_dir(outcome["version"]) / "outcome.json")
    payload = {**outcome, "intent": intent["seq"], "purge": plan,
               "outcome_sha256": outcome_sha256}
    check_published({"seq": len(entries), "kind": "published", "payload": payload},
                    History(entries).version + 1)      # a staged outcome edited by hand: no
    entry = dep.ledger.append(entries, "published", payload)
    fault_point("after-entry")
    return finish(dep, entries, entry, plan)


def _cache(entries: list[dict]):
    return entries[0]["payload"]["cache_dir"]


def resume(dep: Deployment, entries: list[dict], dataset: str) -> dict:
    """Steps 5-6 for a ``published`` entry the pointer never acknowledged, once checked; the
    purge computed again from the cache, not read from the entry."""
    payload = check_resumable(dep, entries)
    before = removed_digests(entries[:-1])
    plan = purge.plan(_cache(entries), before | {s["sha256"] for s in payload["removed"]},
                      dataset)
    return finish(dep, entries, entries[-1], plan)


def finish(dep: Deployment, entries: list[dict], entry: dict, plan: list[dict]) -> dict:
    """Steps 5-6: carry out the purge plan in the recorded cache, move the pointer."""
    payload = entry["payload"]
    purge.execute(_cache(entries), plan)
    write_pointer(dep.pointer_path, entries, payload["version"], payload["child"]["path"],
                  payload["child"]["sha256"])
    return entry
