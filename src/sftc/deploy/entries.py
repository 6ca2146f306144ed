"""The shape of what the ledger's entries hold, checked before anything reads or acts on them.

A ledger entry is hashed and chained, but anyone can append a correctly chained entry (it takes
SHA-256 only, no key). So nothing is taken on trust from an entry's payload: a ``published``
entry must hold what sftc writes (a request, the next version, the removed samples, the new
model, the request's own audit first, no failed audit, its files and its purge plan), and one
that lies beyond the published pointer is finished only when the acknowledged intent before it
and the version folder on disk say the same (:func:`check_resumable`). What does not is refused
in one line naming the entry.
"""
from __future__ import annotations

import json

from ..errors import SftcError
from .ledger import describe


def _forged(entry: dict, what: str) -> SftcError:
    return SftcError(f"{describe(entry)} is not an entry sftc writes ({what}): the ledger was "
                     "forged or edited; restore it from a backup")


def _is(value, kind) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def _interval(audit: dict) -> bool:
    """No interval, or one of numbers with a numeric band half-width (the margin, in entries of
    the old rule): what a summary line prints."""
    i = audit.get("interval")
    if i is None:
        return True
    width = audit.get("band", audit.get("margin"))
    return isinstance(i, dict) and all(_is(i.get(k), (int, float)) for k in (
        "estimate", "low", "high", "level")) and _is(width, (int, float))


def check_published(entry: dict, version: int) -> dict:
    """The payload of a ``published`` entry, checked to be the one that publishes ``version``."""
    p = entry.get("payload")
    if not isinstance(p, dict):
        raise _forged(entry, "its payload is not an object")
    if not _is(p.get("request"), str) or p.get("version") != version:
        raise _forged(entry, f"it does not name a request and publish version v{version}")
    removed = p.get("removed")
    if not isinstance(removed, list) or not removed or not all(
            isinstance(s, dict) and _is(s.get("id"), str) and _is(s.get("sha256"), str)
            for s in removed):
        raise _forged(entry, "no list of removed samples with their SHA-256")
    child = p.get("child")
    if not isinstance(child, dict) or not _is(child.get("sha256"), str) \
            or child.get("path") != f"versions/v{version}/model.pt":
        raise _forged(entry, f"no new model versions/v{version}/model.pt with its SHA-256")
    audits = p.get("audits")
    if not isinstance(audits, list) or not audits or not all(
            isinstance(a, dict) and _is(a.get("request"), str) for a in audits) \
            or audits[0]["request"] != p["request"]:
        raise _forged(entry, "no audits, the request's own first")
    for audit in audits:
        judged = _is(audit.get("verdict"), str) and audit.get("meets_policy") is True \
            and _interval(audit)
        if audit.get("reaudited", True) and not judged:
            raise _forged(entry, f"the audit of request {audit['request']} has no verdict that "
                                 "meets its policy")
    if p.get("failed") != [] or not isinstance(p.get("files"), dict) \
            or not isinstance(p.get("purge"), list):
        raise _forged(entry, "no files and purge plan, or a failed audit")
    return p


def _strings(payload: dict, *keys) -> bool:
    return all(_is(payload.get(k), str) for k in keys)


def check_shapes(entries: list[dict]) -> None:
    """Every entry's payload holds what its kind needs before anything reads it: ``init`` its
    data, model, samples and cache; ``intent`` a request and a version; ``refused`` a request,
    why it failed and its attempt's files; ``rolled-back`` a request and why; ``pruned`` its policy
    and what it removes (versions, attempts, cache items: :func:`_pruned_shape`); ``published``
    as :func:`check_published`. An unknown kind is refused too."""
    published = 0
    for entry in entries:
        kind, p = entry.get("kind"), entry.get("payload")
        if not isinstance(p, dict):
            raise _forged(entry, "its payload is not an object")
        if kind == "init":
            ok = entry.get("seq") == 0 and all(isinstance(p.get(k), dict) for k in (
                "data", "model", "samples")) and _strings(p, "cache_dir")
        elif kind == "intent":
            ok = _strings(p, "request") and _is(p.get("version"), int)
        elif kind == "refused":
            failed = p.get("failed")
            ok = _strings(p, "request", "attempt") and isinstance(p.get("files"), dict) and \
                isinstance(failed, list) and bool(failed) and all(
                    isinstance(f, dict) and _strings(f, "request", "why") for f in failed)
        elif kind == "rolled-back":
            ok = _strings(p, "request", "why")
        elif kind == "published":
            published += 1
            check_published(entry, published)
            continue
        elif kind == "pruned":
            ok = _pruned_shape(p)
        else:
            raise _forged(entry, f"sftc writes no entry of kind {kind!r}")
        if not ok:
            raise _forged(entry, f"a {kind} entry without what it must hold")


def _pruned_shape(p: dict) -> bool:
    """What every reader of a ``pruned`` entry takes from it: the policy, lists of versions
    (each a number, its folder ``versions/vN`` when named), attempts (each its folder), cache
    items, and the rewritten ``samples.json``'s SHA-256 when there is one. Whether it removes
    what the policy says is not a question of shape: an acknowledged entry was checked when it
    was written, one beyond the pointer by :func:`sftc.deploy.retention.check_pending`."""
    lists = all(isinstance(p.get(k), list) and all(isinstance(i, dict) for i in p[k])
                for k in ("versions", "attempts", "cache"))
    if not lists or not _strings(p, "keep"):
        return False
    versions = all(_is(v.get("version"), int) and v.get("path", f"versions/v{v['version']}")
                   == f"versions/v{v['version']}" for v in p["versions"])
    attempts = all(_is(a.get("attempt"), str) for a in p["attempts"])
    samples = p.get("samples")
    return versions and attempts and (
        samples is None or isinstance(samples, dict) and _is(samples.get("sha256"), str))


def _pairs(samples) -> list:
    return [(s.get("id"), s.get("sha256")) for s in samples or () if isinstance(s, dict)]


def check_resumable(dep, entries: list[dict]) -> dict:
    """The last entry, a ``published`` one beyond the pointer, checked against the intent the
    pointer acknowledged before it and against ``versions/vN``: only then may it be finished."""
    entry, intent = entries[-1], entries[-2] if len(entries) > 1 else {}
    wanted = intent.get("payload", {}).get("version") if intent.get("kind") == "intent" else None
    if wanted is None:
        raise _forged(entry, "it lies beyond the published pointer but follows no intent the "
                             "pointer acknowledged")
    payload = check_published(entry, wanted)
    if payload.get("intent") != intent["seq"] or \
            payload["request"] != intent["payload"].get("request") or \
            _pairs(payload["removed"]) != _pairs(intent["payload"].get("removed")):
        raise _forged(entry, f"it does not publish the request of the intent before it "
                             f"(entry {intent['seq']})")
    path = dep.version_dir(wanted) / "outcome.json"
    try:
        staged = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise _forged(entry, f"versions/v{wanted}/outcome.json, which it records, is missing "
                             "or unreadable") from None
    if staged != {k: v for k, v in payload.items() if k not in ("intent", "purge",
                                                                "outcome_sha256")}:
        raise _forged(entry, f"it differs from versions/v{wanted}/outcome.json")
    return payload
