"""The evidence of a request: the new request's audit and the re-audit of every earlier one on
the new model, judged by the deployment's publication policy.

Re-auditing an earlier request k on the new model: its forget set is D_k, its retain set the
cumulative one (every request removed), its training set retain ∪ D_k, and its original the last
version that still held D_k (version k − 1, which gives the attack its power). Its references are those of
the new request (models retrained on the same cumulative retain set, which never saw any removed
sample: the same cache key), so a re-audit costs forward passes only. A request whose files are
gone (or changed) cannot be re-audited; its last verdict stays on record and it is said so.

Policies (``--require``, recorded with every request): ``forgotten`` (the default) publishes only
when every audit is ``forgotten`` (inside the band retrained models land in, with the asked
resolution); ``forgotten-or-undetectable`` also accepts ``nothing-detectable`` (the attack cannot
tell the original itself from retrained models on that request: nothing detectable to remove, an
outcome the operator accepts explicitly); ``not-refuted`` also accepts ``not-proven`` and refuses
only a shown difference (``not-forgotten``).
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from ..bench.audit import audit
from ..bench.members import sample_digests
from ..errors import SftcError
from ..io import atomic_write_json, file_sha256
from ..records import package_versions
from .samples import Samples, split_of

POLICIES = {"forgotten": ("forgotten",),
            "forgotten-or-undetectable": ("forgotten", "nothing-detectable"),
            "not-refuted": ("forgotten", "nothing-detectable", "not-proven")}


def check_policy(require: str) -> str:
    if require not in POLICIES:
        raise SftcError(f"--require must be one of {', '.join(POLICIES)}, got {require!r}")
    return require


def summary(result, request: str, original_version: int, version: int, require: str,
            file: Path, root: Path) -> dict:
    """What the ledger records of one audit: verdict, AUC against the band, resolution, and its
    file's hash."""
    v = result.verdict
    i, b = v.interval, v.band
    return {"request": request, "reaudited": True, "version_audited": version,
            "original_version": original_version, "samples": int(result.removed["count"]),
            "verdict": v.verdict, "direction": v.direction, "reason": v.reason,
            "interval": {"estimate": i.estimate, "low": i.low, "high": i.high, "level": i.level,
                         "confidence": i.confidence} if i else None,
            "band": b.certify if b else None, "refute": b.refute if b else None,
            "resolution": v.resolution, "certifiable_margin": v.certifiable_margin,
            "power": bool(result.has_power),
            "meets_policy": v.verdict in POLICIES[require],
            "file": file.relative_to(root).as_posix(), "file_sha256": file_sha256(file)}


def write_audit(result, path: Path, context: dict) -> None:
    atomic_write_json(path, {"command": "deploy forget", **result.to_dict(), "deployment": context,
                             "versions": package_versions()})


def reaudit_all(earlier: list[dict], samples: Samples, retain: list[str], model,
                load_version, config, require: str, staging: Path, version: int,
                say, pruned: set[int] = frozenset()) -> tuple[list[dict], list]:
    """Re-audit every earlier published request whose files are all there and unchanged, on
    ``model``; returns the summaries (those that cannot be re-audited say why) and the audit
    results."""
    summaries, results = [], []
    recorded = samples.sha256
    for payload in earlier:
        request = payload["request"]
        ids = samples.plain_ids([s["id"] for s in payload["removed"]])
        if payload["version"] - 1 in pruned:
            why = (f"v{payload['version'] - 1}, the last version that held its samples, was "
                   "pruned under the deployment's --keep policy")
        elif ids is None:
            why = "its samples are recorded by pseudonym only (pruned)"
        else:
            why = _why_not(samples, ids, recorded)
        if why:
            summaries.append({"request": request, "reaudited": False, "why": why})
            say(f"request {request}: not re-audited ({why}); its last verdict stays on record")
            continue
        split = split_of(samples, retain + ids, ids, f"request {request} (re-audit)")
        original, original_path = load_version(payload["version"] - 1, split)
        t0 = time.perf_counter()
        result = audit(original, model, split, config=config,
                       checkpoints={"original": original_path,
                                    "unlearned": staging / "model.pt"})
        path = staging / "audits" / f"{request}.json"
        write_audit(result, path, {"request": request, "reaudit": True,
                                   "original_version": payload["version"] - 1,
                                   "version_audited": version, "require": require})
        entry = summary(result, request, payload["version"] - 1, version, require, path,
                        staging)
        entry["seconds"] = time.perf_counter() - t0
        summaries.append(entry)
        results.append(result)
        say(f"request {request} (re-audit on v{version}): {line(entry)}")
    return summaries, results


def _why_not(samples: Samples, ids: list[str], recorded: dict) -> str | None:
    gone = samples.missing(ids)
    if gone:
        return f"{len(gone)} of its {len(ids)} files are gone"
    digests = sample_digests(samples.data, torch.tensor([samples.index[i] for i in ids]))
    changed = sum(d != recorded[i] for i, d in zip(ids, digests))
    return f"{changed} of its {len(ids)} files changed since they were recorded" if changed \
        else None


def line(entry: dict) -> str:
    """One line of an audit summary: verdict, AUC against the retrain band (entries of the old rule:
    its interval against the margin)."""
    if not entry.get("reaudited", True):
        return f"not re-audited: {entry['why']}"
    direction = f" ({entry['direction']})" if entry.get("direction") else ""
    i = entry.get("interval")
    if not i:
        figures = "no interval"
    elif "band" in entry:
        figures = f"AUC {i['estimate']:.3f} against the retrain band {i['level']:.3f} ± " \
                  f"{entry['band']:.3f}"
        if entry.get("resolution") is not None and entry["verdict"] == "forgotten":
            figures += f", resolution {entry['resolution']:.0%}"
    else:
        figures = (f"AUC {i['estimate']:.3f} [{i['low']:.3f}, {i['high']:.3f}] against "
                   f"{i['level']:.3f} ± {entry['margin']:.3f} (the old margin rule)")
    power = "" if entry.get("power", True) else " (no power: the attack cannot tell the " \
        "original from retrained models on these samples)"
    return f"{entry['verdict']}{direction}, {figures}{power}"


def failures(summaries: list[dict], require: str) -> list[dict]:
    """The audits that do not meet the policy, each with why in one line."""
    out = []
    for entry in summaries:
        if entry.get("reaudited", True) and not entry["meets_policy"]:
            verdict = line(entry).split(",")[0]
            out.append({"request": entry["request"],
                        "why": f"{verdict} under --require {require}: "
                               f"{entry['reason'].split(';')[0]}"})
    return out
